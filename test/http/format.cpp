// The exporter's formats on hand-built snapshots: the exact lines of the Prometheus text
// format, label escaping, one block per family, cumulative buckets, and the health JSON.
#include <redcoro/http/format.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

using namespace redcoro;
using namespace redcoro::http;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  const auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// The metric name of a sample line ("name{...} v" or "name v").
std::string name_of(const std::string& line) {
  return line.substr(0, line.find_first_of("{ "));
}

// The family a sample belongs to, given the histogram families declared so far.
std::string family_of(const std::string& name, const std::set<std::string>& histograms) {
  for (std::string suffix : {"_bucket", "_sum", "_count"})
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      auto base = name.substr(0, name.size() - suffix.size());
      if (histograms.count(base)) return base;
    }
  return name;
}

// Every family is announced once (HELP then TYPE), and its samples follow it, together.
void check_families(const std::string& text) {
  std::set<std::string> announced, histograms;
  std::string current;
  for (const auto& line : lines_of(text)) {
    if (line.starts_with("# HELP ")) {
      const auto name = name_of(line.substr(7));
      INFO(line);
      CHECK(announced.insert(name).second);
      current = name;
    } else if (line.starts_with("# TYPE ")) {
      const auto rest = line.substr(7);
      const auto name = rest.substr(0, rest.find(' '));
      CHECK(name == current);
      if (rest.ends_with(" histogram")) histograms.insert(name);
    } else {
      INFO(line);
      CHECK(family_of(name_of(line), histograms) == current);
    }
  }
}

// The values of `name_bucket` samples whose labels start with `labels`, in output order.
std::vector<std::uint64_t> buckets_of(const std::string& text, const std::string& name,
                                      const std::string& labels) {
  std::vector<std::uint64_t> out;
  const auto prefix = name + "_bucket{" + labels + ",le=";
  for (const auto& line : lines_of(text))
    if (line.starts_with(prefix)) out.push_back(std::stoull(line.substr(line.rfind(' ') + 1)));
  return out;
}

histogram samples(std::initializer_list<std::uint64_t> ns) {
  histogram h;
  for (auto v : ns)
    h.record(v);
  return h;
}

