// The rate limiters over a real server and a real cluster: 20 coroutines on 2 connections
// against a limit of 100 per window, what remaining and retry_after promise, weights, reset,
// and the server's clock as the only clock.
//
// The client's clock: the API takes no time at all (every script reads TIME). The tests show
// it twice: a client whose clock is skewed by 90 minutes (libfaketime, in a worker process)
// shares one window with an unskewed one; and the decisions follow the server's TIME:
// reset_after of a fixed window is what TIME, read just before and just after, says is left
// of the window, and the sliding log's entries carry TIME's microseconds.
#include "recipes/worker.hpp"
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/recipes/limiter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REDCORO_HAS_ASAN 1
#endif
#endif
#ifndef REDCORO_HAS_ASAN
#define REDCORO_HAS_ASAN 0
#endif
using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
namespace rr = redcoro::recipes;
using rr::limiter_algorithm;

namespace limiter_test {

using clock = std::chrono::steady_clock;

void with_handles(const handle_config& cfg,
                  const std::function<asio::awaitable<void>(handle&, handle&)>& body,
                  std::chrono::seconds limit = 60s) {
  asio::io_context ioc;
  handle a(ioc, cfg), b(ioc, cfg);
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::exception_ptr failure;
        try {
          auto ra = co_await a.async_wait_ready(10s, asio::use_awaitable);
          auto rb = co_await b.async_wait_ready(10s, asio::use_awaitable);
          REQUIRE(ra);
          REQUIRE(rb);
          co_await body(a, b);
        } catch (...) {
          failure = std::current_exception();
        }
        a.close();
        b.close();
        if (failure) std::rethrow_exception(failure);
      },
      limit);
}

// Two single connections to one server (pool_size 0: each handle is one multiplexed
// connection).
connection_config two_connections(const redis_server& s) {
  auto cfg = local_config(s.port());
  cfg.pool_size = 0;
  return cfg;
}

void on_both(const std::function<asio::awaitable<void>(handle&, handle&)>& body) {
  {
    INFO("single server");
    redis_server server;
    with_handles(two_connections(server), body);
  }
  {
    INFO("cluster");
    redis_cluster cluster(3, 0);
    REQUIRE(cluster.wait_healthy());
    with_handles(config_for(cluster), body);
  }
}

rr::limiter_options options(limiter_algorithm a, std::int64_t limit,
                            std::chrono::milliseconds window) {
  rr::limiter_options o;
  o.algorithm = a;
  o.limit = limit;
  o.window = window;
  return o;
}

asio::awaitable<rr::limit_result> consume(rr::rate_limiter& l, const std::string& key,
                                          std::int64_t n = 1) {
  auto d = co_await l.async_consume(key, n, asio::use_awaitable);
  co_return d;
}

asio::awaitable<rr::limit_result> peek(rr::rate_limiter& l, const std::string& key) {
  auto d = co_await l.async_remaining(key, asio::use_awaitable);
  co_return d;
}

// The server's clock, in microseconds.
asio::awaitable<std::int64_t> server_time_us(handle& h) {
  auto r = co_await h.async_exec(command<std::vector<std::string>>("TIME"), asio::use_awaitable);
  const auto& v = r.value();
  co_return std::stoll(v.at(0)) * 1000000 + std::stoll(v.at(1));
}

// Exhausts `key` (sequentially), returns the first denial.
asio::awaitable<rr::limit_result> exhaust(rr::rate_limiter& l, const std::string& key) {
  for (int i = 0; i < 10000; ++i) {
    auto d = co_await consume(l, key);
    if (!d.allowed) co_return d;
  }
  FAIL("never denied");
  co_return rr::limit_result();
}

struct decision {
  bool allowed;
  std::int64_t remaining;
  std::chrono::milliseconds retry_after, reset_after;
};

// 20 coroutines, 10 on each handle, ask `key` of limiters made alike until `run_for` has
// passed and each has seen a denial since: every window in which one was allowed is then
// filled up.
asio::awaitable<std::vector<decision>> hammer(handle& a, handle& b, const rr::limiter_options& o,
                                              const std::string& key,
                                              std::chrono::milliseconds run_for) {
  rr::rate_limiter la(a, o), lb(b, o);
  // Start at the beginning of a window: fill the current one, then wait for its end.
  auto first = co_await exhaust(la, key);
  co_await sleep_for(first.retry_after + 1ms);
  std::vector<decision> all;
  int running = 20;
  const auto until = clock::now() + run_for;
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        a.get_executor(),
        [&, i]() -> asio::awaitable<void> {
          rr::rate_limiter& l = i % 2 == 0 ? la : lb;
          for (;;) {
            auto d = co_await consume(l, key);
            all.push_back({d.allowed, d.remaining, d.retry_after, d.reset_after});
            if (!d.allowed && clock::now() >= until) break;
          }
          --running;
        },
        asio::detached);
  }
  for (int i = 0; i < 3000 && running > 0; ++i)
    co_await sleep_for(10ms);
  REQUIRE(running == 0);
  co_return all;
}

}  // namespace limiter_test

