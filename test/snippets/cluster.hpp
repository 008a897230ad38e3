#pragma once

// What the fragments of cluster/README.md use without declaring it.
#include "common.hpp"

extern asio::io_context ioc;
extern redcoro::cluster_client cl;
void use(std::string_view key);
