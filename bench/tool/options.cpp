#include "tool/options.hpp"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

namespace redcoro::bench {

namespace {

struct bad_option {
  std::string message;
};

template <class T>
T number(std::string_view name, std::string_view text, T min, T max) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size())
    throw bad_option{"--" + std::string(name) + ": '" + std::string(text) + "' is not a number"};
  if (v < min || v > max) {
    std::ostringstream m;
    m << "--" << name << ": " << text << " is out of range [" << min << ", " << max << "]";
    throw bad_option{m.str()};
  }
  return v;
}

double real(std::string_view name, std::string_view text, double min) {
  char* end = nullptr;
  const std::string s(text);
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    throw bad_option{"--" + std::string(name) + ": '" + s + "' is not a number"};
  if (v < min)
    throw bad_option{"--" + std::string(name) + ": " + s + " must be at least " +
                     std::to_string(min)};
  return v;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  std::string w;
  while (in >> w)
    out.push_back(w);
  return out;
}

}  // namespace

std::string usage() {
  return R"(redcoro-bench: load for a Redis server, measured honestly

target (without --port or --unix, a redis-server is started on a free loopback port):
  --host H --port P | --unix PATH
  --tls  --cacert FILE  --cert FILE --key FILE  --sni NAME
  --user U  --password P  --db N
shape:
  --threads N        threads, each with its own io_context                 (1)
  --connections N    connections per thread                                (1)
  --concurrency N    coroutines per connection, one request in flight each (16)
  --pipeline N       commands per request                                  (1)
length:
  --requests N | --duration SECONDS   (default: 10 s)   --warmup SECONDS   (0)
  --rate R           requests per second in all; latency then counts from each
                     request's scheduled time (coordinated omission corrected)
workload:
  --ratio S:G                 SETs to GETs                             (1:10)
  --command 'ZADD __key__ 1 __data__' [--weight N]   instead of --ratio; repeatable
  --data-size N | --data-size MIN-MAX                 value bytes        (32)
  --key-space N                                                        (100000)
  --key-pattern uniform|sequential|zipf:S|gaussian                     (uniform)
  --seed N                                                             (1)
output:
  --json FILE  --html FILE  --no-live
  --driver redcoro|hiredis   --compare [--compare-rounds N]
client-side caching:
  --client-cache BYTES  reads through a tracking_cache of BYTES (suffix k, m or g) on each
                     connection; with --compare: the same load with and without it, and
                     the ratio of ops/s and the share of reads answered locally
cluster:
  --cluster          the target is a Redis Cluster (--host/--port: a seed node; without
                     them, a cluster of 3 primaries and 3 replicas of its own). With
                     --compare: the same load on the cluster and on a standalone server at
                     the same requests in flight per socket (--concurrency divided by the
                     number of primaries), and the client CPU per operation of each
  --cluster-primaries N  --cluster-replicas N   size of the tool's own cluster     (3, 1)
Ctrl-C stops the run and prints what was measured so far.
)";
}

