#pragma once

// What the fragments of connect/README.md use without declaring it.
#include "common.hpp"

#include <cstdio>

extern asio::io_context ioc;
