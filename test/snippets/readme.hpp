#pragma once

// What the fragments of README.md use without declaring it.
#include "common.hpp"

#include <cassert>

extern asio::io_context ioc;
extern redcoro::connection conn;
extern redcoro::cluster_config cfg;
extern std::vector<std::string> keys;
extern std::string me;
void send(std::string_view bytes);
extern std::string bytes_received;
