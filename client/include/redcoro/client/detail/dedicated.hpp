#pragma once

// What every layer with dedicated connections (the pooled client, the cluster client, the
// handle) does with a lent connection: one command on it, or an optimistic transaction;
// and the initiation that runs such a coroutine for a completion token.

#include <redcoro/client/command.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/lease.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace spdlog {
class logger;
}

namespace redcoro::detail {

/// Runs an internal coroutine that returns (error_code, value) and completes the caller's
/// token with them, on the caller's executor; the caller's cancellation reaches the
/// coroutine. The coroutines report errors as codes; only std::bad_alloc could escape, and
/// it is rethrown.
template <class Signature, class T, class Token>
auto run_coroutine(const asio::any_io_executor& ex, asio::awaitable<std::pair<error_code, T>> body,
                   Token&& token) {
  return asio::async_initiate<Token, Signature>(
      [ex](auto handler, asio::awaitable<std::pair<error_code, T>> b) mutable {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto handler_ex = asio::get_associated_executor(handler, ex);
        asio::co_spawn(
            ex, std::move(b),
            asio::bind_cancellation_slot(
                slot, asio::bind_executor(
                          handler_ex, [h = std::move(handler)](std::exception_ptr e,
                                                               std::pair<error_code, T> r) mutable {
                            if (e) std::rethrow_exception(e);
                            std::move(h)(r.first, std::move(r.second));
                          })));
      },
      token, std::move(body));
}

/// Runs `x` on a lent connection, then gives it back.
template <class X>
asio::awaitable<std::pair<error_code, typename X::value_type>> exec_dedicated(
    asio::awaitable<std::pair<error_code, lease>> acquiring, X x) {
  auto [ec, l] = co_await std::move(acquiring);
  if (ec) co_return std::pair{ec, typename X::value_type{}};
  auto r = co_await l->async_exec(std::move(x), asio::redirect_error(asio::use_awaitable, ec));
  co_return std::pair{ec, std::move(r)};
}

/// What async_optimistic completes with for a `make` returning awaitable<transaction<...>>.
template <class Make>
using optimistic_value = typename std::invoke_result_t<Make&, connection&>::value_type::value_type;

/// Logs that the caller's function threw (what it said), on `log` or the default logger.
void log_callback_failure(const std::shared_ptr<spdlog::logger>& log, const std::exception_ptr& e);

/// The optimistic transaction loop: WATCH, make, EXEC, again while a watched key changed.
template <class Make>
asio::awaitable<std::pair<error_code, optimistic_value<Make>>> optimistic(
    asio::awaitable<std::pair<error_code, lease>> acquiring, std::vector<std::string> keys,
    Make make, int max_attempts, std::shared_ptr<spdlog::logger> log) {
  using tx = typename std::invoke_result_t<Make&, connection&>::value_type;
  using value = optimistic_value<Make>;
  auto [ec, l] = co_await std::move(acquiring);
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
      log_callback_failure(log, failure);
      co_await l->async_exec(command<std::string>("UNWATCH"), on_error);
      co_return std::pair{error_code(error::callback_failed), value{}};
    }
    last = co_await l->async_exec(std::move(*t), on_error);
    if (ec) co_return std::pair{ec, value{}};
    if (last.has_error() || last->has_value()) break;  // done, or refused
  }
  co_return std::pair{ec, std::move(last)};
}

}  // namespace redcoro::detail
