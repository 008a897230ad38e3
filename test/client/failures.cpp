// A raw TCP server that sends what no Redis would: every malformed reply must give a
// protocol error to the request waiting for it, and the connection must come back.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace proto = redcoro::proto;

namespace {

void expect_protocol_error(const std::string& garbage, proto::error expected,
                           proto::parser_config limits = {}) {
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
  proto::parser_config small;
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

TEST_CASE("a reply that stalls part-way is dropped with its connection", "[client][failure]") {
  // Half a reply to the first command, then silence; a whole one to the next.
  redcoro::test::scripted_server server(
      [](std::size_t n) { return n == 0 ? std::string("$10\r\nabc") : std::string("+PONG\r\n"); });
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  cfg.health_check_interval = 300ms;
  cfg.request_timeout = 10s;
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("PING");
    proto::response<std::string> resp;
    // Nothing more comes for longer than the health interval: the connection is dead, the
    // request fails long before its own timeout...
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::connection_lost);
    }
    // ...and the next one goes out on a new connection.
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK_FALSE(result);
    }
    CHECK(std::get<0>(resp).value() == "PONG");
    CHECK(server.connections() == 2);
    conn.close();
  });
}

TEST_CASE("a timed-out request whose reply never comes does not keep a dead connection",
          "[client][failure]") {
  redcoro::test::scripted_server server(
      [](std::size_t n) { return n == 0 ? std::string("$10\r\nabc") : std::string("+PONG\r\n"); });
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  cfg.health_check_interval = 300ms;
  cfg.request_timeout = 100ms;
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("PING");
    proto::response<std::string> resp;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::timeout);
    }
    // The timed-out request still waits for its reply; the connection is reset all the same
    // once the health interval has passed without a byte, and then serves again. (This one is
    // written behind the stalled reply, so it is lost with the connection: it is marked safe
    // to send again.)
    req.get_config().timeout = 5s;
    req.get_config().retry_if_unanswered = true;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK_FALSE(result);
    }
    CHECK(server.connections() == 2);
    conn.close();
  });
}

TEST_CASE("a reply that cannot answer its command resets the connection", "[client][failure]") {
  // +PONG where a GET waits: the stream is out of step with the requests.
  redcoro::test::scripted_server server(
      [](std::size_t n) { return n == 0 ? std::string("+PONG\r\n") : std::string("$1\r\nv\r\n"); });
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  redcoro::connection conn(ioc, cfg);
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("GET", "k");
    proto::response<std::optional<std::string>> resp;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::out_of_sync);
    }
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK_FALSE(result);
    }
    CHECK(std::get<0>(resp).value() == "v");
    CHECK(server.connections() == 2);
    conn.close();
  });
}

TEST_CASE("a surplus reply fails what is in flight instead of shifting every reply",
          "[client][failure]") {
  // The first command's reply comes after a stray "+OK": without a check, GET a would get
  // "+OK", GET b the value of a, and so on down the line.
  // (The scripted server answers each read: both GETs arrive in one.)
  redcoro::test::scripted_server server([](std::size_t n) {
    return n == 0 ? std::string("+OK\r\n$1\r\na\r\n$1\r\nb\r\n") : std::string("$1\r\nc\r\n");
  });
  asio::io_context ioc;
  redcoro::connection conn(ioc, redcoro::test::local_config(server.port()));
  redcoro::test::run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("GET", "a");
    req.push("GET", "b");
    proto::response<std::optional<std::string>, std::optional<std::string>> resp;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, req, resp);
      CHECK(result == redcoro::error::out_of_sync);
    }
    proto::request next;
    next.push("GET", "c");
    proto::response<std::optional<std::string>> one;
    {
      const redcoro::error_code result = co_await redcoro::test::exec(conn, next, one);
      CHECK_FALSE(result);
    }
    CHECK(std::get<0>(one).value() == "c");
    conn.close();
  });
}

TEST_CASE("connections dropped while replies stream in: each reply reaches its own request",
          "[client][failure]") {
  // Each key holds a value of its own, 4 KiB, so that replies keep reads busy; 16 readers
  // ask for their keys without pause while the connection is dropped 200 times. A reply may
  // be lost with its connection (connection_lost), never handed to another request, and no
  // session may end but by its drop. (The completion of a dropped socket's read landing on the
  // next session's socket, which transport.cpp's close() guards against under io_uring, would
  // show here as a wrong reply, a protocol error or an extra handshake; this test has not
  // caught it without that guard: the window is narrow.)
  redcoro::test::redis_server server;
  asio::io_context ioc;
  auto cfg = redcoro::test::local_config(server.port());
  redcoro::connection conn(ioc, cfg);
  constexpr int readers = 16;
  const auto value_of = [](int i) { return std::string(4096, static_cast<char>('a' + i)); };
  std::size_t right = 0, lost = 0, wrong = 0, other = 0;
  int drops = 0;
  std::uint64_t connects = 0;
  redcoro::test::run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        conn.async_run(asio::detached);
        for (int i = 0; i < readers; ++i) {
          proto::request set;
          set.push("SET", "drop:" + std::to_string(i), value_of(i));
          proto::response<std::string> ok;
          const auto ec = co_await redcoro::test::exec(conn, set, ok);
          REQUIRE_FALSE(ec);
        }
        bool stop = false;
        int running = readers;
        auto reader = [&](int i) -> asio::awaitable<void> {
          proto::request get;
          get.push("GET", "drop:" + std::to_string(i));
          const std::string expected = value_of(i);
          while (!stop) {
            proto::response<std::string> resp;
            const auto ec = co_await redcoro::test::exec(conn, get, resp);
            if (!ec)
              ++(std::get<0>(resp).value() == expected ? right : wrong);
            else if (ec == redcoro::error::connection_lost)
              ++lost;
            else
              ++other;
          }
          --running;
        };
        for (int i = 0; i < readers; ++i)
          asio::co_spawn(ioc, reader(i), asio::detached);
        // (No REQUIRE until the readers have ended: they hold references into this frame.)
        for (; drops < 200; ++drops) {
          co_await redcoro::test::sleep_for(2ms);
          const auto before = conn.metrics().connects;
          conn.reconnect();
          const bool back = co_await redcoro::test::eventually(
              [&] { return conn.metrics().connects > before; }, std::chrono::milliseconds(5000));
          CHECK(back);
          if (!back) break;
        }
        stop = true;
        const bool ended = co_await redcoro::test::eventually([&] { return running == 0; },
                                                              std::chrono::milliseconds(10000));
        CHECK(ended);
        connects = conn.metrics().connects;
        conn.close();
      },
      120s);
  INFO("right " << right << ", lost with a connection " << lost << ", other errors " << other
                << "; " << drops << " drops, " << connects << " handshakes");
  CHECK(wrong == 0);
  CHECK(other == 0);
  CHECK(right > 1000);
  // Each session ended by its drop alone: one handshake first and one after each drop. A stale
  // completion on the next session's socket would end that one too, and show here.
  CHECK(connects == static_cast<std::uint64_t>(drops) + 1);
}
