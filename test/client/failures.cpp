// A raw TCP server that sends what no Redis would: every malformed reply must give a
// protocol error to the request waiting for it, and the connection must come back.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <string>

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace proto = redcoro::proto;

namespace {

void expect_protocol_error(const std::string& garbage, proto::error expected,
                           proto::parser_limits limits = {}) {
  INFO("server sends: " << garbage.substr(0, 40));
  // First command after the handshake gets garbage, the next ones a valid reply.
  redcoro::test::scripted_server server(
      [&](std::size_t n) { return n == 0 ? garbage : std::string("+PONG\r\n"); });
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  cfg.limits = limits;
  cfg.health_check_interval = 0ms;
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("PING");
    proto::response<std::string> resp;
    const auto first = co_await redcoro::test::exec(conn, req, resp);
    CHECK(first == expected);
    // The connection was reset and comes back: the next request waits for it and succeeds.
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK_FALSE(result);
    }
    CHECK(std::get<0>(resp).value() == "PONG");
    CHECK(server.connections() == 2);
    conn.close();
  });
}

}  // namespace

TEST_CASE("garbage from the server is a protocol error, then a reconnect", "[client][failure]") {
  expect_protocol_error("hello there\r\n", proto::error::invalid_data_type);
  expect_protocol_error(":12x\r\n", proto::error::invalid_number);
  expect_protocol_error("$99999999999999999999999\r\n", proto::error::length_overflow);
}

TEST_CASE("oversized lengths and deep nesting hit the limits", "[client][failure]") {
  proto::parser_limits small;
  small.max_blob_length = 1024;
  small.max_depth = 8;
  expect_protocol_error("$4096\r\n", proto::error::blob_too_large, small);
  std::string deep;
  for (int i = 0; i < 9; ++i)
    deep += "*1\r\n";
  expect_protocol_error(deep + ":1\r\n", proto::error::nesting_too_deep, small);
}

TEST_CASE("a truncated reply times out, nothing hangs", "[client][failure]") {
  // Half a reply, then silence: the request fails after its timeout.
  redcoro::test::scripted_server server([](std::size_t) { return std::string("$10\r\nabc"); });
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  cfg.request_timeout = 500ms;
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("GET", "k");
    proto::response<std::string> resp;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::timeout);
    }
    conn.close();
  });
}

TEST_CASE("a failing handshake is retried with backoff, not in a storm", "[client][failure]") {
  // Every connection is accepted and its HELLO refused: each attempt is a full connect and
  // handshake, so a missing delay would show as hundreds of connections.
  redcoro::test::scripted_server server([](std::size_t) { return std::string(); },
                                        "-ERR handshake refused for the test\r\n");
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  cfg.reconnect.min_delay = 50ms;
  cfg.reconnect.max_delay = 100ms;
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("PING");
    proto::response<std::string> resp;
    // Told why at once, not at its timeout.
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::handshake_failed);
    }
    co_await redcoro::test::sleep_for(1000ms);
    conn.close();
  });
  // About one attempt per 50-100 ms over a second; a busy loop would make thousands.
  CHECK(server.connections() >= 2);
  CHECK(server.connections() <= 40);
}
