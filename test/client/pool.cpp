#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/client.hpp>
#include <redcoro/client/commands.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

TEST_CASE("50 coroutines incrementing through optimistic transactions lose no update",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  redcoro::client cl(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    int committed = 0, finished = 0;
    const std::vector<std::string> keys{"counter"};
    auto incrementer = [&]() -> awaitable<void> {
      auto r = co_await cl.async_optimistic(
          keys,
          [](redcoro::connection& c)
              -> awaitable<redcoro::transaction<std::optional<std::string>>> {
            auto now = co_await c.async_exec(cmd::get("counter"), use_awaitable);
            const long long next = std::stoll(now.value().value_or("0")) + 1;
            co_return redcoro::transaction(cmd::set("counter", next));
          },
          1000, use_awaitable);
      if (r.has_value() && r->has_value()) ++committed;
      ++finished;
    };
    for (int i = 0; i < 50; ++i)
      asio::co_spawn(ioc, incrementer(), asio::detached);
    for (int i = 0; i < 3000 && finished < 50; ++i)
      co_await sleep_for(10ms);
    REQUIRE(finished == 50);
    CHECK(committed == 50);
    auto counter = co_await cl.async_exec(cmd::get("counter"), use_awaitable);
    CHECK(counter.value() == "50");
    cl.close();
  });
}

TEST_CASE("blocking pops on dedicated connections do not delay the shared one",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto pool_cfg = local_config(server.port());
  pool_cfg.pool_size = 8;
  redcoro::client cl(ioc, pool_cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    int popped = 0;
    std::set<std::string> values;
    // 20 blocking pops on a pool of 8: 8 block in the server, 12 wait for a connection.
    for (int i = 0; i < 20; ++i) {
      asio::co_spawn(
          ioc,
          [&]() -> awaitable<void> {
            auto r = co_await cl.async_exec_dedicated(cmd::blpop("jobs", 15s), use_awaitable);
            if (r.has_value() && r->has_value()) values.insert((*r)->second);
            ++popped;
          },
          asio::detached);
    }
    co_await sleep_for(100ms);
    // Plain traffic goes through while every pop is still blocked.
    co_await cl.async_exec(cmd::set("k", "v"), use_awaitable);
    for (int i = 0; i < 200; ++i) {
      auto v = co_await cl.async_exec(cmd::get("k"), use_awaitable);
      CHECK(v.value() == "v");
    }
    CHECK(popped == 0);
    for (int i = 0; i < 20; ++i)
      co_await cl.async_exec(cmd::rpush("jobs", "job" + std::to_string(i)), use_awaitable);
    for (int i = 0; i < 1500 && popped < 20; ++i)
      co_await sleep_for(10ms);
    CHECK(popped == 20);
    CHECK(values.size() == 20);
    cl.close();
  });
}

TEST_CASE("a pooled connection left with a blocked command is lent again once it is unblocked",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto pool_cfg = local_config(server.port());
  pool_cfg.pool_size = 1;
  redcoro::client cl(ioc, pool_cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    {
      auto [ec, l] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
      REQUIRE_FALSE(ec);
      // BLPOP forever, given up after 200 ms: the server still holds it.
      redcoro::command<redcoro::cmd::popped> pop("BLPOP", "never", 0);
      pop.request().get_config().timeout = 200ms;
      redcoro::error_code pop_ec;
      co_await l->async_exec(std::move(pop), asio::redirect_error(use_awaitable, pop_ec));
      CHECK(pop_ec == redcoro::error::timeout);
      CHECK(l->pending_requests() == 1);
    }
    // The connection unblocked the BLPOP on the server (CLIENT UNBLOCK), so the next caller
    // gets it back, with nothing of the BLPOP's left for it to read.
    redcoro::command<std::string> ping("PING");
    ping.request().get_config().timeout = 5s;
    auto pong = co_await cl.async_exec_dedicated(std::move(ping), use_awaitable);
    CHECK(pong.value() == "PONG");
    cl.close();
  });
}

