#pragma once

// What the snippets of recipes/README.md use without declaring it.
#include "common.hpp"

extern redcoro::handle redis;
void write_report(std::int64_t fence);
void reply_429(std::chrono::milliseconds retry_after);
void stop_leading();