deployment_metrics single_server() {
  deployment_metrics d;
  d.kind = deployment::single;
  node_metrics n;
  n.node = "127.0.0.1:6379";
  n.role = "shared";
  auto& m = n.metrics;
  m.requests = 12;
  m.completed[static_cast<std::size_t>(request_outcome::replied)] = 9;
  m.completed[static_cast<std::size_t>(request_outcome::timeout)] = 2;
  m.completed[static_cast<std::size_t>(request_outcome::connection_lost)] = 1;
  m.server_errors = {{"ERR", 3}, {"WRONGTYPE", 1}};
  m.bytes_written = 1000;
  m.bytes_read = 2000;
  m.connects = 2;
  m.disconnects = 1;
  m.pushes = 5;
  m.queued = 3;
  m.in_flight = 4;
  m.connected = true;
  // 40 µs, 90 µs, 200 µs, 3 ms, 30 ms, 2 s: one each side of several bounds.
  m.latency = samples({40'000, 90'000, 200'000, 3'000'000, 30'000'000, 2'000'000'000});
  command_metrics get;
  get.command = "GET";
  get.latency = samples({40'000, 90'000, 200'000});
  command_metrics set;
  set.command = "SET";
  set.latency = samples({3'000'000, 30'000'000, 2'000'000'000});
  m.by_command = {get, set};
  d.nodes.push_back(n);
  return d;
}

}  // namespace

TEST_CASE("a single server's counters and gauges as exact lines", "[http][format]") {
  std::vector<handle_snapshot> handles(1);
  handles[0].name = "main";
  handles[0].metrics = single_server();
  const auto text = to_prometheus(handles, {});
  const std::string l = R"(handle="main",node="127.0.0.1:6379",role="shared")";
  for (const std::string& line : std::vector<std::string>{
           "# HELP redcoro_requests_total Requests started (async_exec calls), refused ones "
           "included.",
           "# TYPE redcoro_requests_total counter",
           "redcoro_requests_total{" + l + "} 12",
           "redcoro_requests_completed_total{" + l + R"(,outcome="replied"} 9)",
           "redcoro_requests_completed_total{" + l + R"(,outcome="timeout"} 2)",
           "redcoro_requests_completed_total{" + l + R"(,outcome="connection_lost"} 1)",
           "redcoro_requests_completed_total{" + l + R"(,outcome="protocol_error"} 0)",
           "redcoro_server_errors_total{" + l + R"(,code="ERR"} 3)",
           "redcoro_server_errors_total{" + l + R"(,code="WRONGTYPE"} 1)",
           "redcoro_written_bytes_total{" + l + "} 1000",
           "redcoro_read_bytes_total{" + l + "} 2000",
           "redcoro_connects_total{" + l + "} 2",
           "redcoro_disconnects_total{" + l + "} 1",
           "redcoro_pushes_total{" + l + "} 5",
           "# TYPE redcoro_queued_requests gauge",
           "redcoro_queued_requests{" + l + "} 3",
           "redcoro_in_flight_requests{" + l + "} 4",
           "redcoro_connected{" + l + "} 1",
           "# TYPE redcoro_request_duration_seconds histogram",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.00005"} 1)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.0001"} 2)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.00025"} 3)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.0025"} 3)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.005"} 4)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.025"} 4)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="0.05"} 5)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="1"} 5)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="2.5"} 6)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="10"} 6)",
           "redcoro_request_duration_seconds_bucket{" + l + R"(,le="+Inf"} 6)",
           "redcoro_request_duration_seconds_count{" + l + "} 6",
           R"(redcoro_command_duration_seconds_bucket{handle="main",command="GET",le="0.0001"} 2)",
           R"(redcoro_command_duration_seconds_count{handle="main",command="GET"} 3)",
           R"(redcoro_command_duration_seconds_bucket{handle="main",command="SET",le="0.0001"} 0)",
           R"(redcoro_command_duration_seconds_count{handle="main",command="SET"} 3)",
           R"(redcoro_handle_info{handle="main",kind="single"} 1)",
       }) {
    INFO(line);
    CHECK(has_line(text, line));
  }
  // _sum in seconds: 2.03333 s in all (to within the rounding of the histogram's mean).
  const auto sum_prefix = "redcoro_request_duration_seconds_sum{" + l + "} ";
  const auto lines = lines_of(text);
  const auto sum = std::find_if(lines.begin(), lines.end(),
                                [&](const std::string& x) { return x.starts_with(sum_prefix); });
  REQUIRE(sum != lines.end());
  CHECK(std::stod(sum->substr(sum_prefix.size())) == Approx(2.03333).epsilon(1e-9));
  // A single server has no pool and no cluster figures.
  CHECK(text.find("redcoro_pool_") == std::string::npos);
  CHECK(text.find("redcoro_cluster_") == std::string::npos);
  CHECK(text.find("redcoro_cache_") == std::string::npos);
  check_families(text);
}

TEST_CASE("label values are escaped and help text is one line", "[http][format]") {
  std::string out;
  append_label_value(out, "a\"b\\c\nd");
  CHECK(out == R"(a\"b\\c\nd)");

  std::vector<handle_snapshot> handles(1);
  handles[0].name = "we\"ird\\name\n";
  handles[0].metrics = single_server();
  handles[0].metrics.nodes[0].metrics.server_errors = {{"BAD\"CODE", 1}};
  const auto text = to_prometheus(handles, {});
  CHECK(has_line(
      text,
      R"(redcoro_requests_total{handle="we\"ird\\name\n",node="127.0.0.1:6379",role="shared"} 12)"));
  CHECK(has_line(
      text,
      R"(redcoro_server_errors_total{handle="we\"ird\\name\n",node="127.0.0.1:6379",role="shared",code="BAD\"CODE"} 1)"));
  // No raw line feed inside a sample: every line is a comment or starts with a name.
  for (const auto& line : lines_of(text)) {
    INFO(line);
    CHECK((line.starts_with("# ") || line.starts_with("redcoro_")));
  }
}

