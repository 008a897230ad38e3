#pragma once

#include <redcoro/client/detail/dedicated.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/detail/then.hpp>
#include <redcoro/recipes/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// \file
/// A lock shared by processes, over a redcoro::handle: `SET NX PX` with a random token and a
/// lease, release and extend only by the token's holder (Lua), a bounded wait for a busy lock
/// (backoff with jitter, woken early when the holder releases), a fencing token per
/// acquisition, an optional watchdog that extends the lease and says at once when the lock
/// was lost, and a guard that releases on every exit path. See recipes/README.md for what it
/// guarantees and what it does not.

namespace redcoro::recipes {

namespace asio = boost::asio;

/// Settings of a lock.
struct lock_options {
  /// How long the lock stays held without an extend: a holder that dies or hangs loses it
  /// after this. Must be positive.
  std::chrono::milliseconds lease{10000};
  /// async_acquire: how long to wait for a busy lock before failing with
  /// error::lock_wait_timeout. Zero: try once.
  std::chrono::milliseconds wait{10000};
  /// The delays between attempts while waiting: from retry_min, doubling up to retry_max,
  /// each drawn at random from [d/2, d] (jitter), and never past the lock's remaining lease.
  /// A release wakes a waiter earlier (see README.md, "Waiting").
  std::chrono::milliseconds retry_min{4};
  std::chrono::milliseconds retry_max{200};
  /// When true, every acquisition runs a watchdog that extends the lease (every lease / 3)
  /// while the guard is held, and reports a lost lock through the guard (on_lost,
  /// async_wait_lost).
  bool watchdog = false;
  /// The keys of lock `name` are `<prefix>{<name>}` (the token), `<prefix>{<name>}:fence` (the
  /// fencing counter, never expires) and `<prefix>{<name>}:wake` (release notices): one hash
  /// tag, so one slot on a cluster. Neither the prefix nor the name may hold `{` or `}`.
  std::string prefix = "lock:";
};

class lock;
class lock_guard;

namespace detail {

// What a lock and its guards share.
struct lock_core {
  lock_core(handle h, std::string name, lock_options o);

  handle redis;
  lock_options opts;
  std::string key, fence_key, wake_key;
  std::mt19937_64 rng;
  // Waiting: one waiter of this lock blocks on the wake list (BLPOP on a dedicated
  // connection); the others sleep on timers of their own, listed here, that it cancels when
  // a release wakes it.
  bool blocking_waiter = false;
  bool no_dedicated = false;  // a single connection: no BLPOP, timers only
  std::vector<asio::steady_timer*> sleepers;

  // 128 random bits in hex into `out` (32 chars): no two acquisitions share one.
  void new_token(char* out);
  void wake_sleepers();
};

// One acquisition.
struct held_state {
  // A new random token; held once the server says so (fence set).
  explicit held_state(std::shared_ptr<lock_core> c);

  enum class status : std::uint8_t { held, released, lost };
  std::shared_ptr<lock_core> core;
  char token_buf[32];  // inline: one allocation per acquisition, this state's
  std::int64_t fence = 0;
  std::string_view token() const noexcept { return {token_buf, sizeof token_buf}; }
  status state = status::held;
  // Made when first needed, on the heap: a timer costs a service lookup, more than the rest of
  // an acquisition's bookkeeping, and inline two would triple this state's size.
  std::unique_ptr<asio::steady_timer> watchdog_timer;  // the watchdog sleeps on it
  std::unique_ptr<asio::steady_timer> lost_timer;      // async_wait_lost waits on it
  asio::steady_timer& lost_wait();
  std::function<void(error_code)> on_lost;

