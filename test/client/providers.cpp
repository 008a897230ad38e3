// connection_config::address_provider and credentials_provider against real servers: the
// answer is taken on the connection's executor, whichever thread gives it; no answer fails
// the attempt (with a reason, at once for waiting requests) and is retried with backoff.
#include "support/client_helpers.hpp"
#include "support/log_capture.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using redcoro::address_answer;
using redcoro::connection;
using redcoro::endpoint;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// Answers on threads of its own, after a moment, as a service-discovery client would.
struct threaded_answers {
  std::vector<std::jthread> threads;
  template <class F>
  void later(F f) {
    threads.emplace_back([f = std::move(f)] {
      std::this_thread::sleep_for(20ms);
      f();
    });
  }
};

awaitable<redcoro::error_code> ping(connection& conn, std::chrono::milliseconds timeout) {
  redcoro::command<std::string> p("PING");
  p.request().get_config().timeout = timeout;
  redcoro::error_code ec;
  co_await conn.async_exec(std::move(p), asio::redirect_error(use_awaitable, ec));
  co_return ec;
}

}  // namespace

TEST_CASE("the address provider's answer is dialled, at every connect, and logs name it",
          "[client][live][provider]") {
  redis_server first, second;
  redcoro::test::log_capture log;
  threaded_answers answers;
  std::atomic<std::uint16_t> port = first.port();
  std::atomic<int> asked = 0;
  asio::io_context ioc;
  auto cfg = local_config(1);  // nothing listens there: only the provider's address works
  cfg.logger = log.logger();
  cfg.address_provider = [&](std::function<void(address_answer)> done) {
    ++asked;
    answers.later([&port, done = std::move(done)] { done(endpoint{"127.0.0.1", port.load()}); });
  };
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await conn.async_exec(cmd::set("where", "first"), use_awaitable);
    CHECK(asked == 1);
    CHECK(log.count("connected to 127.0.0.1:" + std::to_string(first.port())) == 1);

    // The next connect goes where the provider says then.
    port = second.port();
    conn.reconnect();
    co_await sleep_for(100ms);
    co_await conn.async_exec(cmd::set("where", "second"), use_awaitable);
    CHECK(asked == 2);
    CHECK(log.count("connected to 127.0.0.1:" + std::to_string(second.port())) == 1);
    conn.close();
  });
  CHECK(first.cli({"GET", "where"}) == "first\n");
  CHECK(second.cli({"GET", "where"}) == "second\n");
  // The config's own host and port were never dialled.
  CHECK(log.count("127.0.0.1:1:") + log.count("127.0.0.1:1 ") == 0);
}

TEST_CASE("max_lifetime: the replacement goes where the address provider says by then",
          "[client][live][provider][lifetime]") {
  redis_server first, second;
  std::atomic<std::uint16_t> port = first.port();
  std::atomic<int> asked = 0;
  asio::io_context ioc;
  auto cfg = local_config(1);
  cfg.max_lifetime = 300ms;
  cfg.address_provider = [&](std::function<void(address_answer)> done) {
    ++asked;
    done(endpoint{"127.0.0.1", port.load()});
  };
  connection conn(ioc, cfg);
  std::int64_t ok = 0, failed = 0;
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await conn.async_exec(cmd::ping(), use_awaitable);
    // The primary moves (as a Sentinel failover would tell the provider) while 10 coroutines
    // write: the next replacement dials the new one; no request fails on the way.
    port = second.port();
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    int running = 0;
    auto writer = [&](int w) -> awaitable<void> {
      while (std::chrono::steady_clock::now() < until) {
        redcoro::error_code ec;
        auto r = co_await conn.async_exec(cmd::incr("n" + std::to_string(w)),
                                          asio::redirect_error(use_awaitable, ec));
        if (ec || r.has_error())
          ++failed;
        else
          ++ok;
      }
      --running;
    };
    for (int w = 0; w < 10; ++w) {
      ++running;
      asio::co_spawn(ioc, writer(w), asio::detached);
    }
    while (running > 0)
      co_await sleep_for(20ms);
    conn.close();
  });
  CHECK(failed == 0);
  CHECK(asked >= 2);
  // Every increment landed on one server or the other, exactly once; the last ones on the
  // second, where the replacement went.
  std::int64_t total = 0;
  for (int w = 0; w < 10; ++w)
    for (auto* s : {&first, &second}) {
      const auto v = s->cli({"GET", "n" + std::to_string(w)});
      if (v != "\n") total += std::stoll(v);
    }
  CHECK(total == ok);
  CHECK(second.cli({"DBSIZE"}) != "0\n");
}

