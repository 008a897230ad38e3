#pragma once

// The benchmarks' latency histogram is the library's (redcoro/client/histogram.hpp), so that
// what the tool measures and what the library records read the same.
#include <redcoro/client/histogram.hpp>

namespace redcoro::bench {
using histogram = redcoro::histogram;
}  // namespace redcoro::bench
