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

#include "support/paired.hpp"
#include "support/redis_server.hpp"
#include "support/report.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

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
using redcoro::bench::median;
using redcoro::bench::sample;

namespace {

constexpr int key_count = 1000;
const std::string prefix = "bench:";

std::string short_key(int i) {
  return "key:" + std::to_string(i % key_count);
}

enum class path { raw, cached, timed };

// `coroutines` coroutines, `ops` GETs in all, through `h` (raw) or `c` (the cache).
// `timed` is a second cache over the same handle that records every get's latency.
sample run(asio::io_context& ioc, redcoro::handle& h, rc::cache& c, rc::cache& timed, path p,
           int coroutines, std::size_t ops, bool count_allocations) {
  const std::size_t per = std::max<std::size_t>(1, ops / static_cast<std::size_t>(coroutines));
  int finished = 0;
  std::size_t bytes = 0;
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
  const double n = static_cast<double>(per) * coroutines;
  const sample s = redcoro::bench::measure(
      n,
      [&] {
        for (int w = 0; w < coroutines; ++w)
          asio::co_spawn(ioc, worker(w), asio::detached);
        while (finished < coroutines)
          ioc.run_one();
      },
      count_allocations);
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
  std::printf(
      "\nGET of 32-byte values through one handle (single connection), medians of %d rounds;\n"
      "ratios are to the raw cmd::get of the same shape\n\n",
      rounds);
  std::vector<redcoro::bench::paired_contender> names;
  for (const auto& k : all)
    names.push_back({k.group, k.name, k.ops});
  redcoro::bench::run_paired(
      names, 3, rounds, 1000,
      [&](std::size_t i, std::size_t ops, bool count) {
        return run(ioc, h, c, timed, all[i].p, all[i].coroutines, ops, count);
      },
      "raw");
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