using namespace limiter_test;

TEST_CASE("limiter: fixed window, 20 coroutines on 2 connections, exactly 100 per window",
          "[limiter]") {
  redis_server server;
  with_handles(two_connections(server), [](handle& a, handle& b) -> asio::awaitable<void> {
    const auto o = options(limiter_algorithm::fixed_window, 100, 1s);
    auto all = co_await hammer(a, b, o, "client-1", 2200ms);
    // Each window counts its allowed requests down: the allowed ones of a window carry
    // remaining 99, 98, ..., 0, each once. So with W windows, each value shows W times.
    std::map<std::int64_t, int> by_remaining;
    int allowed = 0, allowed_with_retry = 0, bad_denials = 0;
    for (const auto& d : all) {
      if (d.allowed) {
        ++allowed;
        ++by_remaining[d.remaining];
        if (d.retry_after != 0ms) ++allowed_with_retry;
      } else if (d.remaining != 0 || d.retry_after != d.reset_after || d.retry_after <= 0ms ||
                 d.retry_after > 1000ms) {
        // Denied until the window ends, and the window is what is left of it.
        ++bad_denials;
      }
    }
    CHECK(allowed_with_retry == 0);
    CHECK(bad_denials == 0);
    const int windows = by_remaining[99];
    CHECK(windows >= 2);
    CHECK(allowed == 100 * windows);
    CHECK(by_remaining.size() == 100);
    for (const auto& [remaining, count] : by_remaining) {
      INFO("remaining " << remaining);
      CHECK(count == windows);
    }
  });
}

TEST_CASE("limiter: sliding log, 20 coroutines on 2 connections, never more than 100 in a window",
          "[limiter]") {
  redis_server server;
  with_handles(two_connections(server), [](handle& a, handle& b) -> asio::awaitable<void> {
    const auto o = options(limiter_algorithm::sliding_log, 100, 2s);
    rr::rate_limiter probe(a, o);
    const std::string key = probe.key_of("client-2");
    // Every allowed request is an entry of the log for a whole window: reading the log every
    // 100 ms sees each of them, with the server's time it was allowed at.
    std::map<std::string, double> seen;
    bool stop = false;
    bool stopped = false;
    auto read_log = [&]() -> asio::awaitable<void> {
      auto r = co_await a.async_exec(
          command<std::vector<std::pair<std::string, double>>>("ZRANGE", key, 0, -1, "WITHSCORES"),
          asio::use_awaitable);
      for (auto& [member, score] : r.value())
        seen[member] = score;
    };
    asio::co_spawn(
        a.get_executor(),
        [&]() -> asio::awaitable<void> {
          while (!stop) {
            co_await read_log();
            co_await sleep_for(100ms);
          }
          stopped = true;
        },
        asio::detached);
    auto all = co_await hammer(a, b, o, "client-2", 4500ms);
    co_await read_log();
    stop = true;
    for (int i = 0; i < 100 && !stopped; ++i)
      co_await sleep_for(10ms);
    // `seen` also holds the entries of the first window, which hammer() filled before it
    // started: 100 more than it counted.
    const auto allowed = std::count_if(all.begin(), all.end(), [](auto& d) { return d.allowed; });
    CHECK(seen.size() == static_cast<std::size_t>(allowed) + 100);
    std::vector<double> times;
    for (const auto& [member, score] : seen)
      times.push_back(score);
    std::sort(times.begin(), times.end());
    // In any window of 2 s (of the server's clock) ending at an allowed request: at most 100.
    std::size_t worst = 0;
    for (std::size_t i = 0, j = 0; i < times.size(); ++i) {
      while (times[i] - times[j] >= 2e6)
        ++j;
      worst = std::max(worst, i - j + 1);
    }
    CHECK(worst <= 100);
    CHECK(worst == 100);  // and the limit was reached
    const auto bad_denials = std::count_if(all.begin(), all.end(), [](auto& d) {
      return !d.allowed && (d.retry_after <= 0ms || d.retry_after > 2000ms);
    });
    CHECK(bad_denials == 0);
  });
}

