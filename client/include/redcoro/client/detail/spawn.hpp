#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <vector>

namespace redcoro::detail {

// Compiled once, in client/src/spawn.cpp: each co_spawn of a coroutine into a handler is a
// few kilobytes of Asio code that every file using it would otherwise compile again.

/// Runs `body` on `ex` and completes `h` with the error code it returns. An exception that
/// escapes it (only allocation failure can) completes `h` with `on_exception`.
void spawn_to_handler(
    const boost::asio::any_io_executor& ex, boost::asio::awaitable<boost::system::error_code> body,
    boost::asio::any_completion_handler<void(boost::system::error_code)> h,
    boost::system::error_code on_exception = boost::asio::error::operation_aborted);

/// The start of an async_run that may run once: a second call completes with
/// already_started (posted), the first runs `run` (see spawn_to_handler).
void start_run_once(const boost::asio::any_io_executor& ex, bool& started,
                    boost::asio::awaitable<boost::system::error_code> run,
                    boost::asio::any_completion_handler<void(boost::system::error_code)> h);

/// Runs `tasks` side by side on the caller's executor and returns once the first of them has
/// returned (or thrown) and the others, cancelled then (terminal cancellation), have returned
/// too; rethrows the first exception. What `a || b || c` of Asio's awaitable operators does
/// for awaitable<void>, compiled once (client/src/spawn.cpp) instead of in every file that
/// runs loops side by side. Cancelling the caller cancels the tasks (terminal), and it still
/// returns only once they all have: none outlives it.
boost::asio::awaitable<void> first_of(std::vector<boost::asio::awaitable<void>> tasks);

/// Runs every task at once on `ex`; completes when all have, with the first error among
/// them (operation_aborted for one that threw). Cancelling the caller does not cut the wait
/// short (the tasks have no cancellation of their own to pass it to).
boost::asio::awaitable<boost::system::error_code> gather(
    const boost::asio::any_io_executor& ex,
    std::vector<boost::asio::awaitable<boost::system::error_code>> tasks);

}  // namespace redcoro::detail
