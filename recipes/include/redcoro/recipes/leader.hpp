#pragma once

#include <redcoro/recipes/lock.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

/// \file
/// Leader election over a lock with a watchdog: one participant of a name leads at a time
/// (as far as the lock guarantees it: see recipes/README.md), the others wait to take over.

namespace redcoro::recipes {

/// Settings of an election.
struct leader_options {
  /// The leader's lease: a leader that dies or hangs is replaced after at most this long; its
  /// watchdog extends it every lease / 3 while it lives.
  std::chrono::milliseconds lease{5000};
  /// The longest pause between two attempts of a follower (a resignation wakes one earlier).
  std::chrono::milliseconds retry_max{500};
  /// Keys as lock_options::prefix.
  std::string prefix = "leader:";
};

namespace detail {
asio::awaitable<std::pair<error_code, lock_guard>> campaign(lock l);
asio::awaitable<error_code> run_election(lock l, std::function<void(std::int64_t)> elected,
                                         std::function<void(error_code)> lost);
}  // namespace detail

/// One participant of the election `name`.
///
/// \code
///   redcoro::recipes::leader_election election(redis, "scheduler", {.lease = 3s});
///   auto leadership = co_await election.async_campaign(asio::use_awaitable);  // now leader
///   // lead; co_await leadership.async_wait_lost(...) says when it ends
///   co_await leadership.async_release(asio::use_awaitable);                   // resign
/// \endcode
class leader_election {
 public:
  /// Throws std::invalid_argument for an empty name or a lease that is not positive.
  leader_election(handle redis, std::string name, leader_options options = {});

  /// Completes when this participant becomes the leader: `void(error_code, lock_guard)`. The
  /// guard holds the leadership (its watchdog keeps it; async_wait_lost and on_lost say when it
  /// is lost, fence() numbers the terms); release it to resign. Waits without a bound: cancel
  /// it to stop. Errors of the connection end it.
  template <class Token>
  auto async_campaign(Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, lock_guard)>(
        lock_.redis_executor(), detail::campaign(lock_), std::forward<Token>(token));
  }

  /// Takes part until cancelled: calls `elected(fence)` each time this participant becomes
  /// the leader, and `lost(ec)` when that ends (error::lock_lost: the watchdog found it lost;
  /// operation_aborted: cancelled, and the leadership released); after a loss, campaigns
  /// again. Connection errors make it pause and try again. Completes with
  /// `void(error_code)`: operation_aborted once cancelled.
  template <class Token>
  auto async_run(std::function<void(std::int64_t)> elected, std::function<void(error_code)> lost,
                 Token&& token) {
    return detail::run_void(lock_.redis_executor(),
                            detail::run_election(lock_, std::move(elected), std::move(lost)),
                            std::forward<Token>(token));
  }

  const lock& underlying() const noexcept { return lock_; }

 private:
  lock lock_;
};

}  // namespace redcoro::recipes