TEST_CASE("limiter: remaining, weights and reset say what follows", "[limiter]") {
  on_both([](handle& a, handle&) -> asio::awaitable<void> {
    for (auto algorithm : {limiter_algorithm::fixed_window, limiter_algorithm::sliding_log,
                           limiter_algorithm::sliding_window, limiter_algorithm::token_bucket}) {
      INFO("algorithm " << static_cast<int>(algorithm));
      // A window of an hour: nothing slides out, or refills, while this runs (the fixed and
      // approximate windows are aligned on the hour: start well inside one).
      rr::rate_limiter l(a, options(algorithm, 100, 1h));
      const std::string key = "weights";
      co_await l.async_reset(key, asio::use_awaitable);
      auto fresh = co_await peek(l, key);
      CHECK(fresh.allowed);
      CHECK(fresh.remaining == 100);
      if (fresh.reset_after != 0ms) FAIL("a fresh key has nothing to reset");
      const std::int64_t server_now = co_await server_time_us(a);
      const std::int64_t into_hour = (server_now / 1000) % 3600000;
      if (into_hour > 3590000)
        co_await sleep_for(std::chrono::milliseconds(3600000 - into_hour + 5));

      auto d = co_await consume(l, key, 30);
      CHECK(d.allowed);
      CHECK(d.remaining == 70);
      CHECK(d.reset_after > 0ms);
      auto asked = co_await peek(l, key);
      CHECK(asked.allowed);
      CHECK(asked.remaining == 70);
      auto asked_again = co_await peek(l, key);
      CHECK(asked_again.remaining == 70);  // asking counts nothing

      // More than what remains is denied, and not counted; what remains is allowed.
      auto too_much = co_await consume(l, key, 71);
      CHECK_FALSE(too_much.allowed);
      CHECK(too_much.retry_after > 0ms);
      CHECK(too_much.remaining == 70);
      int allowed = 0;
      for (int i = 0; i < 70; ++i) {
        auto one = co_await consume(l, key);
        if (one.allowed) ++allowed;
        if (one.remaining != 69 - i) FAIL("remaining " << one.remaining << " after " << i + 1);
      }
      CHECK(allowed == 70);
      auto denied = co_await consume(l, key);
      CHECK_FALSE(denied.allowed);
      CHECK(denied.remaining == 0);
      CHECK(denied.retry_after > 0ms);
      // The approximate window admits the next request only once the full window it leaves
      // behind weighs less than the limit: up to a window after the next one starts.
      CHECK(denied.retry_after <= (algorithm == limiter_algorithm::sliding_window ? 2h : 1h));
      auto none = co_await peek(l, key);
      CHECK_FALSE(none.allowed);

      // A weight above the limit can never pass: refused without a round trip.
      auto [ec, bad] = co_await l.async_consume(key, 101, asio::as_tuple(asio::use_awaitable));
      CHECK(ec == rr::error::invalid_argument);
      (void)bad;

      // reset forgets everything.
      co_await l.async_reset(key, asio::use_awaitable);
      auto again = co_await consume(l, key, 100);
      CHECK(again.allowed);
      CHECK(again.remaining == 0);
      co_await l.async_reset(key, asio::use_awaitable);
    }
  });
}

TEST_CASE("limiter: retry_after is when the same request is allowed again", "[limiter]") {
  on_both([](handle& a, handle&) -> asio::awaitable<void> {
    for (auto algorithm : {limiter_algorithm::fixed_window, limiter_algorithm::sliding_log,
                           limiter_algorithm::sliding_window, limiter_algorithm::token_bucket}) {
      INFO("algorithm " << static_cast<int>(algorithm));
      rr::rate_limiter l(a, options(algorithm, 20, 500ms));
      const std::string key = "retry";
      co_await l.async_reset(key, asio::use_awaitable);
      // Denied; after retry_after it is allowed (the server's clock has moved at least as
      // far as ours slept). A few rounds, each bounded.
      for (int round = 0; round < 3; ++round) {
        auto d = co_await exhaust(l, key);
        REQUIRE(d.retry_after > 0ms);
        REQUIRE(d.retry_after <= 1000ms);
        co_await sleep_for(d.retry_after);
        auto later = co_await consume(l, key);
        CHECK(later.allowed);
      }
      // Weighted: a request of 20 waits for the whole limit.
      auto heavy = co_await consume(l, key, 20);
      if (!heavy.allowed) {
        CHECK(heavy.retry_after <= 1000ms);
        co_await sleep_for(heavy.retry_after);
        auto heavy_later = co_await consume(l, key, 20);
        CHECK(heavy_later.allowed);
      }
      // reset_after: nothing counted is left once it has passed.
      auto before = co_await peek(l, key);
      co_await sleep_for(before.reset_after);
      auto full = co_await peek(l, key);
      CHECK(full.remaining == 20);
      co_await l.async_reset(key, asio::use_awaitable);
    }
  });
}

