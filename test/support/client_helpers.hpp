#pragma once

// Helpers for the client tests: run a test coroutine on an io_context with a hard bound, so
// a bug shows up as a failed test instead of a hung CI job.

#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace redcoro::test {

namespace asio = boost::asio;

/// Settings for tests: quick reconnects, and quiet unless something is wrong.
inline redcoro::connection_config local_config(std::uint16_t port) {
  redcoro::connection_config cfg;
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.reconnect.min_delay = std::chrono::milliseconds(20);
  cfg.reconnect.max_delay = std::chrono::milliseconds(200);
  cfg.request_timeout = std::chrono::seconds(20);
  return cfg;
}

/// ioc.run() until it runs out of work, or `limit` has passed: then a watchdog thread stops
/// it. True when it ran out of work. (Not io_context::run_for: under Asio 1.26's io_uring
/// backend its timeout can complete into a later run, asio#1284.)
inline bool run_until_idle(asio::io_context& ioc, std::chrono::steady_clock::duration limit) {
  std::mutex m;
  std::condition_variable cv;
  bool returned = false, stopped = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, limit, [&] { return returned; })) {
      stopped = true;
      ioc.stop();
    }
  });
  const auto end_watchdog = [&] {
    {
      std::lock_guard lock(m);
      returned = true;
    }
    cv.notify_one();
    watchdog.join();
  };
  try {
    ioc.run();
  } catch (...) {
    end_watchdog();
    throw;
  }
  end_watchdog();
  return !stopped;
}

/// Runs `body` to completion (at most `limit`), then requires that it finished and threw
/// nothing. Everything else on the io_context must end too (close your connections).
inline void run_bounded(asio::io_context& ioc, std::function<asio::awaitable<void>()> body,
                        std::chrono::seconds limit = std::chrono::seconds(60)) {
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  run_until_idle(ioc, limit);
  REQUIRE(done);
  if (failure) std::rethrow_exception(failure);
}

/// Runs a request and returns the error it completed with, instead of throwing. Keep
/// `co_await` out of Catch's CHECK macros: GCC 12 loses the value of a co_await inside the
/// macro's expression (the check saw success where the request had failed).
template <class Response>
asio::awaitable<redcoro::error_code> exec(redcoro::connection& conn,
                                          const redcoro::proto::request& req, Response& resp) {
  redcoro::error_code ec;
  co_await conn.async_exec(req, resp, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

/// Runs one typed command on a connection (or any client with its async_exec: the pool
/// client, the cluster client) and returns its value; throws the server's error.
template <class Client, class T>
asio::awaitable<T> run(Client& client, redcoro::command<T> c) {
  auto r = co_await client.async_exec(std::move(c), asio::use_awaitable);
  co_return std::move(r).value();
}

/// Sleeps inside a coroutine.
inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

/// Waits (polling every 20 ms, at most `limit`) until `f()` holds; false if it never did.
template <class F>
asio::awaitable<bool> eventually(F f, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!f()) {
    if (std::chrono::steady_clock::now() >= until) co_return false;
    co_await sleep_for(std::chrono::milliseconds(20));
  }
  co_return true;
}

/// What a client-side cache (tracking_cache and the like) holds for `GET key`, without asking
/// the server: nullopt when it holds nothing, else the reply (nullopt for a missing key).
template <class Cache>
std::optional<std::optional<std::string>> held_get(Cache& cache, const std::string& key) {
  redcoro::proto::request req;
  req.push("GET", key);
  redcoro::proto::response<std::optional<std::string>> resp;
  if (!cache.try_get(req, resp)) return std::nullopt;
  return std::get<0>(resp).value();
}

}  // namespace redcoro::test
