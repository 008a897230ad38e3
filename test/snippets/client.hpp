#pragma once

// What the fragments of client/README.md use without declaring it.
#include "common.hpp"

#include <spdlog/spdlog.h>

extern asio::io_context ioc;
extern redcoro::connection_config cfg;
extern redcoro::connection conn;
extern std::string token;
extern std::string text;
extern std::shared_ptr<spdlog::logger> my_logger;
void start(const redcoro::connection_config& one);
void start(const redcoro::cluster_url& cluster);
void start(const redcoro::sentinel_config& sentinel);
void log(const std::string& line);
