// detail::first_of and detail::gather (client/detail/spawn.hpp), without sockets: which task
// ends the group, that the others are cancelled, and that none outlives the call, also when
// the caller is cancelled.
#include "support/client_helpers.hpp"
#include <redcoro/client/detail/spawn.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <vector>

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct task_log {
  int ended = 0;
  int cancelled = 0;
};

// Waits `wait` (an hour: until cancelled), then records how it ended.
asio::awaitable<void> sleeper(std::chrono::milliseconds wait, task_log& log) {
  asio::steady_timer t(co_await asio::this_coro::executor, wait);
  error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (ec == asio::error::operation_aborted) ++log.cancelled;
  ++log.ended;
}

asio::awaitable<void> thrower() {
  throw std::runtime_error("boom");
  co_return;
}

constexpr std::chrono::milliseconds hour = std::chrono::hours(1);

}  // namespace

TEST_CASE("first_of: the first task to return ends the group and the others are cancelled",
          "[spawn]") {
  asio::io_context ioc;
  task_log log;
  int ended_when_returned = -1;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::vector<asio::awaitable<void>> tasks;
        tasks.push_back(sleeper(hour, log));
        tasks.push_back(sleeper(std::chrono::milliseconds(10), log));
        tasks.push_back(sleeper(hour, log));
        co_await redcoro::detail::first_of(std::move(tasks));
        ended_when_returned = log.ended;
      },
      asio::detached);
  redcoro::test::run_until_idle(ioc, std::chrono::seconds(30));
  CHECK(ended_when_returned == 3);  // it returned after all three had ended
  CHECK(log.cancelled == 2);
}

TEST_CASE("first_of: cancelling the caller cancels every task and waits for them", "[spawn]") {
  asio::io_context ioc;
  task_log log;
  int ended_when_returned = -1;
  bool caller_done = false;
  asio::cancellation_signal cancel;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::vector<asio::awaitable<void>> tasks;
        tasks.push_back(sleeper(hour, log));
        tasks.push_back(sleeper(hour, log));
        co_await redcoro::detail::first_of(std::move(tasks));
        ended_when_returned = log.ended;
      },
      asio::bind_cancellation_slot(cancel.slot(),
                                   [&](const std::exception_ptr&) { caller_done = true; }));
  asio::steady_timer later(ioc, std::chrono::milliseconds(10));
  later.async_wait([&](error_code) { cancel.emit(asio::cancellation_type::terminal); });
  redcoro::test::run_until_idle(ioc, std::chrono::seconds(30));
  CHECK(caller_done);
  CHECK(ended_when_returned == 2);
  CHECK(log.cancelled == 2);
}

TEST_CASE("first_of: the first task's exception is rethrown once the others have ended",
          "[spawn]") {
  asio::io_context ioc;
  task_log log;
  bool threw = false;
  int ended_when_thrown = -1;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::vector<asio::awaitable<void>> tasks;
        tasks.push_back(sleeper(hour, log));
        tasks.push_back(thrower());
        try {
          co_await redcoro::detail::first_of(std::move(tasks));
        } catch (const std::runtime_error&) {
          threw = true;
          ended_when_thrown = log.ended;
        }
      },
      asio::detached);
  redcoro::test::run_until_idle(ioc, std::chrono::seconds(30));
  CHECK(threw);
  CHECK(ended_when_thrown == 1);
}

TEST_CASE("gather: every task runs to its end and the first error is returned", "[spawn]") {
  asio::io_context ioc;
  error_code got;
  int finished = 0;
  auto task = [&finished](std::chrono::milliseconds wait,
                          error_code result) -> asio::awaitable<error_code> {
    asio::steady_timer t(co_await asio::this_coro::executor, wait);
    co_await t.async_wait(asio::use_awaitable);
    ++finished;
    co_return result;
  };
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::vector<asio::awaitable<error_code>> tasks;
        tasks.push_back(task(std::chrono::milliseconds(30), {}));
        tasks.push_back(task(std::chrono::milliseconds(10), asio::error::timed_out));
        tasks.push_back(task(std::chrono::milliseconds(20), asio::error::eof));
        const auto ex = co_await asio::this_coro::executor;
        got = co_await redcoro::detail::gather(ex, std::move(tasks));
      },
      asio::detached);
  redcoro::test::run_until_idle(ioc, std::chrono::seconds(30));
  CHECK(finished == 3);
  CHECK(got == asio::error::timed_out);
}