parse_result parse_options(int argc, const char* const* argv) {
  parse_result result;
  options o;
  bool ratio_given = false;
  bool length_given = false;
  try {
    // Each option takes its value as --name=value or --name value.
    std::map<std::string, std::function<void(std::string_view)>> with_value = {
        {"host", [&](std::string_view v) { o.host = v; }},
        {"port", [&](std::string_view v) { o.port = number<std::uint16_t>("port", v, 1, 65535); }},
        {"unix", [&](std::string_view v) { o.unix_socket = v; }},
        {"cacert", [&](std::string_view v) { o.tls_ca = v; }},
        {"cert", [&](std::string_view v) { o.tls_cert = v; }},
        {"key", [&](std::string_view v) { o.tls_key = v; }},
        {"sni", [&](std::string_view v) { o.tls_server_name = v; }},
        {"user", [&](std::string_view v) { o.user = v; }},
        {"password", [&](std::string_view v) { o.password = v; }},
        {"db", [&](std::string_view v) { o.db = number<int>("db", v, 0, 1 << 20); }},
        {"threads", [&](std::string_view v) { o.threads = number<int>("threads", v, 1, 1024); }},
        {"connections",
         [&](std::string_view v) { o.connections = number<int>("connections", v, 1, 100000); }},
        {"concurrency",
         [&](std::string_view v) { o.concurrency = number<int>("concurrency", v, 1, 100000); }},
        {"pipeline",
         [&](std::string_view v) { o.pipeline = number<int>("pipeline", v, 1, 1000000); }},
        {"requests",
         [&](std::string_view v) {
           o.requests = number<std::uint64_t>("requests", v, 1, UINT64_MAX);
           length_given = true;
         }},
        {"duration",
         [&](std::string_view v) {
           o.duration_s = real("duration", v, 0.001);
           length_given = true;
         }},
        {"warmup", [&](std::string_view v) { o.warmup_s = real("warmup", v, 0); }},
        {"client-cache",
         [&](std::string_view v) {
           std::uint64_t unit = 1;
           if (!v.empty() && (v.back() == 'k' || v.back() == 'm' || v.back() == 'g')) {
             unit = v.back() == 'k' ? 1024 : v.back() == 'm' ? 1024 * 1024 : 1024 * 1024 * 1024;
             v.remove_suffix(1);
           }
           o.client_cache =
               number<std::uint64_t>("client-cache", v, 1, std::uint64_t{1} << 40) * unit;
         }},
        {"rate", [&](std::string_view v) { o.rate = real("rate", v, 0.001); }},
        {"ratio",
         [&](std::string_view v) {
           const auto colon = v.find(':');
           if (colon == std::string_view::npos)
             throw bad_option{"--ratio: expected SETS:GETS, like 1:10"};
           o.set_ratio = number<unsigned>("ratio", v.substr(0, colon), 0, 1000000);
           o.get_ratio = number<unsigned>("ratio", v.substr(colon + 1), 0, 1000000);
           if (o.set_ratio + o.get_ratio == 0) throw bad_option{"--ratio: 0:0 sends nothing"};
           ratio_given = true;
         }},
        {"command",
         [&](std::string_view v) {
           auto words = words_of(v);
           if (words.empty()) throw bad_option{"--command: empty"};
           o.commands.push_back({std::move(words), 1});
         }},
        {"weight",
         [&](std::string_view v) {
           if (o.commands.empty()) throw bad_option{"--weight: must follow a --command"};
           o.commands.back().weight = number<unsigned>("weight", v, 1, 1000000);
         }},
        {"data-size",
         [&](std::string_view v) {
           const auto dash = v.find('-');
           if (dash == std::string_view::npos) {
             o.data_min = o.data_max = number<std::uint32_t>("data-size", v, 1, 512u << 20);
           } else {
             o.data_min = number<std::uint32_t>("data-size", v.substr(0, dash), 1, 512u << 20);
             o.data_max = number<std::uint32_t>("data-size", v.substr(dash + 1), 1, 512u << 20);
             if (o.data_max < o.data_min) throw bad_option{"--data-size: MIN-MAX with MAX < MIN"};
           }
         }},
        {"key-space",
         [&](std::string_view v) {
           o.key_space = number<std::uint64_t>("key-space", v, 1, std::uint64_t{1} << 34);
         }},
        {"key-pattern",
         [&](std::string_view v) {
           if (v == "uniform") {
             o.key_pattern = key_pattern_kind::uniform;
           } else if (v == "sequential") {
             o.key_pattern = key_pattern_kind::sequential;
           } else if (v == "gaussian") {
             o.key_pattern = key_pattern_kind::gaussian;
           } else if (v.substr(0, 5) == "zipf:") {
             o.key_pattern = key_pattern_kind::zipf;
             o.zipf_s = real("key-pattern zipf", v.substr(5), 0.01);
           } else {
             throw bad_option{"--key-pattern: '" + std::string(v) +
                              "' is not uniform, sequential, zipf:S or gaussian"};
           }
         }},
        {"seed",
         [&](std::string_view v) { o.seed = number<std::uint64_t>("seed", v, 0, UINT64_MAX); }},
        {"json", [&](std::string_view v) { o.json_path = v; }},
        {"html", [&](std::string_view v) { o.html_path = v; }},
        {"driver",
         [&](std::string_view v) {
           if (v != "redcoro" && v != "hiredis")
             throw bad_option{"--driver: '" + std::string(v) + "' is not redcoro or hiredis"};
           o.driver = v;
         }},
        {"cluster-primaries",
         [&](std::string_view v) {
           o.cluster_primaries = number<int>("cluster-primaries", v, 1, 16);
         }},
        {"cluster-replicas",
         [&](std::string_view v) {
           o.cluster_replicas = number<int>("cluster-replicas", v, 0, 4);
         }},
        {"compare-rounds",
         [&](std::string_view v) { o.compare_rounds = number<int>("compare-rounds", v, 1, 100); }},
    };
    const std::map<std::string, std::function<void()>> flags = {
        {"tls", [&] { o.tls = true; }},
        {"compare", [&] { o.compare = true; }},
        {"cluster", [&] { o.cluster = true; }},
        {"no-live", [&] { o.live = false; }},
    };
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        result.help = true;
        result.message = usage();
        return result;
      }
      if (arg.substr(0, 2) != "--")
        throw bad_option{"unexpected argument '" + std::string(arg) + "'"};
      arg.remove_prefix(2);
      std::string name(arg.substr(0, arg.find('=')));
      if (auto f = flags.find(name); f != flags.end()) {
        if (arg.find('=') != std::string_view::npos)
          throw bad_option{"--" + name + " takes no value"};
        f->second();
        continue;
      }
      auto opt = with_value.find(name);
      if (opt == with_value.end()) throw bad_option{"unknown option --" + name + " (see --help)"};
      std::string_view value;
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
      } else {
        if (i + 1 >= argc) throw bad_option{"--" + name + " needs a value"};
        value = argv[++i];
      }
      opt->second(value);
    }
    if (o.requests > 0 && o.duration_s > 0)
      throw bad_option{"--requests and --duration: give one of them"};
    if (!length_given) o.duration_s = 10;
    if (ratio_given && !o.commands.empty())
      throw bad_option{"--ratio and --command: give one of them"};
    if (!o.unix_socket.empty() && o.tls) throw bad_option{"--tls works over TCP, not --unix"};
    if (!o.unix_socket.empty() && o.port != 0) throw bad_option{"--unix and --port: give one"};
    if (o.tls && o.port == 0)
      throw bad_option{"--tls needs --port (the server this tool starts speaks plain TCP)"};
    if ((o.tls_cert.empty()) != (o.tls_key.empty()))
      throw bad_option{"--cert and --key go together"};
    if (o.requests > 0 && o.requests < o.total_coroutines())
      throw bad_option{"--requests " + std::to_string(o.requests) + " is fewer than the " +
                       std::to_string(o.total_coroutines()) +
                       " coroutines (threads x connections x concurrency)"};
    if (o.driver == "hiredis" && o.tls)
      throw bad_option{"--driver hiredis: Debian's hiredis 0.14 has no TLS"};
    if (o.rate > 0 && (o.driver == "hiredis" || o.compare))
      throw bad_option{"--rate paces the redcoro driver only (not hiredis or --compare)"};
    if (o.client_cache && (o.cluster || o.driver == "hiredis"))
      throw bad_option{
          "--client-cache: the redcoro driver on one server (not --cluster or hiredis)"};
    if (o.compare && !o.client_cache && (o.tls || !o.unix_socket.empty()))
      throw bad_option{"--compare runs redis-benchmark too: use plain TCP"};
    if (o.cluster && (o.driver == "hiredis" || !o.unix_socket.empty()))
      throw bad_option{"--cluster: the redcoro driver over TCP (hiredis has no cluster client)"};
    if (o.compare && !o.client_cache && !o.commands.empty())
      throw bad_option{"--compare uses the --ratio workload (redis-benchmark runs SET and GET)"};
  } catch (const bad_option& e) {
    result.message = e.message;
    return result;
  }
  result.opts = std::move(o);
  return result;
}

