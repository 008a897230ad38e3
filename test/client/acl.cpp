#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// A user who may touch cache:* keys only, and no dangerous commands.
void add_limited_user(redis_server& server) {
  const std::string out = server.cli(
      {"ACL", "SETUSER", "cache-svc", "on", ">cache-pw", "~cache:*", "+@all", "-@dangerous"});
  REQUIRE(out.find("OK") != std::string::npos);
}

long long connections_received(redis_server& server) {
  const std::string info = server.cli({"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const auto at = info.find(field);
  REQUIRE(at != std::string::npos);
  return std::stoll(info.substr(at + field.size()));
}

}  // namespace

TEST_CASE("ACL: NOPERM is an error of that command only", "[client][live][acl]") {
  redis_server server;
  add_limited_user(server);
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.username = "cache-svc";
  cfg.password = "cache-pw";
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    auto allowed = co_await conn.async_exec(cmd::set("cache:a", "1"), use_awaitable);
    CHECK(allowed.value().has_value());
    auto [key, command, after] = co_await conn.async_exec(
        redcoro::pipeline(cmd::set("other:b", "1"), cmd::flushdb(), cmd::get("cache:a")),
        use_awaitable);
    REQUIRE(key.has_error());
    CHECK(key.error().server_code() == "NOPERM");
    REQUIRE(command.has_error());
    CHECK(command.error().server_code() == "NOPERM");
    CHECK(after.value() == "1");  // same connection, still fine
    auto who =
        co_await conn.async_exec(redcoro::command<std::string>("ACL", "WHOAMI"), use_awaitable);
    CHECK(who.value() == "cache-svc");
    conn.close();
  });
}

TEST_CASE("ACL: a wrong password is an authentication error, retried with backoff",
          "[client][live][acl]") {
  redis_server server;
  add_limited_user(server);
  const long long before = connections_received(server);
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.username = "cache-svc";
  cfg.password = "not-the-password";
  cfg.reconnect.min_delay = 50ms;
  cfg.reconnect.max_attempts = 4;
  connection conn(ioc, cfg);
  redcoro::error_code run_ec;
  run_bounded(ioc, [&]() -> awaitable<void> {
    co_await conn.async_run(asio::redirect_error(use_awaitable, run_ec));
  });
  CHECK(run_ec == redcoro::error::auth_failed);
  // Exactly the attempts allowed, each after its backoff delay: no reconnect storm. (The
  // count also has the redis-cli connection that reads it.)
  const long long made = connections_received(server) - before;
  CHECK(made == 4 + 1);
}
