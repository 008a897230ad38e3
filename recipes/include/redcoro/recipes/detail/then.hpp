#pragma once

// Completion helpers of the recipes: a handler adaptor that converts what the handle
// completes with, and a coroutine behind a `void(error_code)` token.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/error_code.hpp>

#include <exception>
#include <utility>

namespace redcoro::recipes::detail {

namespace asio = boost::asio;
using boost::system::error_code;

// A completion handler that runs `fn(handler, args...)`, showing the caller's executor and
// cancellation slot as its own, so that the operation underneath completes it where the
// caller's handler would run and a cancellation reaches it.
template <class Handler, class Fn>
struct then_handler {
  Handler h;
  Fn fn;
  asio::any_io_executor fallback;

  using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
  executor_type get_executor() const noexcept { return asio::get_associated_executor(h, fallback); }
  using cancellation_slot_type = asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return asio::get_associated_cancellation_slot(h);
  }
  template <class... Args>
  void operator()(Args&&... args) {
    fn(std::move(h), std::forward<Args>(args)...);
  }
};
template <class Handler, class Fn>
then_handler<Handler, Fn> then(Handler h, Fn fn, asio::any_io_executor ex) {
  return {std::move(h), std::move(fn), std::move(ex)};
}

// A coroutine behind a `void(error_code)` completion token.
template <class Token>
auto run_void(const asio::any_io_executor& ex, asio::awaitable<error_code> body, Token&& token) {
  return asio::async_initiate<Token, void(error_code)>(
      [ex](auto handler, asio::awaitable<error_code> b) mutable {
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto handler_ex = asio::get_associated_executor(handler, ex);
        asio::co_spawn(ex, std::move(b),
                       asio::bind_cancellation_slot(
                           slot, asio::bind_executor(
                                     handler_ex, [h = std::move(handler)](std::exception_ptr e,
                                                                          error_code ec) mutable {
                                       if (e) std::rethrow_exception(e);
                                       std::move(h)(ec);
                                     })));
      },
      token, std::move(body));
}

}  // namespace redcoro::recipes::detail
