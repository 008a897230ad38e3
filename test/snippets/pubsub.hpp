#pragma once

// What the fragments of pubsub/README.md use without declaring it.
#include "common.hpp"

extern asio::io_context ioc;
extern redcoro::connection_config cfg;
extern redcoro::connection conn;
extern redcoro::cluster_config cluster_cfg;
extern redcoro::subscriber sub;
void handle(std::string_view channel, std::string_view pattern, std::string_view payload);
void handle(const redcoro::pubsub_message& m);
void log(const std::string& line);
