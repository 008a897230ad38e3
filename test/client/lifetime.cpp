// connection_config::max_lifetime against a real server: connections replaced under load
// without a failed or repeated request; connections with subscriptions left alone.

#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

namespace {

awaitable<std::int64_t> connections_received(connection& raw) {
  const auto info = co_await run(raw, cmd::info("stats"));
  const auto v = info.get("stats", "total_connections_received");
  co_return v ? std::stoll(std::string(*v)) : -1;
}

awaitable<std::int64_t> client_id(connection& conn) {
  co_return co_await run(conn, redcoro::command<std::int64_t>("CLIENT", "ID"));
}

}  // namespace

TEST_CASE("max_lifetime: connections replaced under load, no request fails or runs twice",
          "[client][live][lifetime]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.max_lifetime = 300ms;
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    co_await run(raw, cmd::ping());
    const auto connects_before = co_await connections_received(raw);
    std::int64_t ok = 0, failed = 0, running = 0;
    std::set<std::int64_t> ids;
    const auto until = std::chrono::steady_clock::now() + 2s;
    auto worker = [&](int w) -> awaitable<void> {
      const std::string key = "n" + std::to_string(w);
      while (std::chrono::steady_clock::now() < until) {
        redcoro::error_code ec;
        auto r = co_await conn.async_exec(cmd::incr(key), asio::redirect_error(use_awaitable, ec));
        if (ec || r.has_error())
          ++failed;
        else
          ++ok;
        if (w == 0) {
          auto id = co_await conn.async_exec(redcoro::command<std::int64_t>("CLIENT", "ID"),
                                             asio::redirect_error(use_awaitable, ec));
          if (!ec && !id.has_error()) ids.insert(id.value());
        }
      }
      --running;
    };
    for (int w = 0; w < 20; ++w) {
      ++running;
      asio::co_spawn(ioc, worker(w), asio::detached);
    }
    while (running > 0)
      co_await sleep_for(20ms);
    CHECK(failed == 0);
    CHECK(ok > 100);
    // Nothing sent twice: the counters add up to the successful INCRs exactly.
    std::int64_t total = 0;
    for (int w = 0; w < 20; ++w) {
      const auto v = co_await run(raw, cmd::get("n" + std::to_string(w)));
      total += v ? std::stoll(*v) : 0;
    }
    CHECK(total == ok);
    // 2 s at 270-300 ms each: about 6 replacements; at least 3 whatever the load.
    const auto connects_after = co_await connections_received(raw);
    CAPTURE(connects_before, connects_after, ids.size());
    CHECK(connects_after - connects_before >= 3);
    CHECK(ids.size() >= 3);
    // Only the current one is left: the old ones were closed. The last one replaced may still
    // be closing as the load ends, so look again for at most 2 s.
    std::string clients;
    for (int i = 0; i < 100; ++i) {
      clients = co_await run(raw, redcoro::command<std::string>("CLIENT", "LIST"));
      if (std::count(clients.begin(), clients.end(), '\n') == 2) break;
      co_await sleep_for(20ms);
    }
    CAPTURE(clients);
    CHECK(std::count(clients.begin(), clients.end(), '\n') == 2);
    conn.close();
    raw.close();
  });
}

TEST_CASE("max_lifetime: a connection carrying subscriptions is not replaced",
          "[client][live][lifetime]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.max_lifetime = 200ms;
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    redcoro::proto::request sub;
    sub.push("SUBSCRIBE", "news");
    redcoro::proto::ignore_t ignored;
    co_await conn.async_exec(sub, ignored, use_awaitable);
    const auto before = co_await client_id(conn);
    int received = 0;
    for (int i = 0; i < 10; ++i) {
      co_await sleep_for(100ms);
      co_await run(raw, cmd::publish("news", std::to_string(i)));
      for (;;) {
        const auto push = co_await conn.async_receive_push(use_awaitable);
        if (push.size() == 3 && push[0].text == "message") {
          CHECK(push[2].text == std::to_string(i));
          ++received;
          break;
        }
      }
    }
    CHECK(received == 10);
    const auto after = co_await client_id(conn);
    CHECK(after == before);
    conn.close();
    raw.close();
  });
}
