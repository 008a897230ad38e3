#pragma once

// redcoro-bench's command line: what to connect to, the load's shape, its length and its
// workload. parse_options never exits; bad options come back as a message.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::bench {

enum class key_pattern_kind { uniform, sequential, zipf, gaussian };

/// One command template of --command, with its weight.
struct command_template {
  std::vector<std::string> words;  // __key__ and __data__ are replaced per request
  unsigned weight = 1;
};

struct options {
  // target; port 0 with no --unix: start a redis-server of our own
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string unix_socket;
  bool tls = false;
  // a Redis Cluster: --host/--port name a seed node; without them, a cluster of our own
  bool cluster = false;
  int cluster_primaries = 3, cluster_replicas = 1;  // the size of our own cluster
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  std::string user, password;
  int db = 0;

  // shape
  int threads = 1;
  int connections = 1;   // per thread
  int concurrency = 16;  // coroutines per connection, each with one request in flight
  int pipeline = 1;      // commands per request

  // length: requests in all, or seconds; a warm-up that is not measured
  std::uint64_t requests = 0;
  double duration_s = 0;
  double warmup_s = 0;
  double rate = 0;  // requests per second in all; 0: as fast as possible

  // workload: SET:GET ratio, or command templates
  unsigned set_ratio = 1, get_ratio = 10;
  std::vector<command_template> commands;
  std::uint32_t data_min = 32, data_max = 32;
  std::uint64_t key_space = 100000;
  key_pattern_kind key_pattern = key_pattern_kind::uniform;
  double zipf_s = 0.99;
  std::uint64_t seed = 1;

  // output and drivers
  std::string json_path, html_path;
  std::string driver = "redcoro";  // or "hiredis"
  bool compare = false;
  int compare_rounds = 1;
  bool live = true;  // the line every second
  // client-side caching: a tracking_cache of this many bytes on each connection; 0: none
  std::uint64_t client_cache = 0;

  std::uint64_t total_coroutines() const {
    return static_cast<std::uint64_t>(threads) * static_cast<std::uint64_t>(connections) *
           static_cast<std::uint64_t>(concurrency);
  }
  /// The configuration as name/value pairs, for the reports.
  std::vector<std::pair<std::string, std::string>> describe() const;
};

struct parse_result {
  std::optional<options> opts;  // empty on error or --help
  std::string message;          // the error, or the usage text for --help
  bool help = false;
};

parse_result parse_options(int argc, const char* const* argv);
std::string usage();

}  // namespace redcoro::bench
