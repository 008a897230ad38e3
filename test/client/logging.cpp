// What redcoro logs, captured at trace level over a session that goes through most of what
// it logs about: no line may carry a password or a value.
#include "support/client_helpers.hpp"
#include "support/log_capture.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/client.hpp>
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
using asio::awaitable;
using asio::use_awaitable;

TEST_CASE("no log line carries a password or a value", "[client][live][logging]") {
  const std::string password = "pw-7f3a9c-secret";
  const std::string value = "value-5e1d2b-secret";
  redis_server server({"--requirepass", password});
  redcoro::test::log_capture log;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.password = password;
  cfg.key_prefix = "app:";
  cfg.client_name = "logging-test";
  cfg.logger = log.logger();
  cfg.health_check_interval = 200ms;
  auto wrong = cfg;
  wrong.password = password + "-wrong";
  wrong.reconnect.max_attempts = 2;
  connection conn(ioc, cfg);
  connection refused(ioc, wrong);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    refused.async_run(asio::detached);
    redcoro::error_code ec;
    // The wrong password: refused, and given up after two attempts.
    co_await refused.async_exec(redcoro::command("PING"), asio::redirect_error(use_awaitable, ec));
    CHECK(ec == redcoro::error::auth_failed);
    // Values in keys, values, a server error that quotes nothing, a blocking pop given up.
    co_await conn.async_exec(redcoro::cmd::set(value, value), use_awaitable);
    co_await conn.async_exec(redcoro::cmd::get(value), use_awaitable);
    co_await conn.async_exec(redcoro::command("LPUSH", value, value), use_awaitable);  // WRONGTYPE
    redcoro::command<redcoro::proto::value> pop("BLPOP", value + "-list", 5);
    pop.request().get_config().timeout = 100ms;
    co_await conn.async_exec(std::move(pop), asio::redirect_error(use_awaitable, ec));
    CHECK(ec == redcoro::error::timeout);
    // A reconnect, and a frozen server noticed by the health check.
    server.cli({"-a", password, "--no-auth-warning", "CLIENT", "KILL", "TYPE", "normal"});
    co_await redcoro::test::sleep_for(300ms);
    server.pause();
    co_await redcoro::test::sleep_for(600ms);
    server.resume();
    redcoro::command<std::optional<std::string>> get("GET", value);
    get.request().get_config().timeout = 5s;
    auto got = co_await conn.async_exec(std::move(get), use_awaitable);
    CHECK(got.value() == value);
    conn.close();
    refused.close();
  });
  const auto lines = log.lines();
  INFO(lines.size() << " lines");
  CHECK(lines.size() >= 5);  // connects, the kill, the freeze, the refusal were all logged
  CHECK(log.count("refused the credentials") >= 1);
  for (const auto& line : lines) {
    INFO(line);
    CHECK(line.find(password) == std::string::npos);
    CHECK(line.find(value) == std::string::npos);
  }
}
