#pragma once

// What the fragments of client/README.md use without declaring it.
#include "common.hpp"

extern asio::io_context ioc;
extern redcoro::connection_config cfg;
extern redcoro::connection conn;
extern std::string token;