TEST_CASE("limiter: decisions follow the server's TIME, not the client's clock", "[limiter]") {
  on_both([](handle& a, handle&) -> asio::awaitable<void> {
    // A fixed window of an hour: reset_after is what is left of the server's current hour.
    rr::rate_limiter fixed(a, options(limiter_algorithm::fixed_window, 10, 1h));
    bool checked = false;
    for (int attempt = 0; attempt < 3 && !checked; ++attempt) {
      co_await fixed.async_reset("clock", asio::use_awaitable);
      const std::int64_t before_us = co_await server_time_us(a);
      auto d = co_await consume(fixed, "clock");
      const std::int64_t after_us = co_await server_time_us(a);
      const std::int64_t before = before_us / 1000, after = after_us / 1000;
      if (before / 3600000 != after / 3600000) continue;  // an hour ended in between: again
      const std::int64_t left_after = 3600000 - after % 3600000;
      const std::int64_t left_before = 3600000 - before % 3600000;
      CHECK(d.reset_after.count() >= left_after);
      CHECK(d.reset_after.count() <= left_before);
      checked = true;
    }
    CHECK(checked);

    // The sliding log's entries carry the server's time of the decision.
    rr::rate_limiter log(a, options(limiter_algorithm::sliding_log, 10, 1h));
    co_await log.async_reset("clock", asio::use_awaitable);
    const std::int64_t before = co_await server_time_us(a);
    co_await consume(log, "clock");
    const std::int64_t after = co_await server_time_us(a);
    auto r = co_await a.async_exec(command<std::vector<std::pair<std::string, double>>>(
                                       "ZRANGE", log.key_of("clock"), 0, -1, "WITHSCORES"),
                                   asio::use_awaitable);
    REQUIRE(r.value().size() == 1);
    const auto at = static_cast<std::int64_t>(r.value()[0].second);
    CHECK(at >= before);
    CHECK(at <= after);
    co_await log.async_reset("clock", asio::use_awaitable);
  });
}

TEST_CASE("limiter: a client whose clock is skewed by 90 minutes shares the window", "[limiter]") {
#if defined(__SANITIZE_ADDRESS__) || REDCORO_HAS_ASAN
  // libfaketime preloaded into a worker built with AddressSanitizer: the worker never starts
  // (the sanitizer's runtime must come first). The g++ build runs this test.
  WARN("skipped under AddressSanitizer: libfaketime cannot be preloaded into its workers");
  return;
#endif
  const char* faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  if (::access(faketime, R_OK) != 0) FAIL("libfaketime is missing: run scripts/install-deps.sh");
  redis_server server;
  const std::string url = "redis://127.0.0.1:" + std::to_string(server.port());
  // The limiter of the worker: a fixed window of an hour, 10 per window (lock_worker.cpp).
  const auto o = options(limiter_algorithm::fixed_window, 10, 1h);
  with_handles(two_connections(server), [&](handle& a, handle&) -> asio::awaitable<void> {
    rr::rate_limiter l(a, o);
    // Well inside the server's hour, so that all of this happens in one window.
    const std::int64_t server_now = co_await server_time_us(a);
    const std::int64_t into_hour = (server_now / 1000) % 3600000;
    if (into_hour > 3540000) co_await sleep_for(std::chrono::milliseconds(3600000 - into_hour + 5));
    for (int i = 0; i < 4; ++i) {
      auto d = co_await consume(l, "shared");
      REQUIRE(d.allowed);
    }

    // 90 minutes ahead: with the client's clock it would be in another hour's window, with all
    // 10 requests to itself. It gets the 6 left, and shares the window's end.
    worker w({"limit", url, "shared", "7"},
             {std::string("LD_PRELOAD=") + faketime, "FAKETIME=+5400", "FAKETIME_NO_CACHE=1"});
    const std::string clock_line = w.read_line(20s);
    REQUIRE(clock_line.rfind("clock ", 0) == 0);
    const auto ours = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    const long long theirs = std::stoll(clock_line.substr(6));
    CHECK(theirs - ours > 5000);  // the worker's clock really is skewed
    long long last_reset = 0;
    for (int i = 0; i < 7; ++i) {
      std::istringstream line(w.read_line(20s));
      int allowed = -1;
      long long remaining = -1, retry = -1, reset = -1;
      line >> allowed >> remaining >> retry >> reset;
      INFO("decision " << i);
      CHECK(allowed == (i < 6 ? 1 : 0));
      CHECK(remaining == (i < 6 ? 5 - i : 0));
      last_reset = reset;
    }
    CHECK(w.wait(20s) == 0);
    // Ours, now: denied too, with the same end of window (a few ms of round trips apart).
    auto denied = co_await consume(l, "shared");
    CHECK_FALSE(denied.allowed);
    CHECK(std::abs(denied.retry_after.count() - last_reset) < 10000);
  });
}
