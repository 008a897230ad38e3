#pragma once

// Contenders timed in rounds, in groups whose first member is the base, and printed with their
// ratios to it: the medians over rounds, and the median of the round-by-round ratios
// ("paired": each run against the base run next to it, which a load changing over seconds on a
// shared machine disturbs less). bench_cache_hit and bench_recipes use it.

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::bench {

/// User and system CPU seconds of this process.
std::pair<double, double> cpu_seconds();

/// What one timed run of a contender gave.
struct sample {
  double ops_per_second = 0;
  double cpu_us_per_op = 0;
  double user_us_per_op = 0;
  double allocs_per_op = 0;
};

/// Times `drive()`, which performs `ops` operations, in wall and CPU time, and counts its heap
/// allocations when `count_allocations`.
sample measure(double ops, const std::function<void()>& drive, bool count_allocations);

struct paired_contender {
  std::string group;  ///< the shape ("64 in flight")
  std::string name;   ///< the contender within it; the first of a group is its base
  std::size_t ops;    ///< operations in a timed run
};

/// Runs `all` (groups of `per_group`, each led by its base) once to warm up (ops / 20), then
/// `rounds` times timed through `run(index, ops, false)`, rotating which member of a group
/// goes first each round, then once more each counting allocations (`run(index, ops / 10,
/// true)`; short runs are at least `min_ops`), and prints the table: ops/s, CPU us/op, their
/// ratios to the base, the paired ratio, user CPU, allocations per op. `base` names the base
/// in the column titles ("raw").
void run_paired(
    const std::vector<paired_contender>& all, std::size_t per_group, int rounds,
    std::size_t min_ops,
    const std::function<sample(std::size_t index, std::size_t ops, bool count_allocations)>& run,
    const std::string& base);

}  // namespace redcoro::bench
