// redcoro-bench: drives a Redis server with redcoro (or hiredis), records the latency of every
// request, checks what it reads, and reports. See bench/README.md and --help.

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

  // Without a target: a redis-server of our own on a free loopback port, stopped at the end.
  std::unique_ptr<redcoro::test::redis_server> own;
  bench::target t{o.host, o.port, o.unix_socket};
  if (o.port == 0 && o.unix_socket.empty()) {
    try {
      own = std::make_unique<redcoro::test::redis_server>(
          std::vector<std::string>{"--maxmemory-policy", "noeviction"});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "redcoro-bench: cannot start redis-server: %s\n", e.what());
      return 2;
    }
    t = {"127.0.0.1", own->port(), ""};
    std::fprintf(stderr, "redcoro-bench: started redis-server on 127.0.0.1:%u\n",
                 static_cast<unsigned>(t.port));
  }

  std::vector<bench::run_result> runs;
  if (o.compare) {
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
