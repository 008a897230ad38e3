#pragma once

#include <redcoro/client/script.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/detail/then.hpp>
#include <redcoro/recipes/error.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>

/// \file
/// Rate limiters over a redcoro::handle: fixed window, sliding window (an exact log of
/// requests in a sorted set, or the approximate two-window counter) and token bucket (GCRA).
/// Every decision is one Lua script, one round trip, timed by the server's TIME: the client's
/// clock plays no part. See recipes/README.md for what each guarantees.

namespace redcoro::recipes {

/// How a rate_limiter counts.
enum class limiter_algorithm : std::uint8_t {
  /// `limit` per window, windows aligned on the server's clock (a multiple of `window` since
  /// the epoch). Cheapest (one small hash per key); a burst at the end of one window and another
  /// at the start of the next let up to 2 x limit through within one window's length.
  fixed_window,
  /// Never more than `limit` in any window's length ending now: the time of every allowed
  /// request is kept in a sorted set (memory grows with the limit).
  sliding_log,
  /// The approximation of sliding_log by two fixed windows (the previous one weighted by how
  /// much of it still overlaps the sliding window): one small hash per key; exact when
  /// requests are spread evenly, off by at most the previous window's count otherwise.
  sliding_window,
  /// A bucket of `limit` tokens refilled at `limit` per window (GCRA, in whole numbers: one
  /// small hash per key): bursts up to `limit`, then a steady rate. Needs window (in
  /// microseconds) x limit below 2^53 (an hour's window and a limit of 2.5 million).
  token_bucket,
};

/// Settings of a rate_limiter.
struct limiter_options {
  limiter_algorithm algorithm = limiter_algorithm::fixed_window;
  /// Requests (weights) per window; for token_bucket the bucket's size. Must be positive
  /// (token_bucket: see there for its upper bound).
  std::int64_t limit = 100;
  /// Must be at least a millisecond.
  std::chrono::milliseconds window{1000};
  /// The state of key `k` is the Redis key `<prefix><algorithm>:{<k>}` (one key, so one slot on
  /// a cluster): `rate:fixed:{user-42}`, `rate:log:{...}`, `rate:sliding:{...}`, `rate:gcra:{...}`.
  std::string prefix = "rate:";
};

/// One decision.
struct limit_result {
  /// The request was allowed (and counted). For async_remaining: a request of weight 1 would be.
  bool allowed = false;
  /// Requests of weight 1 that would be allowed right after this decision.
  std::int64_t remaining = 0;
  /// Denied: how long until the same request would be allowed (if no one else takes the
  /// room first). Zero when allowed.
  std::chrono::milliseconds retry_after{0};
  /// How long until the key is back to its full limit if no more requests come.
  std::chrono::milliseconds reset_after{0};
};

namespace detail {

struct limiter_state {
  limiter_state(handle h, limiter_options o);
  handle redis;
  limiter_options opts;
  std::string tag;  // "<prefix><algorithm>:{"
  std::string key;  // a reused buffer for the key of the call being started
  std::mt19937_64 rng;
};

using limit_reply = proto::result<std::array<std::int64_t, 4>>;
// The script of an algorithm.
const script& limiter_script(limiter_algorithm a);
// The decision's command; invalid_argument for a weight below 0 or above the limit.
command<std::array<std::int64_t, 4>> limit_command(limiter_state& s, std::string_view key,
                                                   std::int64_t n, error_code& bad);
std::pair<error_code, limit_result> finish_limit(error_code ec, const limit_reply& r);
command<std::int64_t> reset_command(limiter_state& s, std::string_view key);
error_code finish_reset(error_code ec, const proto::result<std::int64_t>& r);

}  // namespace detail

/// A rate limiter over a handle: for each key (a user, an IP, an API token), at most `limit`
/// requests per `window`, counted as options().algorithm says. A small value: copies share
/// one state. Use it from the handle's executor. A key given as std::string_view is copied
/// when the operation starts: with asio::deferred, keep it alive until then.
///
/// \code
///   redcoro::recipes::rate_limiter per_user(redis, {.algorithm = limiter_algorithm::sliding_log,
///                                                   .limit = 100, .window = 1min});
///   auto d = co_await per_user.async_allow("user-42", asio::use_awaitable);
///   if (!d.allowed) reply_429(d.retry_after);
/// \endcode
class rate_limiter {
 public:
  /// Throws std::invalid_argument for a limit that is not positive or a window under 1 ms.
  rate_limiter(handle redis, limiter_options options);

  const limiter_options& options() const noexcept { return s_->opts; }

  /// A request of weight `n` (0 <= n <= limit; 0 only asks): `void(error_code, limit_result)`.
  /// A denied request is not counted. error::invalid_argument for a weight out of range.
  template <class Token>
  auto async_consume(std::string_view key, std::int64_t n, Token&& token) {
    return asio::async_initiate<Token, void(error_code, limit_result)>(
        [](auto handler, std::shared_ptr<detail::limiter_state> s, std::string_view k,
           std::int64_t w) {
          error_code bad;
          auto c = detail::limit_command(*s, k, w, bad);
          if (bad) {
            auto ex = asio::get_associated_executor(handler, s->redis.get_executor());
            asio::post(
                ex, [h = std::move(handler), bad]() mutable { std::move(h)(bad, limit_result()); });
            return;
          }
          auto ex = s->redis.get_executor();
          s->redis.async_exec(std::move(c),
                              detail::then(
                                  std::move(handler),
                                  [](auto h, error_code ec, const detail::limit_reply& r) {
                                    auto [e, d] = detail::finish_limit(ec, r);
                                    std::move(h)(e, d);
                                  },
                                  ex));
        },
        token, s_, key, n);
  }
  /// One request: async_consume(key, 1).
  template <class Token>
  auto async_allow(std::string_view key, Token&& token) {
    return async_consume(key, 1, std::forward<Token>(token));
  }
  /// Asks without counting anything: `allowed` says whether a request of weight 1 would be.
  template <class Token>
  auto async_remaining(std::string_view key, Token&& token) {
    return async_consume(key, 0, std::forward<Token>(token));
  }
  /// Forgets what was counted for `key`: `void(error_code)`.
  template <class Token>
  auto async_reset(std::string_view key, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [](auto handler, std::shared_ptr<detail::limiter_state> s, std::string_view k) {
          auto c = detail::reset_command(*s, k);
          auto ex = s->redis.get_executor();
          s->redis.async_exec(std::move(c),
                              detail::then(
                                  std::move(handler),
                                  [](auto h, error_code ec, const proto::result<std::int64_t>& r) {
                                    std::move(h)(detail::finish_reset(ec, r));
                                  },
                                  ex));
        },
        token, s_, key);
  }

  /// The Redis key holding the state of `key`.
  std::string key_of(std::string_view key) const;

 private:
  std::shared_ptr<detail::limiter_state> s_;
};

}  // namespace redcoro::recipes
