#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <exception>
#include <system_error>
#include <utility>

namespace redcoro::detail {

/// Runs `body` on `ex` and completes `h` with the error code it returns. An exception that
/// escapes it (only allocation failure can) completes `h` with `on_exception`.
inline void spawn_to_handler(
    const boost::asio::any_io_executor& ex, boost::asio::awaitable<boost::system::error_code> body,
    boost::asio::any_completion_handler<void(boost::system::error_code)> h,
    boost::system::error_code on_exception = boost::asio::error::operation_aborted) {
  boost::asio::co_spawn(
      ex, std::move(body),
      [h = std::move(h), on_exception](std::exception_ptr e, boost::system::error_code ec) mutable {
        if (e) ec = on_exception;
        std::move(h)(ec);
      });
}

/// The start of an async_run that may run once: a second call completes with
/// already_started (posted), the first runs `run` (see spawn_to_handler).
inline void start_run_once(const boost::asio::any_io_executor& ex, bool& started,
                           boost::asio::awaitable<boost::system::error_code> run,
                           boost::asio::any_completion_handler<void(boost::system::error_code)> h) {
  if (started) {
    boost::asio::post(ex, [h = std::move(h)]() mutable {
      std::move(h)(boost::system::error_code(boost::asio::error::already_started));
    });
    return;
  }
  started = true;
  spawn_to_handler(ex, std::move(run), std::move(h), make_error_code(std::errc::not_enough_memory));
}

}  // namespace redcoro::detail
