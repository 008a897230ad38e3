#pragma once

// redcoro-bench's reports: the live line printed every second, the final table, and the JSON
// and HTML files of a run or of several runs compared (one per driver).

#include "tool/histogram.hpp"

#include <cstdint>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::bench {

/// One second of a run.
struct timeline_point {
  double t_s;  // seconds since the measured part began
  double ops_per_s;
  std::uint64_t p50_ns;
  std::uint64_t p99_ns;
  std::uint64_t errors;
};

/// What one run measured.
struct run_result {
  std::string driver;  // "redcoro", "hiredis", "redis-benchmark"
  double duration_s = 0;
  std::uint64_t requests = 0;  // requests sent (a request holds `pipeline` commands)
  std::uint64_t ops = 0;       // commands completed
  double ops_per_s = 0;
  double cpu_us_per_op = 0;            // client user+sys CPU per op; < 0 when unknown
  std::uint64_t hits = 0, misses = 0;  // GETs that found / did not find a key
  std::uint64_t verify_failures = 0;   // GETs of keys this run wrote that returned other data
  // With a client-side cache: reads answered from process memory, and reads it looked up.
  std::uint64_t local_hits = 0, local_reads = 0;
  std::map<std::string, std::uint64_t> errors;  // by kind: "timeout", "ERR", "connection_lost"...
  histogram latency;                            // per request, ns
  std::vector<timeline_point> timeline;         // one per second
  bool partial = false;                         // interrupted (Ctrl-C)
  // Latency percentiles a driver reported itself, in µs, by name ("p50", "p95", "p99", "max"),
  // for a run without a histogram of ours (redis-benchmark). The reports use them where
  // `latency` is empty.
  std::map<std::string, double> reported_percentiles_us;
};

/// The full configuration, as name/value pairs in order.
using settings = std::vector<std::pair<std::string, std::string>>;

/// The final table on `out`: one column per run, rows for throughput, latency percentiles,
/// errors (and each kind of error), hits/misses, verify failures and CPU per op. With several
/// runs, a ratio column after each run but the first, for ops/s, p99 and CPU/op ("1.23x": this
/// run's figure over the first run's).
void print_summary(std::FILE* out, const std::vector<run_result>& runs);

/// One live line for the run in progress:
/// "[  3s] 812,345 ops/s  p50 0.21 ms  p99 0.95 ms  errors 0" (no newline).
std::string live_line(double t_s, double ops_per_s, std::uint64_t p50_ns, std::uint64_t p99_ns,
                      std::uint64_t errors);

/// {"settings": {name: value, ...}, "runs": [{driver, duration_s, requests, ops, ops_per_s,
/// cpu_us_per_op, hits, misses, local_hits, local_reads, verify_failures, partial, errors: {kind:
/// n}, latency_us: {min, mean, p50, p90, p99, p99_9, p99_99, max, count}, percentiles: [[p, us],
/// ...], timeline: [{t_s, ops_per_s, p50_us, p99_us, errors}, ...]}]}. Unknown figures are null:
/// cpu_us_per_op when < 0, and latency_us's when the run has no histogram (but for what
/// reported_percentiles_us gives, also written as an object of its own when not empty). Non-finite
/// numbers are null too; text that is not UTF-8 gets U+FFFD.
void write_json(std::ostream& out, const settings& s, const std::vector<run_result>& runs);

/// A self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched): the settings,
/// the summary table, a chart of throughput over time (id="throughput") and one of the latency
/// percentile curves (id="latency": x is 1/(1-p) on a log scale, y is ms on a log scale).
void write_html(std::ostream& out, const settings& s, const std::vector<run_result>& runs);

}  // namespace redcoro::bench
