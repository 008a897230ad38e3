// Rate limiting with redcoro::recipes::rate_limiter (see recipes/README.md): at most `limit`
// requests per key (a client, an IP, an API token) and window. Each decision is one Lua
// script, one round trip, timed by the server's clock (TIME), so every client of the limiter
// agrees whatever their own clocks say. Each decision answers allowed, remaining, retry_after
// and reset_after. Four algorithms:
//  - fixed window: a counter per window; cheap, but a burst at the end of one window and
//    another at the start of the next get through twice the limit within one window's length;
//  - sliding log: the time of every allowed request in a sorted set: never more than the
//    limit in any window's length (memory grows with the limit);
//  - sliding window: the two-counter approximation of the log;
//  - token bucket (GCRA): bursts up to the limit, then a steady rate.
//   rate_limiter [port]       (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/limiter.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

namespace asio = boost::asio;
using example::expect;
namespace rr = redcoro::recipes;
using namespace std::chrono_literals;

// `requests` requests of one client at once: printed and returned.
asio::awaitable<std::vector<bool>> burst(rr::rate_limiter& limiter, const char* label,
                                         int requests) {
  std::vector<bool> out;
  std::printf("%-32s", label);
  for (int i = 0; i < requests; ++i) {
    auto d = co_await limiter.async_allow("client-7", asio::use_awaitable);
    if (d.allowed)
      std::printf(" allowed(%lld left)", static_cast<long long>(d.remaining));
    else
      std::printf(" DENIED(retry in %lld ms)", static_cast<long long>(d.retry_after.count()));
    out.push_back(d.allowed);
  }
  std::printf("\n");
  co_return out;
}

asio::awaitable<void> session(redcoro::handle& redis) {
  const std::vector<bool> three_of_five{true, true, true, false, false}, one{true};
  for (auto [algorithm, name] : {std::pair{rr::limiter_algorithm::fixed_window, "fixed window"},
                                 std::pair{rr::limiter_algorithm::sliding_log, "sliding log"},
                                 std::pair{rr::limiter_algorithm::token_bucket, "token bucket"}}) {
    rr::limiter_options o;
    o.algorithm = algorithm;
    o.limit = 3;
    o.window = 500ms;
    o.prefix = "example:rate_limiter:";
    rr::rate_limiter limiter(redis, o);
    co_await limiter.async_reset("client-7", asio::use_awaitable);  // a clean start

    std::printf("%s, 3 per 500 ms\n", name);
    auto now = co_await burst(limiter, "  5 at once:", 5);
    expect(now == three_of_five, "3 of 5 allowed");
    // Ask without counting: when will the next one pass?
    auto d = co_await limiter.async_remaining("client-7", asio::use_awaitable);
    std::printf("  remaining %lld, retry after %lld ms\n", static_cast<long long>(d.remaining),
                static_cast<long long>(d.retry_after.count()));
    expect(!d.allowed && d.retry_after > 0ms, "denied until retry_after");
    asio::steady_timer t(redis.get_executor(), d.retry_after);
    co_await t.async_wait(asio::use_awaitable);
    auto later = co_await burst(limiter, "  after retry_after:", 1);
    expect(later == one, "allowed after retry_after");
  }
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::handle redis(ioc, example::config_from(argc, argv));
  return example::run("rate_limiter", ioc, session(redis), [&] { redis.close(); });
}
