#pragma once

// What the fragments of http/README.md use without declaring it.
#include "common.hpp"

extern redcoro::handle redis;
