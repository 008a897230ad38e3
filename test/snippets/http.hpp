#pragma once

// What the fragments of http/README.md use without declaring it.
#include "common.hpp"

extern asio::io_context ioc;
extern redcoro::handle redis;
