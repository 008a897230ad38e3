// The recipes against the raw EVALSHA of the same scripts, on a redis-server this program
// starts.
//
// Through one handle over a single multiplexed connection: a rate-limiter decision
// (`rate_limiter::async_allow`, fixed window) is timed against `connection::async_exec` of the
// same script (`EVALSHA` with the same keys and arguments, into the same std::array) on the
// handle's own connection; a lock acquire + release (`lock::async_try_acquire`, then
// `lock_guard::async_release`) against the two EVALSHAs of the acquire and release scripts.
// At 1 and 64 operations in flight. Contenders alternate run by run; the table shows medians
// of ops/s and of client CPU per op (user+sys from getrusage: the server is another process),
// the recipe's ratio to the raw script of the same shape (also as the median of the ratios of
// adjacent runs, "paired"), and heap allocations per op (an untimed pass). Before timing, both
// paths must decide alike.
//
//   bench_recipes [--rounds=N] [--scale=F] [--only=TEXT]
//     more rounds of fewer ops steady the ratios on a busy machine (--rounds=31 --scale=0.3);
//     --only times just the contenders whose shape or name contains TEXT (for a profiler:
//     callgrind of --only="raw EVALSHA x2" against --only="try_acquire" counts what the lock
//     adds, the checks and the scripts' loading being the same in both).

#include "support/paired.hpp"
#include "support/redis_server.hpp"
#include "support/report.hpp"
#include <redcoro/client/connection.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/limiter.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace rr = redcoro::recipes;
using redcoro::bench::sample;
using namespace std::chrono_literals;

