// A cache hit against the raw GET it is made of, on a redis-server this program starts.
//
// Through one handle (a single multiplexed connection), `cache::get<std::string>` of a 32-byte
// value is timed against `async_exec(cmd::get(key))` into a std::string of the same key, at
// 1 and 64 requests in flight. Contenders alternate run by run; the table shows medians of
// ops/s and of client CPU per op (user+sys from getrusage: the server is another process),
// and the cache's ratio to the raw GET of the same shape (also as the median of the ratios of
// adjacent runs, "paired"); user CPU alone is shown too (the
// cache's own work is user CPU; system CPU depends on how requests coalesce into writes). Before
// timing, both read every key and must agree. Heap allocations per op are counted in an untimed
// pass.
//
//   bench_cache_hit [--rounds=N] [--scale=F]   (more rounds of fewer ops steady the ratios on
//                                                a busy machine: --rounds=31 --scale=0.3)

#include "support/alloc_counter.hpp"
#include "support/redis_server.hpp"
#include "support/report.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace rc = redcoro::cache;
using redcoro::bench::allocation_scope;
using redcoro::bench::median;

namespace {

constexpr int key_count = 1000;
const std::string prefix = "bench:";

std::string short_key(int i) {
  return "key:" + std::to_string(i % key_count);
}

// User and system CPU seconds of this process.
std::pair<double, double> cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) / 1e6,
          static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) / 1e6};
}

enum class path { raw, cached, timed };

struct sample {
  double ops_per_second = 0;
  double cpu_us_per_op = 0;
  double user_us_per_op = 0;
  double allocs_per_op = 0;
};