std::vector<std::pair<std::string, std::string>> options::describe() const {
  std::vector<std::pair<std::string, std::string>> d;
  auto add = [&](std::string k, std::string v) { d.emplace_back(std::move(k), std::move(v)); };
  if (!unix_socket.empty())
    add("target", "unix:" + unix_socket);
  else
    add("target", host + ":" + (port ? std::to_string(port) : std::string("(own server)")));
  add("tls", tls ? "on" : "off");
  if (cluster)
    add("cluster", port ? std::string("yes")
                        : "own: " + std::to_string(cluster_primaries) + " primaries, " +
                              std::to_string(cluster_replicas) + " replicas each");
  if (!user.empty()) add("user", user);
  add("db", std::to_string(db));
  add("threads", std::to_string(threads));
  add("connections per thread", std::to_string(connections));
  add("concurrency per connection", std::to_string(concurrency));
  add("pipeline", std::to_string(pipeline));
  if (requests) add("requests", std::to_string(requests));
  if (duration_s > 0) add("duration s", std::to_string(duration_s));
  add("warmup s", std::to_string(warmup_s));
  add("rate", rate > 0 ? std::to_string(rate) + " requests/s" : std::string("unlimited"));
  if (commands.empty()) {
    add("ratio SET:GET", std::to_string(set_ratio) + ":" + std::to_string(get_ratio));
  } else {
    for (const auto& c : commands) {
      std::string text;
      for (const auto& w : c.words)
        text += (text.empty() ? "" : " ") + w;
      add("command", text + " (weight " + std::to_string(c.weight) + ")");
    }
  }
  add("data size", data_min == data_max
                       ? std::to_string(data_min)
                       : std::to_string(data_min) + "-" + std::to_string(data_max));
  add("key space", std::to_string(key_space));
  const char* patterns[] = {"uniform", "sequential", "zipf", "gaussian"};
  add("key pattern",
      std::string(patterns[static_cast<int>(key_pattern)]) +
          (key_pattern == key_pattern_kind::zipf ? ":" + std::to_string(zipf_s) : ""));
  add("seed", std::to_string(seed));
  if (client_cache) add("client cache bytes", std::to_string(client_cache));
  if (cluster)
    add("driver", compare ? "compare: redcoro on the cluster and on a standalone server"
                          : "redcoro (cluster)");
  else if (client_cache)
    add("driver", compare ? "compare: redcoro with and without the client-side cache"
                          : "redcoro with a client-side cache");
  else
    add("driver", compare ? "compare: redcoro, hiredis, redis-benchmark" : driver);
  return d;
}

}  // namespace redcoro::bench
