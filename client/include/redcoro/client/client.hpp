#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/connection.hpp>

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

namespace detail {
struct pool_state;
}

/// A connection of the client's pool, lent to one caller: blocking commands and WATCH state
/// stay on it and never stall the shared connection. Given back when the lease is destroyed;
/// a connection that still has unanswered requests (a BLPOP whose caller gave up, say) is
/// closed instead of reused, so no later caller inherits its pending reply.
class lease {
 public:
  lease() = default;
  lease(lease&&) noexcept = default;
  lease& operator=(lease&& other) noexcept;
  ~lease();

  connection& operator*() const noexcept { return *conn_; }
  connection* operator->() const noexcept { return conn_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

 private:
  friend struct detail::pool_state;
  friend class client;
  lease(std::shared_ptr<detail::pool_state> p, std::shared_ptr<connection> c)
      : pool_(std::move(p)), conn_(std::move(c)) {}
  void release() noexcept;

  std::shared_ptr<detail::pool_state> pool_;
  std::shared_ptr<connection> conn_;
};

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

  /// Runs the shared connection (see connection::async_run); the pool's connections run on
  /// their own until close().
  template <class Token>
  auto async_run(Token&& token) {
    return shared_.async_run(std::forward<Token>(token));
  }
  /// Closes the shared connection and every pooled one; waiting acquires fail with
  /// error::closed.
  void close();

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
    return run_coroutine<void(error_code, lease)>(acquire(), std::forward<Token>(token));
  }

  /// Runs a command, pipeline or transaction on a pooled connection, then gives it back.
  template <owned_request X, class Token>
  auto async_exec_dedicated(X x, Token&& token) {
    using value = typename X::value_type;
    return run_coroutine<void(error_code, value)>(exec_dedicated(std::move(x)),
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
    using tx = typename std::invoke_result_t<Make&, connection&>::value_type;
    using value = typename tx::value_type;
    return run_coroutine<void(error_code, value)>(
        optimistic(std::move(keys), std::move(make), max_attempts), std::forward<Token>(token));
  }
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, Token&& token) {
    return async_optimistic(std::move(keys), std::move(make), 16, std::forward<Token>(token));
  }

 private:
  // Runs an internal coroutine that returns (error_code, value) and completes the caller's
  // token with them, on the caller's executor; the caller's cancellation reaches the
  // coroutine. The coroutines run no user code and report errors as codes; only
  // std::bad_alloc could escape, and it is rethrown.
  template <class Signature, class T, class Token>
  auto run_coroutine(awaitable<std::pair<error_code, T>> body, Token&& token) {
    return asio::async_initiate<Token, Signature>(
        [ex = get_executor()](auto handler, awaitable<std::pair<error_code, T>> b) mutable {
          auto slot = asio::get_associated_cancellation_slot(handler);
          auto handler_ex = asio::get_associated_executor(handler, ex);
          asio::co_spawn(
              ex, std::move(b),
              asio::bind_cancellation_slot(
                  slot, asio::bind_executor(handler_ex, [h = std::move(handler)](
                                                            std::exception_ptr e,
                                                            std::pair<error_code, T> r) mutable {
                    if (e) std::rethrow_exception(e);
                    std::move(h)(r.first, std::move(r.second));
                  })));
        },
        token, std::move(body));
  }

  awaitable<std::pair<error_code, lease>> acquire();
  void log_callback_failure(const std::exception_ptr& e);

  template <class Make>
  auto optimistic(std::vector<std::string> keys, Make make, int max_attempts)
      -> awaitable<std::pair<
          error_code, typename std::invoke_result_t<Make&, connection&>::value_type::value_type>> {
    using tx = typename std::invoke_result_t<Make&, connection&>::value_type;
    using value = typename tx::value_type;
    auto [ec, l] = co_await acquire();
    if (ec) co_return std::pair{ec, value{}};
    value last{};
    auto on_error = asio::redirect_error(asio::use_awaitable, ec);
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      auto watched = co_await l->async_exec(command<std::string>("WATCH", keys), on_error);
      if (ec) co_return std::pair{ec, value{}};
      if (watched.has_error()) {
        last.error_storage() = watched.error();
        co_return std::pair{ec, std::move(last)};
      }
      std::exception_ptr failure;
      std::optional<tx> t;
      try {
        t.emplace(co_await make(*l));
      } catch (...) {
        failure = std::current_exception();
      }
      if (failure) {
        log_callback_failure(failure);
        co_await l->async_exec(command<std::string>("UNWATCH"), on_error);
        co_return std::pair{error_code(error::callback_failed), value{}};
      }
      last = co_await l->async_exec(std::move(*t), on_error);
      if (ec) co_return std::pair{ec, value{}};
      if (last.has_error() || last->has_value()) break;  // done, or refused
    }
    co_return std::pair{ec, std::move(last)};
  }

  template <class X>
  awaitable<std::pair<error_code, typename X::value_type>> exec_dedicated(X x) {
    auto [ec, l] = co_await acquire();
    if (ec) co_return std::pair{ec, typename X::value_type{}};
    auto r = co_await l->async_exec(std::move(x), asio::redirect_error(asio::use_awaitable, ec));
    co_return std::pair{ec, std::move(r)};
  }

  connection shared_;
  std::shared_ptr<detail::pool_state> pool_;
};

}  // namespace redcoro
