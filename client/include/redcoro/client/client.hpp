#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/dedicated.hpp>
#include <redcoro/client/lease.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace redcoro {

/// The client most programs want: one multiplexed connection for ordinary commands, plus a
/// small pool of dedicated connections for what must own a connection — blocking commands
/// (`BLPOP`, `BRPOP`, `XREAD BLOCK`, `WAIT`) and `WATCH` transactions.
///
/// \code
///   redcoro::client cl(ioc, cfg);
///   cl.async_run(asio::detached);
///   auto v = co_await cl.async_exec(cmd::get("k"), asio::use_awaitable);           // shared
///   auto job = co_await cl.async_exec_dedicated(cmd::brpop("jobs", 5s), asio::use_awaitable);
///   auto tx = co_await cl.async_optimistic(keys, [&](connection& c)
///       -> asio::awaitable<transaction<std::optional<std::string>>> {
///     auto b = co_await c.async_exec(cmd::get("balance"), asio::use_awaitable);
///     co_return transaction(cmd::set("balance", std::stoll(b.value().value_or("0")) + 1));
///   }, asio::use_awaitable);
/// \endcode
///
/// Pooled connections are made on first use (connection_config::pool_size at most), each with its
/// own reconnect loop and health check, and reused. When all are lent, a caller waits for one, up
/// to connection_config::request_timeout (then error::timeout).
class client {
 public:
  using executor_type = asio::any_io_executor;

  explicit client(executor_type ex, connection_config cfg = {});
  template <execution_context Context>
  explicit client(Context& ctx, connection_config cfg = {})
      : client(executor_type(ctx.get_executor()), std::move(cfg)) {}
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  template <class T>
  using awaitable = asio::awaitable<T>;

  executor_type get_executor() const noexcept { return shared_.get_executor(); }
  /// The multiplexed connection underneath.
  connection& next_layer() noexcept { return shared_; }
  /// What the shared connection and the pool did so far (on the client's executor).
  client_metrics metrics() const;

  /// Runs the shared connection (see connection::async_run); the pool's connections run on
  /// their own until close().
  template <class Token>
  auto async_run(Token&& token) {
    return shared_.async_run(std::forward<Token>(token));
  }
  /// Closes the shared connection and every pooled one; waiting acquires fail with
  /// error::closed.
  void close();
  /// Drops the shared connection and every pooled one, lent ones included (see
  /// connection::reconnect): each connects again, to wherever its config (or address
  /// provider) points now. What was written and not answered fails with
  /// error::connection_lost (unless marked safe to retry); what waits goes out on the new
  /// connections. sentinel_client calls it when the primary moves.
  void reconnect();

  /// On the shared connection: see connection::async_exec.
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return shared_.async_exec(req, resp, std::forward<Token>(token));
  }
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return shared_.async_exec(std::move(x), std::forward<Token>(token));
  }

  /// Lends a pooled connection: completes with `void(error_code, lease)`.
  template <class Token>
  auto async_acquire(Token&& token) {
    return detail::run_coroutine<void(error_code, lease)>(get_executor(), acquire(),
                                                          std::forward<Token>(token));
  }

  /// Runs a command, pipeline or transaction on a pooled connection, then gives it back.
  template <owned_request X, class Token>
  auto async_exec_dedicated(X x, Token&& token) {
    using value = typename X::value_type;
    return detail::run_coroutine<void(error_code, value)>(
        get_executor(), detail::exec_dedicated(acquire(), std::move(x)),
        std::forward<Token>(token));
  }

  /// Optimistic transaction on a pooled connection: `WATCH keys`, then `co_await make(conn)`
  /// reads what it needs through `conn` and returns the transaction to run; if EXEC aborts
  /// because a watched key changed, all of it runs again, up to `max_attempts` times.
  /// Completes with `void(error_code, T::value_type)` for the transaction type T that `make`
  /// returns: the results, the server's error, or, after max_attempts aborts, std::nullopt.
  /// Connection errors come as the error_code, as for every call. If `make` throws, the keys
  /// are unwatched and the call completes with error::callback_failed (the exception's text
  /// is logged); nothing was committed.
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, int max_attempts, Token&& token) {
    using value = detail::optimistic_value<Make>;
    return detail::run_coroutine<void(error_code, value)>(
        get_executor(),
        detail::optimistic(acquire(), std::move(keys), std::move(make), max_attempts,
                           next_layer().get_config().logger),
        std::forward<Token>(token));
  }
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, Token&& token) {
    return async_optimistic(std::move(keys), std::move(make), 16, std::forward<Token>(token));
  }

 private:
  awaitable<std::pair<error_code, lease>> acquire() { return detail::acquire_from(pool_); }

  connection shared_;
  std::shared_ptr<detail::pool_state> pool_;
};

}  // namespace redcoro
