// redcoro-bench: drives a Redis server with redcoro (or hiredis), records the latency of every
// request, checks what it reads, and reports. See bench/README.md and --help.

#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include "tool/load.hpp"
#include "tool/options.hpp"
#include "tool/report.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bench = redcoro::bench;

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_sigint(int) {
  interrupted = true;
}

// The round with the median ops/s.
bench::run_result median_round(std::vector<bench::run_result> rounds) {
  std::sort(rounds.begin(), rounds.end(),
            [](const auto& a, const auto& b) { return a.ops_per_s < b.ops_per_s; });
  return std::move(rounds[rounds.size() / 2]);
}

bool write_file(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::ofstream out(path);
  write(out);
  out.close();
  if (!out) {
    std::fprintf(stderr, "redcoro-bench: cannot write %s\n", path.c_str());
    return false;
  }
  std::fprintf(stderr, "redcoro-bench: wrote %s\n", path.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::parse_result parsed = bench::parse_options(argc, argv);
  if (parsed.help) {
    std::fputs(parsed.message.c_str(), stdout);
    return 0;
  }
  if (!parsed.opts) {
    std::fprintf(stderr, "redcoro-bench: %s\n", parsed.message.c_str());
    return 2;
  }
  bench::options o = *parsed.opts;
  std::signal(SIGINT, on_sigint);

  // Without a target: a redis-server (or cluster) of our own on free loopback ports, stopped
  // at the end. --cluster --compare needs a standalone server too.
  std::unique_ptr<redcoro::test::redis_server> own;
  std::unique_ptr<redcoro::test::redis_cluster> own_cluster;
  bench::target t{o.host, o.port, o.unix_socket, o.cluster};
  if (o.cluster && o.port == 0) {
    try {
      own_cluster = std::make_unique<redcoro::test::redis_cluster>(
          static_cast<std::size_t>(o.cluster_primaries),
          static_cast<std::size_t>(o.cluster_replicas));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "redcoro-bench: cannot start a cluster: %s\n", e.what());
      return 2;
    }
    t = {"127.0.0.1", own_cluster->ports()[0], "", true};
    std::fprintf(stderr, "redcoro-bench: started a cluster of %zu nodes, seed 127.0.0.1:%u\n",
                 own_cluster->size(), static_cast<unsigned>(t.port));
  }
  bench::target standalone = t;
  if ((o.port == 0 && o.unix_socket.empty() && !o.cluster) || (o.cluster && o.compare)) {
    try {
      own = std::make_unique<redcoro::test::redis_server>(
          std::vector<std::string>{"--maxmemory-policy", "noeviction"});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "redcoro-bench: cannot start redis-server: %s\n", e.what());
      return 2;
    }
    standalone = {"127.0.0.1", own->port(), "", false};
    if (!o.cluster) t = standalone;
    std::fprintf(stderr, "redcoro-bench: started redis-server on 127.0.0.1:%u\n",
                 static_cast<unsigned>(standalone.port));
  }

  std::vector<bench::run_result> runs;
  std::string verdict;
  if (o.cluster && o.compare) {
    // The same load on the cluster and on one server, round after round; the cluster
    // layer's cost is the ratio of client CPU per operation, median over the rounds. Like
    // with like: the cluster spreads --concurrency requests over one socket per primary, so
    // the server gets as many in flight as each of those sockets carries. (With the same
    // total, each read and write on the cluster would carry a fraction of the replies, and
    // the ratio would show that batching, not the layer.)
    const std::size_t primaries = own_cluster ? static_cast<std::size_t>(o.cluster_primaries)
                                              : bench::cluster_primaries(o, t);
    if (primaries == 0) {
      std::fprintf(stderr, "redcoro-bench: cannot read the cluster's primaries\n");
      return 1;
    }
    bench::options per_socket = o;
    per_socket.concurrency =
        std::max(1, static_cast<int>((o.concurrency + static_cast<int>(primaries) / 2) /
                                     static_cast<int>(primaries)));
    std::vector<bench::run_result> on_cluster, on_standalone;
    std::vector<double> ratios;
    for (int r = 0; r < o.compare_rounds && !interrupted; ++r) {
      on_cluster.push_back(bench::run_redcoro(o, t, interrupted));
      if (interrupted) break;
      on_standalone.push_back(bench::run_redcoro(per_socket, standalone, interrupted));
      if (on_standalone.back().cpu_us_per_op > 0)
        ratios.push_back(on_cluster.back().cpu_us_per_op / on_standalone.back().cpu_us_per_op);
    }
    for (auto* set : {&on_cluster, &on_standalone})
      if (!set->empty()) runs.push_back(median_round(*set));
    if (!ratios.empty()) {
      std::sort(ratios.begin(), ratios.end());
      char line[400];
      std::snprintf(line, sizeof line,
                    "cluster layer: %.2fx the client CPU per operation of a standalone server "
                    "at the same requests in flight per socket (%d over %zu primar%s, %d on "
                    "the server; median of %zu rounds)\n",
                    ratios[ratios.size() / 2], o.concurrency, primaries,
                    primaries == 1 ? "y" : "ies", per_socket.concurrency, ratios.size());
      verdict = line;
    }
  } else if (o.compare && o.client_cache) {
    // The same load with the client-side cache and without it, round after round.
    bench::options plain = o;
    plain.client_cache = 0;
    std::vector<bench::run_result> cached, direct;
    std::vector<double> ratios;
    for (int r = 0; r < o.compare_rounds && !interrupted; ++r) {
      cached.push_back(bench::run_redcoro(o, t, interrupted));
      if (interrupted) break;
      direct.push_back(bench::run_redcoro(plain, t, interrupted));
      if (direct.back().ops_per_s > 0)
        ratios.push_back(cached.back().ops_per_s / direct.back().ops_per_s);
    }
    for (auto* set : {&cached, &direct})
      if (!set->empty()) runs.push_back(median_round(*set));
    if (!ratios.empty()) {
      std::sort(ratios.begin(), ratios.end());
      const bench::run_result& c = runs.front();
      char line[400];
      std::snprintf(line, sizeof line,
                    "client-side cache: %.2fx the ops/s of the same load without it, %.1f%% of "
                    "reads answered locally (median of %zu rounds)\n",
                    ratios[ratios.size() / 2],
                    c.local_reads ? 100.0 * static_cast<double>(c.local_hits) /
                                        static_cast<double>(c.local_reads)
                                  : 0.0,
                    ratios.size());
      verdict = line;
    }
  } else if (o.compare) {
    std::vector<bench::run_result> mine, theirs, reference;
    for (int r = 0; r < o.compare_rounds && !interrupted; ++r) {
      mine.push_back(bench::run_redcoro(o, t, interrupted));
      if (interrupted) break;
      theirs.push_back(bench::run_hiredis(o, t, interrupted));
      if (interrupted) break;
      // redis-benchmark sends as many commands as redcoro did in this round.
      reference.push_back(
          bench::run_redis_benchmark(o, t, std::max<std::uint64_t>(mine.back().ops, 1000)));
    }
    for (auto* set : {&mine, &theirs, &reference})
      if (!set->empty()) runs.push_back(median_round(*set));
  } else if (o.driver == "hiredis") {
    runs.push_back(bench::run_hiredis(o, t, interrupted));
  } else {
    runs.push_back(bench::run_redcoro(o, t, interrupted));
  }

  if (interrupted) std::fprintf(stdout, "\ninterrupted: partial results\n");
  bench::print_summary(stdout, runs);
  std::fputs(verdict.c_str(), stdout);
  const auto settings = o.describe();
  bool ok = true;
  if (!o.json_path.empty())
    ok &=
        write_file(o.json_path, [&](std::ostream& out) { bench::write_json(out, settings, runs); });
  if (!o.html_path.empty())
    ok &=
        write_file(o.html_path, [&](std::ostream& out) { bench::write_html(out, settings, runs); });
  for (const auto& r : runs)
    if (r.verify_failures > 0) {
      std::fprintf(stderr, "redcoro-bench: %s read back data it did not write (%llu times)\n",
                   r.driver.c_str(), static_cast<unsigned long long>(r.verify_failures));
      return 3;
    }
  return ok ? 0 : 1;
}