namespace {

struct fixture {
  redcoro::handle& h;
  redcoro::connection& conn;
  rr::rate_limiter& limiter;
  rr::limiter_options limit_opts;
  std::vector<rr::lock>& locks;  // one per coroutine: uncontended
  rr::lock_options lock_opts;
};

constexpr int key_count = 1000;

enum class path { raw_limit, recipe_limit, raw_lock, recipe_lock };

// `coroutines` coroutines, `ops` operations in all.
sample run(asio::io_context& ioc, fixture& f, path p, int coroutines, std::size_t ops,
           bool count_allocations) {
  const std::size_t per = std::max<std::size_t>(1, ops / static_cast<std::size_t>(coroutines));
  int finished = 0;
  std::size_t ok = 0;
  const auto& limit_lua = rr::detail::limiter_script(f.limit_opts.algorithm);
  const auto& acquire_lua = rr::detail::acquire_script();
  const auto& release_lua = rr::detail::release_script();
  auto worker = [&](int id) -> asio::awaitable<void> {
    // Keys and arguments made before the loop, so that both contenders time only the calls.
    std::vector<std::string> mine, full;
    for (int i = 0; i < 16; ++i) {
      mine.push_back("client:" + std::to_string((id * 16 + i) % key_count));
      full.push_back(f.limiter.key_of(mine.back()));
    }
    rr::lock& l = f.locks[static_cast<std::size_t>(id)];
    const std::string lock_keys[3] = {l.key(), l.key() + ":fence", l.key() + ":wake"};
    const std::string token = "raw-token-" + std::to_string(id);
    const std::array<redcoro::cmd::arg, 2> acquire_keys{lock_keys[0], lock_keys[1]};
    const std::array<redcoro::cmd::arg, 2> release_keys{lock_keys[0], lock_keys[2]};
    const std::array<redcoro::cmd::arg, 2> lock_args{token, f.lock_opts.lease.count()};
    const std::array<redcoro::cmd::arg, 3> limit_args{f.limit_opts.limit,
                                                      f.limit_opts.window.count(), 1};
    for (std::size_t i = 0; i < per; ++i) {
      switch (p) {
        case path::raw_limit: {
          auto c = limit_lua.call<std::array<std::int64_t, 4>>(full[i % 16], limit_args);
          auto r = co_await f.conn.async_exec(std::move(c), asio::use_awaitable);
          ok += r.value()[0] == 1;
          break;
        }
        case path::recipe_limit: {
          auto d = co_await f.limiter.async_allow(mine[i % 16], asio::use_awaitable);
          ok += d.allowed;
          break;
        }
        case path::raw_lock: {
          auto a = acquire_lua.call<std::array<std::int64_t, 2>>(acquire_keys, lock_args);
          auto got = co_await f.conn.async_exec(std::move(a), asio::use_awaitable);
          auto r = release_lua.call<std::int64_t>(release_keys, lock_args);
          auto released = co_await f.conn.async_exec(std::move(r), asio::use_awaitable);
          ok += got.value()[0] == 1 && released.value() == 1;
          break;
        }
        case path::recipe_lock: {
          auto g = co_await l.async_try_acquire(asio::use_awaitable);
          const bool got = g.owns_lock();
          co_await g.async_release(asio::use_awaitable);
          ok += got;
          break;
        }
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
  if (ok != per * static_cast<std::size_t>(coroutines)) {
    std::fprintf(stderr, "an operation was refused: %zu of %zu succeeded\n", ok,
                 per * static_cast<std::size_t>(coroutines));
    std::exit(1);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5;
  double scale = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rounds=", 9) == 0) {
      rounds = std::max(1, std::atoi(argv[i] + 9));
    } else if (std::strncmp(argv[i], "--scale=", 8) == 0) {
      scale = std::max(0.01, std::atof(argv[i] + 8));
    } else if (std::strncmp(argv[i], "--only=", 7) == 0) {
      only = argv[i] + 7;
    } else {
      std::fprintf(stderr, "usage: %s [--rounds=N] [--scale=F] [--only=TEXT]\n", argv[0]);
      return 2;
    }
  }
  redcoro::test::redis_server server;
  asio::io_context ioc(1);
  redcoro::connection_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = server.port();
  cfg.pool_size = 0;  // one multiplexed connection: the handle's own
  redcoro::handle h(ioc, cfg);
  redcoro::connection* conn = h.as_connection();
  if (!conn) {
    std::fprintf(stderr, "the handle has no connection of its own\n");
    return 1;
  }
  // A limit no run reaches: every decision is "allowed", on both paths.
  rr::limiter_options limit_opts;
  limit_opts.algorithm = rr::limiter_algorithm::fixed_window;
  limit_opts.limit = 1'000'000'000;
  limit_opts.window = 1h;
  rr::rate_limiter limiter(h, limit_opts);
  rr::lock_options lock_opts;
  lock_opts.lease = 30s;
  std::vector<rr::lock> locks;
  for (int i = 0; i < 64; ++i)
    locks.emplace_back(h, "bench-" + std::to_string(i), lock_opts);
  fixture f{h, *conn, limiter, limit_opts, locks, lock_opts};

  // The check: both paths decide alike (allowed; the lock taken and released), and the scripts
  // are loaded.
  for (path p : {path::raw_limit, path::recipe_limit, path::raw_lock, path::recipe_lock})
    run(ioc, f, p, 4, 400, false);

  struct contender {
    std::string group, name;
    path p;
    int coroutines;
    std::size_t ops;
  };
  const auto n = [&](double base) { return static_cast<std::size_t>(base * scale); };
  const std::vector<contender> all = {
      {"limiter, 1 in flight", "raw EVALSHA", path::raw_limit, 1, n(20000)},
      {"limiter, 1 in flight", "rate_limiter.async_allow", path::recipe_limit, 1, n(20000)},
      {"limiter, 64 in flight", "raw EVALSHA", path::raw_limit, 64, n(200000)},
      {"limiter, 64 in flight", "rate_limiter.async_allow", path::recipe_limit, 64, n(200000)},
      {"lock, 1 in flight", "raw EVALSHA x2", path::raw_lock, 1, n(10000)},
      {"lock, 1 in flight", "try_acquire + release", path::recipe_lock, 1, n(10000)},
      {"lock, 64 in flight", "raw EVALSHA x2", path::raw_lock, 64, n(100000)},
      {"lock, 64 in flight", "try_acquire + release", path::recipe_lock, 64, n(100000)},
  };
  if (!only.empty()) {
    // Just these, no table: for profilers.
    for (const auto& k : all)
      if ((k.group + " " + k.name).find(only) != std::string::npos)
        for (int r = 0; r < rounds; ++r)
          run(ioc, f, k.p, k.coroutines, k.ops, false);
    h.close();
    ioc.run_for(std::chrono::seconds(1));
    return 0;
  }
  std::printf(
      "\nrecipes against the raw EVALSHA of the same scripts, one connection, medians of %d "
      "rounds;\nratios are to the raw script of the same shape (an op of the lock rows is an "
      "acquire and a release)\n\n",
      rounds);
  std::vector<redcoro::bench::paired_contender> names;
  for (const auto& k : all)
    names.push_back({k.group, k.name, k.ops});
  redcoro::bench::run_paired(
      names, 2, rounds, 640,
      [&](std::size_t i, std::size_t ops, bool count) {
        return run(ioc, f, all[i].p, all[i].coroutines, ops, count);
      },
      "raw");
  h.close();
  ioc.run_for(std::chrono::seconds(1));
  return 0;
}