TEST_CASE("a pooled connection that gave up reconnecting is not lent again",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.reconnect.max_attempts = 2;  // gives up quickly while the server is down
  cfg.pool_size = 1;
  redcoro::client cl(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    const redcoro::connection* first = nullptr;
    {
      auto [ec, l] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
      REQUIRE_FALSE(ec);
      auto pong = co_await l->async_exec(redcoro::command<std::string>("PING"), use_awaitable);
      CHECK(pong.value() == "PONG");
      first = &*l;
    }
    // The idle connection (still the pool's) loses its server and gives up.
    server.kill();
    for (int i = 0; i < 500 && !first->run_ended(); ++i)
      co_await sleep_for(10ms);
    REQUIRE(first->run_ended());
    server.restart();
    // The pool's one slot gets a new connection, which answers.
    auto [ec, l] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
    REQUIRE_FALSE(ec);
    redcoro::command<std::string> ping("PING");
    ping.request().get_config().timeout = 5s;
    auto pong = co_await l->async_exec(std::move(ping), use_awaitable);
    CHECK(pong.value() == "PONG");
    cl.close();
  });
}

TEST_CASE("acquiring from an exhausted pool waits, then times out, and close() ends waits",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 300ms;
  cfg.pool_size = 1;
  redcoro::client cl(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    auto [ec1, held] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
    REQUIRE_FALSE(ec1);
    auto [ec2, none] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
    CHECK(ec2 == redcoro::error::timeout);
    CHECK_FALSE(none);

    redcoro::error_code waited;
    bool done = false;
    cl.async_acquire([&](redcoro::error_code ec, redcoro::lease) {
      waited = ec;
      done = true;
    });
    co_await sleep_for(50ms);
    cl.close();
    co_await sleep_for(20ms);
    CHECK(done);
    CHECK(waited == redcoro::error::closed);
  });
}

TEST_CASE("a blocking pop on a dedicated connection can be cancelled", "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto pool_cfg = local_config(server.port());
  pool_cfg.pool_size = 1;
  redcoro::client cl(ioc, pool_cfg);
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        cl.async_run(asio::detached);
        asio::steady_timer timer(ioc, 100ms);
        // BLPOP with no timeout: only the cancellation can end it.
        auto first = co_await (cl.async_exec_dedicated(cmd::blpop("nothing", 0ms), use_awaitable) ||
                               timer.async_wait(use_awaitable));
        CHECK(first.index() == 1);
        // The connection whose BLPOP was abandoned is not lent again; another one is made.
        auto v = co_await cl.async_exec_dedicated(cmd::get("k"), use_awaitable);
        CHECK_FALSE(v.value());
        cl.close();
      },
      std::chrono::seconds(20));
}

TEST_CASE("client::reconnect() moves the shared connection and every pooled one, lent ones too",
          "[client][live][pool]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.pool_size = 2;
  redcoro::client cl(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    cl.async_run(asio::detached);
    const auto id_of = [](auto& target) -> awaitable<std::int64_t> {
      redcoro::command<std::int64_t> id("CLIENT", "ID");
      id.request().get_config().timeout = 5s;
      auto r = co_await target.async_exec(std::move(id), use_awaitable);
      co_return r.value();
    };
    const std::int64_t shared_before = co_await id_of(cl);
    auto [ec1, lent] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
    REQUIRE_FALSE(ec1);
    const std::int64_t lent_before = co_await id_of(*lent);
    std::int64_t idle_before = 0;
    {
      auto [ec2, idle] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
      REQUIRE_FALSE(ec2);
      idle_before = co_await id_of(*idle);
    }  // back to the pool, idle

    cl.reconnect();
    co_await sleep_for(300ms);
    // Three new server-side clients: every connection made a new one.
    const std::int64_t shared_after = co_await id_of(cl);
    const std::int64_t lent_after = co_await id_of(*lent);
    auto [ec3, idle] = co_await cl.async_acquire(asio::as_tuple(use_awaitable));
    REQUIRE_FALSE(ec3);
    const std::int64_t idle_after = co_await id_of(*idle);
    CHECK(shared_after > idle_before);
    CHECK(shared_after != shared_before);
    CHECK(lent_after != lent_before);
    CHECK(idle_after != idle_before);
    // The old ones are gone from the server: only ours and redis-cli's remain.
    const std::string clients = server.cli({"CLIENT", "LIST"});
    CHECK(clients.find("id=" + std::to_string(shared_before) + " ") == std::string::npos);
    CHECK(clients.find("id=" + std::to_string(lent_before) + " ") == std::string::npos);
    CHECK(clients.find("id=" + std::to_string(idle_before) + " ") == std::string::npos);
    cl.close();
  });
}