  void mark_lost();
  void stop();  // released: ends the watchdog and the waits for a loss
};

const script& acquire_script();
const script& release_script();
const script& extend_script();

using acquire_reply = proto::result<std::array<std::int64_t, 2>>;
lock_guard make_guard(std::shared_ptr<held_state> s, std::int64_t fence);
std::pair<error_code, lock_guard> finish_try(std::shared_ptr<held_state> s, error_code ec,
                                             const acquire_reply& r);
error_code finish_release(held_state* s, error_code ec, const proto::result<std::int64_t>& r);
error_code finish_extend(held_state* s, error_code ec, const proto::result<std::int64_t>& r);
command<std::array<std::int64_t, 2>> acquire_command(held_state& s);
std::shared_ptr<held_state> new_attempt(const std::shared_ptr<lock_core>& c);
command<std::int64_t> release_command(held_state& s);
command<std::int64_t> extend_command(held_state& s, std::chrono::milliseconds lease);
// Invalid arguments, checked before anything is sent.
error_code check_extend(const held_state* s, std::chrono::milliseconds lease);

asio::awaitable<std::pair<error_code, lock_guard>> acquire(std::shared_ptr<lock_core> c,
                                                           std::chrono::milliseconds wait);

}  // namespace detail

/// One acquisition of a lock, held until released. Movable, not copyable. When it goes out
/// of scope still held (an exception, an early co_return), it releases the lock in the
/// background; `co_await g.async_release(...)` releases it and says whether it was still
/// held. Use it from the handle's executor.
///
/// Every acquisition carries a fencing token: a number that grows with every acquisition of
/// the same lock name, for ever. Pass it to the resource the lock protects, which refuses a
/// write carrying a smaller token than one it has seen: that is what keeps a holder that lost
/// the lock without knowing (paused, partitioned, a failover) from doing harm.
class lock_guard {
 public:
  lock_guard() = default;
  lock_guard(lock_guard&&) noexcept = default;
  /// Releases (in the background) what this guard held before.
  lock_guard& operator=(lock_guard&& other) noexcept;
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;
  ~lock_guard();

  /// Holds the lock as far as this process knows: acquired, not released, not found lost by
  /// the watchdog. (Without a watchdog a lease can expire unnoticed: check with async_extend.)
  bool owns_lock() const noexcept;
  explicit operator bool() const noexcept { return owns_lock(); }
  /// The watchdog found the lock lost (its lease expired, or another holds it).
  bool lost() const noexcept;
  /// The random token this acquisition stored (empty for an empty guard).
  std::string_view token() const noexcept;
  /// The fencing token of this acquisition: greater than that of every earlier acquisition
  /// of this lock name (0 for an empty guard).
  std::int64_t fence() const noexcept;

  /// Releases the lock if this acquisition still holds it: `void(error_code)`, with
  /// error::lock_not_held when it did not (its lease expired, maybe another took it: whatever
  /// was done under it may have overlapped another holder's work). Wakes a waiter.
  template <class Token>
  auto async_release(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [](auto handler, std::shared_ptr<detail::held_state> s) {
          if (!s || s->state == detail::held_state::status::released) {
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler)]() mutable {
              std::move(h)(make_error_code(error::lock_not_held));
            });
            return;
          }
          auto c = detail::release_command(*s);
          auto ex = s->core->redis.get_executor();
          auto* raw = s.get();
          raw->core->redis.async_exec(
              std::move(c),
              detail::then(
                  std::move(handler),
                  [s = std::move(s)](auto h, error_code ec, const proto::result<std::int64_t>& r) {
                    std::move(h)(detail::finish_release(s.get(), ec, r));
                  },
                  ex));
        },
        token, s_);
  }

  /// Sets the lease to `lease` from now, if this acquisition still holds the lock:
  /// `void(error_code)`, error::lock_not_held when it does not.
  template <class Token>
  auto async_extend(std::chrono::milliseconds lease, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [lease](auto handler, std::shared_ptr<detail::held_state> s) {
          if (error_code bad = detail::check_extend(s.get(), lease)) {
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler), bad]() mutable { std::move(h)(bad); });
            return;
          }
          auto c = detail::extend_command(*s, lease);
          auto ex = s->core->redis.get_executor();
          auto* raw = s.get();
          raw->core->redis.async_exec(
              std::move(c),
              detail::then(
                  std::move(handler),
                  [s = std::move(s)](auto h, error_code ec, const proto::result<std::int64_t>& r) {
                    std::move(h)(detail::finish_extend(s.get(), ec, r));
                  },
                  ex));
        },
        token, s_);
  }

  /// Completes when the watchdog finds the lock lost (error::lock_lost), or with
  /// asio::error::operation_aborted when the guard is released first or the wait is
  /// cancelled. Only with lock_options::watchdog: without it nothing watches the lease, and
  /// this waits until the release.
  template <class Token>
  auto async_wait_lost(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [](auto handler, std::shared_ptr<detail::held_state> s) {
          if (!s || s->state != detail::held_state::status::held) {
            const error_code ec = s && s->state == detail::held_state::status::lost
                                      ? error_code(make_error_code(error::lock_lost))
                                      : error_code(asio::error::operation_aborted);
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
            return;
          }
          auto ex = s->core->redis.get_executor();
          auto* raw = s.get();
          raw->lost_wait().async_wait(detail::then(
              std::move(handler),
              [s = std::move(s)](auto h, error_code) {
                std::move(h)(s->state == detail::held_state::status::lost
                                 ? error_code(make_error_code(error::lock_lost))
                                 : error_code(asio::error::operation_aborted));
              },
              ex));
        },
        token, s_);
  }

  /// Calls `f(error::lock_lost)` on the handle's executor when the watchdog finds the lock
  /// lost (at once, if it already has). Replaces an earlier callback.
  void on_lost(std::function<void(error_code)> f);

  /// Starts the release and returns at once (what the destructor does).
  void release_in_background() noexcept;

 private:
  friend lock_guard detail::make_guard(std::shared_ptr<detail::held_state>, std::int64_t);
  explicit lock_guard(std::shared_ptr<detail::held_state> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::held_state> s_;
};

