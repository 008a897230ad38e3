#include <redcoro/recipes/leader.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace redcoro::recipes {
namespace detail {
namespace {

using namespace std::chrono_literals;

lock_options as_lock_options(const leader_options& o) {
  lock_options l;
  l.lease = o.lease;
  l.wait = 60s;  // one round of the campaign; it goes on after a timeout
  l.retry_min = std::max<std::chrono::milliseconds>(o.retry_max / 16, 1ms);
  l.retry_max = o.retry_max;
  l.watchdog = true;
  l.prefix = o.prefix;
  return l;
}

bool cancelled(const asio::cancellation_state& cs) {
  return cs.cancelled() != asio::cancellation_type::none;
}

}  // namespace

asio::awaitable<std::pair<error_code, lock_guard>> campaign(lock l) {
  for (;;) {
    auto [ec, g] = co_await l.async_acquire(asio::as_tuple(asio::use_awaitable));
    if (ec != error::lock_wait_timeout) co_return std::pair{ec, std::move(g)};
  }
}

asio::awaitable<error_code> run_election(lock l, std::function<void(std::int64_t)> elected,
                                         std::function<void(error_code)> lost) {
  // Cancellation ends the loop where it is checked, not by an exception from the next wait.
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto aborted = make_error_code(asio::error::operation_aborted);
  for (;;) {
    auto [ec, g] = co_await campaign(l);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cancelled(cs) || ec == asio::error::operation_aborted) co_return aborted;
    if (ec) {
      // The connection failed: pause, then campaign again.
      asio::steady_timer t(l.redis_executor(), l.options().retry_max);
      auto [tec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (tec) co_return aborted;
      continue;
    }
    if (elected) elected(g.fence());
    auto [wec] = co_await g.async_wait_lost(asio::as_tuple(asio::use_awaitable));
    if (wec == error::lock_lost) {
      if (lost) lost(wec);
      continue;
    }
    // Cancelled while leading: resign, so that another takes over at once.
    co_await asio::this_coro::reset_cancellation_state();
    auto [rec] = co_await g.async_release(asio::as_tuple(asio::use_awaitable));
    (void)rec;
    if (lost) lost(aborted);
    co_return aborted;
  }
}

}  // namespace detail

leader_election::leader_election(handle redis, std::string name, leader_options options)
    : lock_(std::move(redis), std::move(name), detail::as_lock_options(options)) {}

}  // namespace redcoro::recipes
