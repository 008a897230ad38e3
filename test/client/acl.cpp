#include "support/client_helpers.hpp"
#include "support/log_capture.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

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

TEST_CASE("ACL: a rotated password is picked up by re-authentication while 20 coroutines run",
          "[client][live][acl]") {
  redis_server server;
  add_limited_user(server);
  redcoro::test::log_capture log;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.logger = log.logger();
  // The provider hands out whatever the secret store holds now, and remembers what it gave.
  std::string current = "cache-pw";
  std::vector<std::string> given;
  cfg.credentials_provider = [&](auto done) {
    given.push_back(current);
    done(redcoro::credentials{"cache-svc", current});
  };
  cfg.reauth_interval = 100ms;
  connection conn(ioc, cfg);
  conn.async_run(asio::detached);
  std::size_t ok = 0, failed = 0;
  run_bounded(ioc, [&]() -> awaitable<void> {
    bool stop = false;
    std::size_t running = 20;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
    for (int w = 0; w < 20; ++w)
      asio::co_spawn(
          ex,
          [&, w]() -> awaitable<void> {
            while (!stop) {
              redcoro::error_code ec;
              auto r = co_await conn.async_exec(cmd::incr("cache:w" + std::to_string(w)),
                                                asio::redirect_error(use_awaitable, ec));
              (ec || r.has_error() ? failed : ok)++;
            }
            if (--running == 0) all_done.cancel();
          },
          asio::detached);
    co_await redcoro::test::sleep_for(300ms);

    // The rotation as a secret store does it: the server accepts both passwords, the store
    // hands out the new one, the old one is removed.
    server.cli({"ACL", "SETUSER", "cache-svc", ">cache-pw-2"});
    current = "cache-pw-2";
    const std::size_t asked_before = given.size();
    co_await redcoro::test::sleep_for(400ms);
    server.cli({"ACL", "SETUSER", "cache-svc", "<cache-pw"});
    co_await redcoro::test::sleep_for(400ms);
    CHECK(given.size() > asked_before + 2);  // re-authenticated several times since
    CHECK(given.back() == "cache-pw-2");
    CHECK(server.cli({"ACL", "LOG"}).find("auth") == std::string::npos);  // no AUTH refused

    // A wrong new password: refused and logged, and the connection keeps serving as the user
    // it was.
    current = "not-the-password";
    co_await redcoro::test::sleep_for(400ms);
    const std::size_t ok_while_wrong = ok, failed_while_wrong = failed;
    co_await redcoro::test::sleep_for(300ms);
    CHECK(ok > ok_while_wrong);
    CHECK(failed == failed_while_wrong);
    CHECK(log.count("re-authentication refused") > 0);
    stop = true;
    redcoro::error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(use_awaitable, ignored));

    // Until it drops: the next connection is refused with the wrong password.
    server.cli({"CLIENT", "KILL", "USER", "cache-svc"});
    for (int i = 0; i < 200 && conn.is_connected(); ++i)
      co_await redcoro::test::sleep_for(10ms);
    redcoro::error_code after;
    co_await conn.async_exec(cmd::incr("cache:after"), asio::redirect_error(use_awaitable, after));
    CHECK(after == redcoro::error::auth_failed);
    conn.close();
  });
  CHECK(failed == 0);
  CHECK(ok > 100);
  // No line carries any of the passwords.
  for (const auto& line : log.lines()) {
    CHECK(line.find("cache-pw") == std::string::npos);
    CHECK(line.find("not-the-password") == std::string::npos);
  }
}