/// A named lock over a handle. A small value: copies share one state. Use it from the
/// handle's executor.
///
/// \code
///   redcoro::recipes::lock report(redis, "nightly-report", {.lease = 30s, .wait = 5s});
///   auto g = co_await report.async_acquire(asio::use_awaitable);  // throws lock_wait_timeout
///   co_await write_report(g.fence());                              // the fencing token
///   co_await g.async_release(asio::use_awaitable);                 // or let g go out of scope
/// \endcode
class lock {
 public:
  /// Throws std::invalid_argument for an empty name or a lease that is not positive.
  lock(handle redis, std::string name, lock_options options = {});

  const lock_options& options() const noexcept { return c_->opts; }
  /// The key holding the holder's token.
  const std::string& key() const noexcept { return c_->key; }
  asio::any_io_executor redis_executor() const { return c_->redis.get_executor(); }

  /// One attempt, one round trip: `void(error_code, lock_guard)`; the guard is empty
  /// (`!guard`) when another holds the lock.
  template <class Token>
  auto async_try_acquire(Token&& token) {
    return asio::async_initiate<Token, void(error_code, lock_guard)>(
        [](auto handler, detail::lock_core* c, std::shared_ptr<detail::held_state> s) {
          auto cmd = detail::acquire_command(*s);
          c->redis.async_exec(std::move(cmd),
                              detail::then(
                                  std::move(handler),
                                  [s = std::move(s)](auto h, error_code ec,
                                                     const detail::acquire_reply& r) mutable {
                                    auto [e, g] = detail::finish_try(std::move(s), ec, r);
                                    std::move(h)(e, std::move(g));
                                  },
                                  c->redis.get_executor()));
        },
        token, c_.get(), detail::new_attempt(c_));
  }

  /// Acquires the lock, waiting for it at most `wait` (default: options().wait):
  /// `void(error_code, lock_guard)`, error::lock_wait_timeout when it stayed busy. Errors of
  /// the connection end the wait at once.
  template <class Token>
  auto async_acquire(std::chrono::milliseconds wait, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, lock_guard)>(
        c_->redis.get_executor(), detail::acquire(c_, wait), std::forward<Token>(token));
  }
  template <class Token>
  auto async_acquire(Token&& token) {
    return async_acquire(c_->opts.wait, std::forward<Token>(token));
  }

 private:
  std::shared_ptr<detail::lock_core> c_;
};

}  // namespace redcoro::recipes