TEST_CASE("a cluster's nodes and counters: families once with every sample together",
          "[http][format]") {
  deployment_metrics d;
  d.kind = deployment::cluster;
  for (int i = 0; i < 3; ++i) {
    node_metrics n;
    n.node = "127.0.0.1:700" + std::to_string(i);
    n.role = "primary";
    n.metrics.requests = 10u * static_cast<unsigned>(i + 1);
    n.metrics.latency = samples({90'000, 1'000'000});
    command_metrics c;
    c.command = "GET";
    c.latency = samples({90'000, 1'000'000});
    n.metrics.by_command = {c};
    d.nodes.push_back(n);
  }
  d.pool_open = 2;
  d.pool_leased = 1;
  d.pool_waiting = 0;
  d.moved = 7;
  d.ask = 2;
  d.retries = 3;
  d.refreshes = 4;
  d.slots_covered = 16384;

  std::vector<handle_snapshot> handles(2);
  handles[0].name = "orders";
  handles[0].metrics = d;
  handles[1].name = "main";
  handles[1].metrics = single_server();
  const auto text = to_prometheus(handles, {});
  check_families(text);
  for (
      const std::string& line : std::vector<std::string>{
          R"(redcoro_requests_total{handle="orders",node="127.0.0.1:7002",role="primary"} 30)",
          R"(redcoro_requests_total{handle="main",node="127.0.0.1:6379",role="shared"} 12)",
          R"(redcoro_pool_open_connections{handle="orders"} 2)",
          R"(redcoro_pool_leased_connections{handle="orders"} 1)",
          R"(redcoro_pool_waiting_callers{handle="orders"} 0)",
          R"(redcoro_cluster_redirects_total{handle="orders",redirect="moved"} 7)",
          R"(redcoro_cluster_redirects_total{handle="orders",redirect="ask"} 2)",
          R"(redcoro_cluster_retries_total{handle="orders"} 3)",
          R"(redcoro_cluster_topology_refreshes_total{handle="orders"} 4)",
          R"(redcoro_cluster_slots_covered{handle="orders"} 16384)",
          R"(redcoro_handle_info{handle="orders",kind="cluster"} 1)",
          // By command: the three nodes' GETs in one histogram.
          R"(redcoro_command_duration_seconds_count{handle="orders",command="GET"} 6)",
          R"(redcoro_command_duration_seconds_bucket{handle="orders",command="GET",le="0.0001"} 3)",
      }) {
    INFO(line);
    CHECK(has_line(text, line));
  }
  // Not for the single server.
  CHECK(text.find(R"(redcoro_pool_open_connections{handle="main"})") == std::string::npos);
}

TEST_CASE("two entries of one node and role are summed into one series", "[http][format]") {
  deployment_metrics d = single_server();
  d.nodes.push_back(d.nodes[0]);
  std::vector<handle_snapshot> handles(1);
  handles[0].name = "main";
  handles[0].metrics = d;
  const auto text = to_prometheus(handles, {});
  CHECK(has_line(
      text, R"(redcoro_requests_total{handle="main",node="127.0.0.1:6379",role="shared"} 24)"));
  CHECK(has_line(
      text,
      R"(redcoro_request_duration_seconds_count{handle="main",node="127.0.0.1:6379",role="shared"} 12)"));
  check_families(text);
}

TEST_CASE("cumulative buckets are monotone and end at the count", "[http][format]") {
  // A spread of latencies from 1 µs to 20 s, log-uniform.
  histogram h;
  std::vector<std::uint64_t> values;
  double v = 1000;
  while (v < 2e10) {
    values.push_back(static_cast<std::uint64_t>(v));
    h.record(values.back());
    v *= 1.01;
  }
  deployment_metrics d = single_server();
  d.nodes[0].metrics.latency = h;
  std::vector<handle_snapshot> handles(1);
  handles[0].name = "main";
  handles[0].metrics = d;
  const auto text = to_prometheus(handles, {});
  const auto buckets = buckets_of(text, "redcoro_request_duration_seconds",
                                  R"(handle="main",node="127.0.0.1:6379",role="shared")");
  REQUIRE(buckets.size() == latency_bounds.size() + 1);
  CHECK(std::is_sorted(buckets.begin(), buckets.end()));
  CHECK(buckets.back() == h.count());
  CHECK(has_line(
      text,
      R"(redcoro_request_duration_seconds_count{handle="main",node="127.0.0.1:6379",role="shared"} )" +
          std::to_string(h.count())));

  // Each bucket against the exact count, to within the histogram's resolution: a sample is
  // reported as its bucket's highest value, at most 1/128 above it.
  for (std::size_t i = 0; i < latency_bounds.size(); ++i) {
    const auto bound = static_cast<std::uint64_t>(latency_bounds[i] * 1e9 + 0.5);
    const auto exact = static_cast<std::uint64_t>(
        std::count_if(values.begin(), values.end(), [&](auto x) { return x <= bound; }));
    const auto lower = static_cast<std::uint64_t>(std::count_if(
        values.begin(), values.end(), [&](auto x) { return x * 129 / 128 <= bound; }));
    INFO("le " << latency_bounds[i]);
    CHECK(buckets[i] <= exact);
    CHECK(buckets[i] >= lower);
  }
}

TEST_CASE("count_at_or_below on edges: empty and below the min and at the max", "[http][format]") {
  histogram empty;
  CHECK(empty.count_at_or_below(1'000'000) == 0);
  // Below 256 ns every value has a bucket of its own: exact.
  auto h = samples({10, 20, 20, 30, 200});
  CHECK(h.count_at_or_below(9) == 0);
  CHECK(h.count_at_or_below(10) == 1);
  CHECK(h.count_at_or_below(19) == 1);
  CHECK(h.count_at_or_below(20) == 3);
  CHECK(h.count_at_or_below(199) == 4);
  CHECK(h.count_at_or_below(200) == 5);
  CHECK(h.count_at_or_below(1'000'000'000) == 5);
  // Many samples of one value.
  histogram same;
  for (int i = 0; i < 100000; ++i)
    same.record(5'000'000);
  CHECK(same.count_at_or_below(4'000'000) == 0);
  CHECK(same.count_at_or_below(5'000'000) == 100000);
}

TEST_CASE("a cache's counters and latencies", "[http][format]") {
  std::vector<cache_snapshot> caches(1);
  caches[0].name = "profiles";
  auto& c = caches[0].counters;
  c.hits = 90;
  c.misses = 10;
  c.sets = 11;
  c.deletes = 2;
  c.loads = 10;
  c.load_errors = 1;
  c.errors = 3;
  c.invalidated = 4;
  c.refreshes = 5;
  caches[0].latency.loads = samples({2'000'000, 20'000'000});
  const auto text = to_prometheus({}, caches);
  for (const std::string& line : std::vector<std::string>{
           R"(redcoro_cache_hits_total{cache="profiles"} 90)",
           R"(redcoro_cache_misses_total{cache="profiles"} 10)",
           R"(redcoro_cache_sets_total{cache="profiles"} 11)",
           R"(redcoro_cache_deletes_total{cache="profiles"} 2)",
           R"(redcoro_cache_loads_total{cache="profiles"} 10)",
           R"(redcoro_cache_load_errors_total{cache="profiles"} 1)",
           R"(redcoro_cache_errors_total{cache="profiles"} 3)",
           R"(redcoro_cache_invalidated_keys_total{cache="profiles"} 4)",
           R"(redcoro_cache_early_refreshes_total{cache="profiles"} 5)",
           R"(redcoro_cache_load_duration_seconds_bucket{cache="profiles",le="0.0025"} 1)",
           R"(redcoro_cache_load_duration_seconds_bucket{cache="profiles",le="0.025"} 2)",
           R"(redcoro_cache_load_duration_seconds_count{cache="profiles"} 2)",
           R"(redcoro_cache_get_duration_seconds_count{cache="profiles"} 0)",
       }) {
    INFO(line);
    CHECK(has_line(text, line));
  }
  check_families(text);
  // Nothing of handles when there are none.
  CHECK(text.find("redcoro_requests_total") == std::string::npos);
}

TEST_CASE("client-side caches' statistics", "[http][format]") {
  std::vector<client_cache_snapshot> caches(2);
  caches[0].name = "flags";
  auto& s = caches[0].stats;
  s.hits = 70;
  s.misses = 30;
  s.shared_misses = 2;
  s.uncached = 5;
  s.invalidations = 6;
  s.flushes = 1;
  s.evictions = 3;
  s.expirations = 4;
  s.not_stored = 7;
  s.entries = 25;
  s.bytes = 4096;
  s.available = true;
  caches[1].name = "off";  // nothing done, tracking not (yet) on
  const auto text = to_prometheus({}, {}, caches);
  for (const std::string& line : std::vector<std::string>{
           R"(redcoro_client_cache_hits_total{client_cache="flags"} 70)",
           R"(redcoro_client_cache_misses_total{client_cache="flags"} 30)",
           R"(redcoro_client_cache_shared_misses_total{client_cache="flags"} 2)",
           R"(redcoro_client_cache_uncached_total{client_cache="flags"} 5)",
           R"(redcoro_client_cache_invalidations_total{client_cache="flags"} 6)",
           R"(redcoro_client_cache_flushes_total{client_cache="flags"} 1)",
           R"(redcoro_client_cache_evictions_total{client_cache="flags"} 3)",
           R"(redcoro_client_cache_expirations_total{client_cache="flags"} 4)",
           R"(redcoro_client_cache_not_stored_total{client_cache="flags"} 7)",
           R"(redcoro_client_cache_entries{client_cache="flags"} 25)",
           R"(redcoro_client_cache_bytes{client_cache="flags"} 4096)",
           R"(redcoro_client_cache_available{client_cache="flags"} 1)",
           R"(redcoro_client_cache_hits_total{client_cache="off"} 0)",
           R"(redcoro_client_cache_available{client_cache="off"} 0)",
           "# TYPE redcoro_client_cache_hits_total counter",
           "# TYPE redcoro_client_cache_entries gauge",
       }) {
    INFO(line);
    CHECK(has_line(text, line));
  }
  check_families(text);
  // Nothing of handles or of redcoro::cache caches when there are none.
  CHECK(text.find("redcoro_requests_total") == std::string::npos);
  CHECK(text.find("redcoro_cache_hits_total") == std::string::npos);
  // And nothing of client-side caches when there are none.
  CHECK(to_prometheus({}, {}).find("redcoro_client_cache") == std::string::npos);
}

TEST_CASE("subscribers' counters", "[http][format]") {
  std::vector<subscriber_snapshot> subs(1);
  subs[0].name = "feed";
  subs[0].stats = {.messages = 100, .dropped = 90, .overflow_disconnects = 2, .buffered = 10};
  const auto text = to_prometheus({}, {}, {}, subs);
  for (const std::string& line : std::vector<std::string>{
           R"(redcoro_subscriber_messages_total{subscriber="feed"} 100)",
           R"(redcoro_subscriber_dropped_messages_total{subscriber="feed"} 90)",
           R"(redcoro_subscriber_overflow_disconnects_total{subscriber="feed"} 2)",
           R"(redcoro_subscriber_buffered_messages{subscriber="feed"} 10)",
           "# TYPE redcoro_subscriber_buffered_messages gauge",
       }) {
    INFO(line);
    CHECK(has_line(text, line));
  }
  check_families(text);
  CHECK(to_prometheus({}, {}).find("redcoro_subscriber") == std::string::npos);
}

TEST_CASE("the health JSON names each handle and says why one is not healthy", "[http][format]") {
  std::vector<handle_health> handles(3);
  handles[0].name = "main";
  handles[0].report.healthy = true;
  handles[0].report.role = "master";
  handles[0].report.server_version = "7.0.15";
  handles[0].report.address = "127.0.0.1:6379";
  handles[0].report.round_trip = std::chrono::microseconds(250);
  handles[1].name = "orders";
  handles[1].report.kind = deployment::cluster;
  handles[1].report.healthy = false;
  handles[1].report.reason = "node 127.0.0.1:7001 \"unreachable\"";
  handles[1].report.cluster_state = "fail";
  node_health n;
  n.address = "127.0.0.1:7001";
  n.error = "timeout";
  handles[1].report.nodes = {n};
  handles[2].name = "gone";
  handles[2].error = boost::system::errc::make_error_code(boost::system::errc::operation_canceled);

  const auto json = to_health_json(handles);
  CHECK(json.starts_with(R"({"healthy":false,"handles":[)"));
  CHECK(
      json.find(
          R"({"name":"main","kind":"single","healthy":true,"reason":"","role":"master","server_version":"7.0.15","address":"127.0.0.1:6379","round_trip_us":250})") !=
      std::string::npos);
  CHECK(
      json.find(
          R"("name":"orders","kind":"cluster","healthy":false,"reason":"node 127.0.0.1:7001 \"unreachable\"")") !=
      std::string::npos);
  CHECK(
      json.find(
          R"("cluster_state":"fail","all_slots_covered":false,"nodes":[{"address":"127.0.0.1:7001","reachable":false,"role":"","round_trip_us":0,"error":"timeout"}])") !=
      std::string::npos);
  CHECK(json.find(R"("name":"gone","kind":"single","healthy":false,"reason":"no report: )") !=
        std::string::npos);

  handles.resize(1);
  CHECK(to_health_json(handles).starts_with(R"({"healthy":true,)"));
  CHECK(to_health_json({}) == R"({"healthy":true,"handles":[]})");
}
