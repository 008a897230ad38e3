#pragma once

// Running a load: threads that each record into their own statistics, a loop that prints a
// live line every second and keeps the timeline, and the drivers (redcoro, hiredis,
// redis-benchmark) that produce the requests.

#include "tool/options.hpp"
#include "tool/report.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace redcoro::bench {

/// Where the load goes (the tool's own server or the user's).
struct target {
  std::string host;
  std::uint16_t port = 0;
  std::string unix_socket;
  bool cluster = false;  ///< host:port is a seed of a Redis Cluster
};

/// Shared by the threads of a run.
struct run_control {
  std::atomic<bool> stop{false};       // time is up, or Ctrl-C
  std::atomic<bool> measuring{false};  // false during the warm-up
};

/// One thread's figures. The thread records under the mutex (uncontended but for the
/// once-a-second snapshot), so the live line never stops the load.
struct thread_stats {
  std::mutex m;
  histogram all, interval;
  std::uint64_t requests = 0, ops = 0, hits = 0, misses = 0, verify_failures = 0;
  std::uint64_t interval_ops = 0, interval_errors = 0;
  std::map<std::string, std::uint64_t> errors;
};

/// What one request did, for thread_stats::record.
struct request_outcome {
  std::uint64_t latency_ns = 0;
  std::uint64_t ops = 0, hits = 0, misses = 0, verify_failures = 0;
  // Up to a few error kinds per request; more are counted under the last.
  std::string error_kinds[4];
  unsigned error_count = 0;
  void add_error(std::string kind) {
    if (error_count < 4)
      error_kinds[error_count++] = std::move(kind);
    else
      error_kinds[3] = std::move(kind);
  }
};

void record(thread_stats& s, const request_outcome& r, const run_control& ctl);

/// Runs `body(thread_index, stats, control)` on options::threads threads: warm-up, then the
/// measured part until --duration passes, every thread's --requests share is done, or
/// `interrupted` becomes true. Prints the live line when options::live.
run_result run_threads(const options& o, const std::string& driver,
                       const std::function<void(int, thread_stats&, run_control&)>& body,
                       const std::atomic<bool>& interrupted);

run_result run_redcoro(const options& o, const target& t, const std::atomic<bool>& interrupted);
run_result run_hiredis(const options& o, const target& t, const std::atomic<bool>& interrupted);
/// The number of primaries of the cluster `t` names, as a cluster_client finds them; 0 when it
/// cannot tell.
std::size_t cluster_primaries(const options& o, const target& t);
/// redis-benchmark with the same shape: -c threads*connections, -P concurrency*pipeline, SET
/// then GET in the --ratio proportion, `ops` commands in all.
run_result run_redis_benchmark(const options& o, const target& t, std::uint64_t ops);

/// The requests one coroutine (or hiredis request slot) sends with --requests: its share.
std::uint64_t requests_per_stream(const options& o, std::uint64_t stream);

}  // namespace redcoro::bench