TEST_CASE("no address: waiting requests fail at once with the reason, retried with backoff",
          "[client][live][provider]") {
  redis_server server;
  redcoro::test::log_capture log;
  std::atomic<int> asked = 0;
  std::optional<std::error_code> refusal;  // what to answer instead of an address
  bool have = false;
  asio::io_context ioc;
  auto cfg = local_config(1);
  cfg.logger = log.logger();
  cfg.reconnect.min_delay = 50ms;
  cfg.reconnect.max_delay = 100ms;
  cfg.address_provider = [&](std::function<void(address_answer)> done) {
    ++asked;
    if (have)
      done(endpoint{"127.0.0.1", server.port()});
    else if (refusal)
      done(*refusal);
    else
      done(std::nullopt);
  };
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    // Told at the attempt, long before the request's own 10 s timeout.
    const auto start = std::chrono::steady_clock::now();
    const auto first = co_await ping(conn, 10s);
    CHECK(first == redcoro::error::no_address);
    CHECK(std::chrono::steady_clock::now() - start < 2s);

    // With the provider's own reason.
    refusal = std::make_error_code(std::errc::host_unreachable);
    const auto second = co_await ping(conn, 10s);
    CHECK(second == std::errc::host_unreachable);

    // A second of refusals: an attempt every 50 to 100 ms, not a storm.
    const int before = asked;
    co_await sleep_for(1000ms);
    const int attempts = asked - before;
    CHECK(attempts >= 5);
    CHECK(attempts <= 25);
    CHECK(log.count("no address to connect to: " + refusal->message()) >= 5);

    have = true;
    const auto third = co_await ping(conn, 10s);
    CHECK_FALSE(third);
    conn.close();
  });
}

TEST_CASE("a provider that does not answer fails the attempt, and close() does not wait for it",
          "[client][live][provider]") {
  redis_server server;
  std::vector<std::function<void(address_answer)>> unanswered;
  asio::io_context ioc;
  auto cfg = local_config(1);
  cfg.connect_timeout = 1500ms;
  cfg.address_provider = [&](std::function<void(address_answer)> done) {
    unanswered.push_back(std::move(done));
  };
  connection conn(ioc, cfg);
  bool run_done = false;
  std::chrono::steady_clock::time_point closed_at, run_done_at;
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run([&](redcoro::error_code) {
      run_done = true;
      run_done_at = std::chrono::steady_clock::now();
    });
    // No answer in time is not an answer of "none": the request waits for its own timeout.
    const auto r = co_await ping(conn, 3500ms);
    CHECK(r == redcoro::error::timeout);
    CHECK(unanswered.size() >= 2);  // each attempt gave up after 1.5 s, and asked again
    CHECK(unanswered.size() <= 4);
    co_await sleep_for(100ms);  // (inside an attempt now, with more than 0.5 s of it left)
    closed_at = std::chrono::steady_clock::now();
    conn.close();
    for (int i = 0; i < 100 && !run_done; ++i)
      co_await sleep_for(5ms);
    CHECK(run_done);
    CHECK(run_done_at - closed_at < 500ms);
    // Late answers go nowhere.
    for (auto& done : unanswered)
      done(endpoint{"127.0.0.1", server.port()});
    co_await sleep_for(20ms);
  });
}

TEST_CASE("credentials from a provider on another thread", "[client][live][provider]") {
  redis_server server({"--requirepass", "pw-from-provider"});
  threaded_answers answers;
  std::atomic<int> asked = 0;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.credentials_provider = [&](std::function<void(std::optional<redcoro::credentials>)> done) {
    ++asked;
    answers.later([done = std::move(done)] { done(redcoro::credentials{"", "pw-from-provider"}); });
  };
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    const auto r = co_await ping(conn, 5s);
    CHECK_FALSE(r);
    CHECK(asked == 1);
    conn.close();
  });
}