// `coroutines` coroutines, `ops` GETs in all, through `h` (raw) or `c` (the cache).
// `timed` is a second cache over the same handle that records every get's latency.
sample run(asio::io_context& ioc, redcoro::handle& h, rc::cache& c, rc::cache& timed, path p,
           int coroutines, std::size_t ops, bool count_allocations) {
  const std::size_t per = std::max<std::size_t>(1, ops / static_cast<std::size_t>(coroutines));
  int finished = 0;
  std::size_t bytes = 0;
  std::unique_ptr<allocation_scope> window;
  auto worker = [&](int id) -> asio::awaitable<void> {
    // Keys made before the loop, so that both contenders time only the call.
    std::vector<std::string> full, mine;
    for (int i = 0; i < 16; ++i) {
      mine.push_back(short_key(id * 16 + i));
      full.push_back(prefix + mine.back());
    }
    for (std::size_t i = 0; i < per; ++i) {
      if (p == path::raw) {
        auto r = co_await h.async_exec(cmd::get(full[i % 16]), asio::use_awaitable);
        bytes += r.value()->size();
      } else {
        auto r = co_await (p == path::cached ? c : timed).get<std::string>(mine[i % 16]);
        bytes += r.value()->size();
      }
    }
    ++finished;
  };
  if (count_allocations) window = std::make_unique<allocation_scope>();
  const auto cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int w = 0; w < coroutines; ++w)
    asio::co_spawn(ioc, worker(w), asio::detached);
  while (finished < coroutines)
    ioc.run_one();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto cpu1 = cpu_seconds();
  const double user = cpu1.first - cpu0.first;
  const double cpu = user + cpu1.second - cpu0.second;
  const double n = static_cast<double>(per) * coroutines;
  sample s{n / wall, cpu * 1e6 / n, user * 1e6 / n, 0};
  if (window) s.allocs_per_op = static_cast<double>(window->count()) / n;
  if (bytes != per * static_cast<std::size_t>(coroutines) * 32) {
    std::fprintf(stderr, "wrong values read: %zu bytes\n", bytes);
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  double scale = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rounds=", 9) == 0) {
      rounds = std::max(1, std::atoi(argv[i] + 9));
    } else if (std::strncmp(argv[i], "--scale=", 8) == 0) {
      scale = std::max(0.01, std::atof(argv[i] + 8));
    } else {
      std::fprintf(stderr, "usage: %s [--rounds=N] [--scale=F]\n", argv[0]);
      return 2;
    }
  }
  redcoro::test::redis_server server;
  asio::io_context ioc(1);
  redcoro::connection_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = server.port();
  cfg.pool_size = 0;  // one multiplexed connection
  redcoro::handle h(ioc, cfg);
  rc::cache c(h, {.prefix = prefix});
  rc::cache timed(h, {.prefix = prefix, .record_latency = true});

  // The values, and the check: both paths read the same bytes for every key.
  bool ok = true;
  bool checked = false;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        const std::string value(32, 'v');
        for (int i = 0; i < key_count; ++i) {
          const std::string k = short_key(i);
          auto s = co_await c.set(k, value);
          s.value();
        }
        for (int i = 0; i < key_count; ++i) {
          const std::string k = short_key(i);
          const std::string full = prefix + k;
          auto raw = co_await h.async_exec(cmd::get(full), asio::use_awaitable);
          auto hit = co_await c.get<std::string>(k);
          if (!hit || !*hit || raw.value() != **hit) ok = false;
        }
      }(),
      [&](std::exception_ptr e) {
        if (e) ok = false;
        checked = true;
      });
  while (!checked)
    ioc.run_one();
  if (!ok) {
    std::fprintf(stderr, "the cache and the raw GET disagree\n");
    return 1;
  }

  struct contender {
    std::string group, name;
    path p;
    int coroutines;
    std::size_t ops;
  };
  const auto n = [&](double base) { return static_cast<std::size_t>(base * scale); };
  const std::vector<contender> all = {
      {"1 in flight", "raw cmd::get", path::raw, 1, n(40000)},
      {"1 in flight", "cache.get<std::string>", path::cached, 1, n(40000)},
      {"1 in flight", "... with record_latency", path::timed, 1, n(40000)},
      {"64 in flight", "raw cmd::get", path::raw, 64, n(400000)},
      {"64 in flight", "cache.get<std::string>", path::cached, 64, n(400000)},
      {"64 in flight", "... with record_latency", path::timed, 64, n(400000)},
  };
  constexpr std::size_t per_group = 3;
  for (const auto& k : all)  // warm-up
    run(ioc, h, c, timed, k.p, k.coroutines, std::max<std::size_t>(1000, k.ops / 20), false);
  std::map<std::string, std::vector<double>> ops, cpu, user;
  for (int r = 0; r < rounds; ++r) {
    // Rotate which contender of a shape goes first, so none always follows another.
    for (std::size_t j = 0; j < all.size(); ++j) {
      const std::size_t first = j - j % per_group;
      const auto& k = all[first + (j - first + static_cast<std::size_t>(r)) % per_group];
      const sample s = run(ioc, h, c, timed, k.p, k.coroutines, k.ops, false);
      ops[k.group + k.name].push_back(s.ops_per_second);
      cpu[k.group + k.name].push_back(s.cpu_us_per_op);
      user[k.group + k.name].push_back(s.user_us_per_op);
    }
  }
  std::printf(
      "\nGET of 32-byte values through one handle (single connection), medians of %d rounds;\n"
      "ratios are to the raw cmd::get of the same shape\n\n",
      rounds);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < all.size(); i += per_group) {
    const double base_ops = median(ops[all[i].group + all[i].name]);
    const double base_cpu = median(cpu[all[i].group + all[i].name]);
    const double base_user = median(user[all[i].group + all[i].name]);
    for (std::size_t j = i; j < i + per_group; ++j) {
      const auto& k = all[j];
      const double o = median(ops[k.group + k.name]), u = median(cpu[k.group + k.name]);
      const double us = median(user[k.group + k.name]);
      // The median of the round-by-round ratios: each cache run against the raw run next to
      // it, which a load changing over seconds (a shared machine) disturbs less.
      std::vector<double> paired;
      const auto& mine = cpu[k.group + k.name];
      const auto& base = cpu[all[i].group + all[i].name];
      for (std::size_t r = 0; r < mine.size(); ++r)
        paired.push_back(mine[r] / base[r]);
      const sample a =
          run(ioc, h, c, timed, k.p, k.coroutines, std::max<std::size_t>(2000, k.ops / 10), true);
      rows.push_back(
          {k.group, k.name, redcoro::bench::format_number(o),
           redcoro::bench::format_ratio(o / base_ops), redcoro::bench::format_number(u, 2),
           redcoro::bench::format_ratio(u / base_cpu), redcoro::bench::format_ratio(median(paired)),
           redcoro::bench::format_number(us, 2), redcoro::bench::format_ratio(us / base_user),
           redcoro::bench::format_number(a.allocs_per_op, 2)});
    }
  }
  redcoro::bench::print_table({"shape", "client", "ops/s", "vs raw", "CPU us/op", "CPU vs raw",
                               "paired", "user us/op", "user vs raw", "allocs/op"},
                              rows);
  if (timed.latency().gets.count() == 0) {
    std::fprintf(stderr, "record_latency recorded nothing\n");
    return 1;
  }

  // A stampede: 10,000 concurrent get_or_load of a cold key (a loader that takes 5 ms).
  // Single flight makes it one load; the wall time is that load plus 10,000 GETs.
  std::vector<double> stampede_ms;
  for (int r = 0; r < rounds; ++r) {
    constexpr int callers = 10'000;
    const std::string key = "cold:" + std::to_string(r);
    int loads = 0;
    int finished = 0;
    int served = 0;
    auto loader = [&]() -> asio::awaitable<std::string> {
      ++loads;
      asio::steady_timer t(ioc, std::chrono::milliseconds(5));
      co_await t.async_wait(asio::use_awaitable);
      co_return std::string(32, 'l');
    };
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < callers; ++i)
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            auto v = co_await c.get_or_load<std::string>(key, loader);
            if (v && *v) ++served;
            ++finished;
          },
          asio::detached);
    while (finished < callers)
      ioc.run_one();
    stampede_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (loads != 1 || served != callers) {
      std::fprintf(stderr, "stampede: %d loads, %d of %d served\n", loads, served, callers);
      return 1;
    }
  }
  std::printf(
      "\nStampede: 10,000 concurrent get_or_load of a cold key finished with 1 load, every "
      "round (%d); median wall %.1f ms\n",
      rounds, median(stampede_ms));
  h.close();
  ioc.run_for(std::chrono::seconds(1));
  return 0;
}
