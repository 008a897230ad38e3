#pragma once

// What the exporter serves, as plain functions over snapshots: the Prometheus text exposition
// format (version 0.0.4) of handles' and caches' metrics, and the health JSON. No I/O here;
// the exporter (exporter.hpp) gathers the snapshots on each source's executor and calls these.
// See http/README.md for the metric names and labels.

#include <redcoro/cache/cache.hpp>
#include <redcoro/client/histogram.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/pubsub/message.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::http {

/// The upper bounds (in seconds) of every latency histogram's buckets, `le` in the output;
/// `+Inf` follows. From 50 µs to 10 s: a Redis round trip on a LAN is 0.1–1 ms, a slow one
/// (a big MGET, a Lua script, a loader of the cache) tens or hundreds of ms.
inline constexpr std::array<double, 17> latency_bounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

/// One registered handle's snapshot (handle::metrics()), under its name.
struct handle_snapshot {
  std::string name;
  deployment_metrics metrics;
};

/// One registered cache's snapshot (cache::metrics(), cache::latency()), under its name.
struct cache_snapshot {
  std::string name;
  cache::cache_metrics counters;
  cache::cache_latency latency;
};

/// One registered client-side cache's statistics (its stats()), under its name.
struct client_cache_snapshot {
  std::string name;
  tracking_cache_stats stats;
};

/// One registered subscriber's counters (message_stats()), under its name.
struct subscriber_snapshot {
  std::string name;
  subscriber_stats stats;
};

/// One registered handle's answer to handle::async_health (or the error it completed with).
struct handle_health {
  std::string name;
  error_code error;
  health_report report;
  /// Healthy: no error and the report says so.
  bool healthy() const noexcept { return !error && report.healthy; }
};

/// Appends `v` escaped as a label value of the text format: backslash, double quote and
/// line feed become `\\`, `\"` and `\n`.
void append_label_value(std::string& out, std::string_view v);

/// The /metrics body: every family once (`# HELP`, `# TYPE`, then all its samples), handles'
/// families first, then caches', client-side caches' and subscribers'. Families without a
/// sample are left out.
std::string to_prometheus(const std::vector<handle_snapshot>& handles,
                          const std::vector<cache_snapshot>& caches,
                          const std::vector<client_cache_snapshot>& client_caches = {},
                          const std::vector<subscriber_snapshot>& subscribers = {});

/// The /health body (JSON): `{"healthy":...,"handles":[...]}`, one object per handle (see
/// http/README.md).
std::string to_health_json(const std::vector<handle_health>& handles);

}  // namespace redcoro::http
