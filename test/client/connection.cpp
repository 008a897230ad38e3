#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define REDCORO_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REDCORO_TEST_ASAN 1
#endif
#endif
#ifdef REDCORO_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#include <atomic>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace proto = redcoro::proto;
using asio::awaitable;
using asio::use_awaitable;

using redcoro::test::exec;

// The request path itself (typed replies, errors as data, many coroutines on one connection):
// commands.cpp, which also runs it through the handle.

TEST_CASE("callbacks and futures use the same call", "[client][live]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  conn.async_run(asio::detached);
  proto::request req;
  req.push("PING");
  proto::response<std::string> a, b;
  bool called = false;
  conn.async_exec(req, a, [&](redcoro::error_code ec, std::size_t) {
    CHECK_FALSE(ec);
    called = true;
  });
  auto fut = conn.async_exec(req, b, asio::use_future);
  std::thread t([&] { redcoro::test::run_until_idle(ioc, 20s); });
  fut.get();
  asio::post(ioc, [&] { conn.close(); });
  t.join();
  CHECK(called);
  CHECK(std::get<0>(a).value() == "PONG");
}

TEST_CASE("SIGKILL with requests in flight, then restart", "[client][live][failure]") {
  redis_server server({"--enable-debug-command", "yes"});
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request ping;
    ping.push("PING");
    proto::response<std::string> pong;
    co_await conn.async_exec(ping, pong, use_awaitable);

    // Block the server so that requests are surely in flight, then kill it.
    proto::request block;
    block.push("DEBUG", "SLEEP", 2);
    std::vector<redcoro::error_code> results(50);
    int done = 0;
    std::vector<proto::response<proto::ignore_t>> resps(50);
    for (int i = 0; i < 50; ++i) {
      asio::co_spawn(
          ioc,
          [&, i]() -> awaitable<void> {
            results[i] = co_await exec(conn, i == 0 ? block : ping, resps[i]);
            ++done;
          },
          asio::detached);
    }
    co_await redcoro::test::sleep_for(200ms);
    server.kill();
    while (done < 50)
      co_await redcoro::test::sleep_for(10ms);
    for (const auto& ec : results)
      CHECK(ec == redcoro::error::connection_lost);

    // Issued while the server is down: waits, then succeeds once it is back.
    std::optional<redcoro::error_code> waiting;
    proto::response<std::string> late;
    asio::co_spawn(
        ioc, [&]() -> awaitable<void> { waiting = co_await exec(conn, ping, late); },
        asio::detached);
    co_await redcoro::test::sleep_for(300ms);
    CHECK_FALSE(waiting.has_value());
    server.restart();
    while (!waiting)
      co_await redcoro::test::sleep_for(10ms);
    CHECK_FALSE(*waiting);
    CHECK(std::get<0>(late).value() == "PONG");
    CHECK(conn.is_connected());
    conn.close();
  });
}

TEST_CASE("CLIENT KILL drops the connection, and it comes back", "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.client_name = "victim";
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request name;
    name.push("CLIENT", "GETNAME");
    proto::response<std::string> resp;
    co_await conn.async_exec(name, resp, use_awaitable);
    CHECK(std::get<0>(resp).value() == "victim");
    server.cli({"CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"});
    // The next request may race the disconnect; marked retryable it succeeds either way.
    proto::request again(proto::request::config{false, true});
    again.push("CLIENT", "GETNAME");
    for (int i = 0; i < 3; ++i) {
      auto ec = co_await exec(conn, again, resp);
      if (!ec) break;
      co_await redcoro::test::sleep_for(100ms);
    }
    CHECK(std::get<0>(resp).value() == "victim");
    conn.close();
  });
}

TEST_CASE("a timed-out BLPOP does not confuse the replies after it", "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request blpop;
    blpop.get_config().timeout = 200ms;
    blpop.push("BLPOP", "queue", 1);  // the server answers (nil) after 1 s
    proto::response<std::optional<std::vector<std::string>>> popped;
    {
      const redcoro::error_code result = co_await exec(conn, blpop, popped);
      CHECK(result == redcoro::error::timeout);
    }

    proto::request get;
    get.push("SET", "k", "v");
    get.push("GET", "k");
    proto::response<std::string, std::string> resp;
    {
      const redcoro::error_code result = co_await exec(conn, get, resp);
      CHECK_FALSE(result);
    }
    CHECK(std::get<1>(resp).value() == "v");
    // Still right after the late BLPOP reply has arrived and been dropped.
    co_await redcoro::test::sleep_for(1200ms);
    {
      const redcoro::error_code result = co_await exec(conn, get, resp);
      CHECK_FALSE(result);
    }
    CHECK(std::get<1>(resp).value() == "v");
    conn.close();
  });
}

TEST_CASE("cancellation completes a request at once", "[client][live][failure]") {
  using namespace asio::experimental::awaitable_operators;
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request blpop;
    blpop.get_config().timeout = 0ms;  // none
    blpop.push("BLPOP", "queue", 0);
    proto::response<proto::ignore_t> ignored;
    asio::steady_timer timer(ioc, 100ms);
    auto winner = co_await (conn.async_exec(blpop, ignored, use_awaitable) ||
                            timer.async_wait(use_awaitable));
    CHECK(winner.index() == 1);
    // The abandoned BLPOP is answered later; the next caller gets its own reply.
    server.cli({"LPUSH", "queue", "item"});
    proto::request ping;
    ping.push("PING");
    proto::response<std::string> pong;
    co_await conn.async_exec(ping, pong, use_awaitable);
    CHECK(std::get<0>(pong).value() == "PONG");
    conn.close();
  });
}

TEST_CASE("with the server down, requests fail after their timeout", "[client][failure]") {
  asio::io_context ioc;
  auto cfg = local_config(redcoro::test::free_port());  // nothing listens there
  cfg.request_timeout = 300ms;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request ping;
    ping.push("PING");
    proto::response<std::string> pong;
    {
      const redcoro::error_code result = co_await exec(conn, ping, pong);
      CHECK(result == redcoro::error::timeout);
    }
    proto::request now(proto::request::config{true, false});
    now.push("PING");
    {
      const redcoro::error_code result = co_await exec(conn, now, pong);
      CHECK(result == redcoro::error::not_connected);
    }
    conn.close();
  });
}

TEST_CASE("async_run gives up after max_attempts with the last error", "[client][failure]") {
  asio::io_context ioc;
  auto cfg = local_config(redcoro::test::free_port());
  cfg.reconnect.max_attempts = 3;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    redcoro::error_code ec;
    co_await conn.async_run(asio::redirect_error(use_awaitable, ec));
    CHECK(ec == asio::error::connection_refused);
    // Requests after that fail at once.
    proto::request ping;
    ping.push("PING");
    proto::response<std::string> pong;
    {
      const redcoro::error_code result = co_await exec(conn, ping, pong);
      CHECK(result == redcoro::error::closed);
    }
  });
}

TEST_CASE("a server without HELLO gets RESP2", "[client][live]") {
  redis_server server({"--rename-command", "HELLO", ""});
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.client_name = "old-school";
  cfg.database = 2;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("CLIENT", "GETNAME");
    req.push("HSET", "h", "f", "v");
    req.push("HGETALL", "h");
    proto::response<std::string, int, std::map<std::string, std::string>> resp;
    co_await conn.async_exec(req, resp, use_awaitable);
    CHECK(conn.protocol() == 2);
    CHECK(std::get<0>(resp).value() == "old-school");
    CHECK(std::get<2>(resp).value() == std::map<std::string, std::string>{{"f", "v"}});
    conn.close();
  });
  CHECK(server.cli({"-n", "2", "HGET", "h", "f"}) == "v\n");
}

TEST_CASE("credentials: right ones work, wrong ones name the cause", "[client][live][failure]") {
  redis_server server({"--requirepass", "s3cret"});
  asio::io_context ioc;
  SECTION("right password, default user") {
    auto cfg = local_config(server.port());
    cfg.password = "s3cret";
    connection conn(ioc, cfg);
    run_bounded(ioc, [&]() -> awaitable<void> {
      conn.async_run(asio::detached);
      proto::request req;
      req.push("PING");
      proto::response<std::string> resp;
      co_await conn.async_exec(req, resp, use_awaitable);
      CHECK(std::get<0>(resp).value() == "PONG");
      conn.close();
    });
  }
  SECTION("wrong password") {
    auto cfg = local_config(server.port());
    cfg.password = "wrong";
    cfg.reconnect.max_attempts = 2;
    connection conn(ioc, cfg);
    run_bounded(ioc, [&]() -> awaitable<void> {
      proto::request req;
      req.push("PING");
      proto::response<std::string> resp;
      std::optional<redcoro::error_code> request_ec;
      asio::co_spawn(
          ioc, [&]() -> awaitable<void> { request_ec = co_await exec(conn, req, resp); },
          asio::detached);
      redcoro::error_code ec;
      co_await conn.async_run(asio::redirect_error(use_awaitable, ec));
      CHECK(ec == redcoro::error::auth_failed);
      while (!request_ec)
        co_await redcoro::test::sleep_for(10ms);
      CHECK(*request_ec == redcoro::error::auth_failed);
    });
  }
}

TEST_CASE("the queue bound gives a clear error", "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.max_queued_requests = 4;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request req;
    req.push("PING");
    std::vector<proto::response<std::string>> resps(6);
    std::vector<std::optional<redcoro::error_code>> results(6);
    for (int i = 0; i < 6; ++i)
      asio::co_spawn(
          ioc, [&, i]() -> awaitable<void> { results[i] = co_await exec(conn, req, resps[i]); },
          asio::detached);
    auto all_done = [&] {
      for (auto& r : results)
        if (!r) return false;
      return true;
    };
    while (!all_done())
      co_await redcoro::test::sleep_for(10ms);
    int full = 0;
    for (auto& r : results)
      full += *r == redcoro::error::queue_full;
    CHECK(full == 2);
    conn.close();
  });
}

TEST_CASE("a Unix domain socket", "[client][live]") {
  redis_server probe;  // for a temporary directory
  const std::string path = probe.dir() + "/redis.sock";
  redis_server server({"--unixsocket", path, "--unixsocketperm", "700"});
  asio::io_context ioc;
  redcoro::connection_config cfg = local_config(0);
  cfg.unix_socket = path;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    auto v =
        co_await conn.async_exec(redcoro::command<std::string>("ECHO", "over unix"), use_awaitable);
    CHECK(v.value() == "over unix");
    conn.close();
  });
}

TEST_CASE("threads submit work through the connection's executor", "[client][live][threads]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  conn.async_run(asio::detached);
  auto guard = asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  std::vector<std::thread> users;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    users.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        // co_spawn onto the connection's executor; the future brings the result back.
        auto fut = asio::co_spawn(
            conn.get_executor(),
            [&, t]() -> awaitable<std::int64_t> {
              auto v = co_await conn.async_exec(
                  redcoro::command<std::int64_t>("INCR", "t" + std::to_string(t)), use_awaitable);
              co_return v.value();
            },
            asio::use_future);
        if (fut.get() == i + 1) ++ok;
      }
    });
  }
  for (auto& u : users)
    u.join();
  asio::post(ioc, [&] { conn.close(); });
  guard.reset();
  io.join();
  CHECK(ok == 400);
}

TEST_CASE("a game loop drives everything with poll()", "[client][live]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  conn.async_run(asio::detached);
  proto::request req;
  req.push("INCR", "frame");
  proto::response<std::int64_t> resp;
  bool in_flight = false;
  std::int64_t last = 0;
  for (int frame = 0; frame < 100000 && last < 50; ++frame) {
    if (!in_flight) {
      in_flight = true;
      conn.async_exec(req, resp, [&](redcoro::error_code ec, std::size_t) {
        REQUIRE_FALSE(ec);
        last = std::get<0>(resp).value();
        in_flight = false;
      });
    }
    ioc.poll();  // never blocks: the frame goes on
    std::this_thread::sleep_for(100us);
  }
  CHECK(last == 50);
  conn.close();
  redcoro::test::run_until_idle(ioc, 5s);
}

TEST_CASE("requests marked safe to retry survive a server restart", "[client][live][failure]") {
  redis_server server({"--enable-debug-command", "yes"});
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request block;
    block.push("DEBUG", "SLEEP", 2);
    proto::request read(proto::request::config{false, true});  // retry_if_unanswered
    read.push("PING");
    proto::response<proto::ignore_t> blocked;
    proto::response<std::string> pong;
    std::optional<redcoro::error_code> block_ec, read_ec;
    co_await conn.async_exec(redcoro::command("PING"), use_awaitable);  // connected
    asio::co_spawn(
        ioc, [&]() -> awaitable<void> { block_ec = co_await exec(conn, block, blocked); },
        asio::detached);
    asio::co_spawn(
        ioc, [&]() -> awaitable<void> { read_ec = co_await exec(conn, read, pong); },
        asio::detached);
    co_await redcoro::test::sleep_for(200ms);
    server.kill();
    while (!block_ec)
      co_await redcoro::test::sleep_for(10ms);
    CHECK(*block_ec == redcoro::error::connection_lost);
    CHECK_FALSE(read_ec.has_value());  // waiting to be sent again
    server.restart();
    while (!read_ec)
      co_await redcoro::test::sleep_for(10ms);
    CHECK_FALSE(*read_ec);
    CHECK(std::get<0>(pong).value() == "PONG");
    conn.close();
  });
}

TEST_CASE("pushes arrive beside ordinary replies on one RESP3 connection", "[client][live]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    proto::request sub;
    sub.push("SUBSCRIBE", "news");
    proto::response<> none;  // SUBSCRIBE answers with a push, not a reply
    co_await conn.async_exec(sub, none, use_awaitable);
    auto confirm = co_await conn.async_receive_push(use_awaitable);
    REQUIRE(confirm.size() == 3);
    CHECK(confirm[0].text == "subscribe");
    CHECK(confirm[1].text == "news");

    // A command on the same connection while subscribed (RESP3 allows it).
    auto pong = co_await conn.async_exec(redcoro::command("PING"), use_awaitable);
    CHECK(pong.value().text == "PONG");
    server.cli({"PUBLISH", "news", "hello"});
    auto message = co_await conn.async_receive_push(use_awaitable);
    REQUIRE(message.size() == 3);
    CHECK(message[0].text == "message");
    CHECK(message[2].text == "hello");
    conn.close();
  });
}

TEST_CASE("the health check drops a server that stopped answering", "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.health_check_interval = 100ms;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await conn.async_exec(redcoro::command("PING"), use_awaitable);
    CHECK(conn.is_connected());
    server.pause();
    // Idle, then a PING without an answer: the connection is dropped within a few intervals.
    for (int i = 0; i < 100 && conn.is_connected(); ++i)
      co_await redcoro::test::sleep_for(20ms);
    CHECK_FALSE(conn.is_connected());
    server.resume();
    auto pong = co_await conn.async_exec(redcoro::command("PING"), use_awaitable);
    CHECK(pong.value().text == "PONG");
    conn.close();
  });
}

TEST_CASE("a connection that was healthy reconnects at once, before any backoff",
          "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  // A backoff this long would make the PING below time out.
  cfg.reconnect.min_delay = 10s;
  cfg.reconnect.max_delay = 10s;
  cfg.reconnect.jitter = 0;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await conn.async_exec(redcoro::command("PING"), use_awaitable);
    co_await redcoro::test::sleep_for(1100ms);  // up long enough to count as healthy
    server.cli({"CLIENT", "KILL", "TYPE", "normal"});
    redcoro::command<std::string> ping("PING");
    ping.request().get_config().timeout = 3s;
    ping.request().get_config().retry_if_unanswered = true;  // may go out before the kill is seen
    redcoro::error_code ec;
    auto pong = co_await conn.async_exec(std::move(ping), asio::redirect_error(use_awaitable, ec));
    CHECK_FALSE(ec);
    CHECK(pong.value() == "PONG");
    conn.close();
  });
}

TEST_CASE(
    "a frozen server under 200 coroutines: dropped within the health interval, then "
    "everything recovers",
    "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.health_check_interval = 300ms;
  cfg.request_timeout = 1s;
  connection conn(ioc, cfg);
  constexpr int workers = 200;
  std::size_t ok = 0, failed = 0, finished = 0;
  bool paused = false, resumed = false;
  std::size_t ok_after_resume = 0;
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await conn.async_exec(redcoro::command("SET", "k", "v"), use_awaitable);
    for (int w = 0; w < workers; ++w) {
      asio::co_spawn(
          ioc,
          [&]() -> awaitable<void> {
            for (int i = 0; !(resumed && i > 0 && ok_after_resume >= workers * 5); ++i) {
              redcoro::error_code ec;
              auto r =
                  co_await conn.async_exec(redcoro::command<std::optional<std::string>>("GET", "k"),
                                           asio::redirect_error(use_awaitable, ec));
              if (!ec && r.has_value()) {
                ++ok;
                if (resumed) ++ok_after_resume;
              } else {
                ++failed;
                co_await redcoro::test::sleep_for(20ms);
              }
            }
            ++finished;
          },
          asio::detached);
    }
    co_await redcoro::test::sleep_for(300ms);
    server.pause();
    paused = true;
    // The connection owes replies and gets nothing: it is dropped within the health interval
    // of the last byte, long before the server comes back.
    for (int i = 0; i < 150 && conn.is_connected(); ++i)
      co_await redcoro::test::sleep_for(20ms);
    CHECK_FALSE(conn.is_connected());
    co_await redcoro::test::sleep_for(1500ms);
    server.resume();
    resumed = true;
    for (int i = 0; i < 500 && finished < workers; ++i)
      co_await redcoro::test::sleep_for(20ms);
    CHECK(finished == workers);  // nobody hung
    CHECK(ok_after_resume >= workers * 5);
    CHECK(conn.is_connected());
    INFO("ok " << ok << ", failed " << failed);
    CHECK(failed > 0);  // the freeze was felt, as errors, not as a hang
    CHECK(conn.pending_requests() == 0);
    conn.close();
  });
  (void)paused;
}

namespace {
// Memory the process holds now, in MiB: its resident set (Linux). Under ASan the resident set
// also holds what was freed, by design: freed blocks wait in a quarantine (256 MiB by
// default) so that a use after free is caught, and nothing the tests below free would show.
// There, it is the heap bytes allocated and not yet freed, which is what the tests ask about.
double resident_mib() {
#ifdef REDCORO_TEST_ASAN
  return static_cast<double>(__sanitizer_get_current_allocated_bytes()) / (1 << 20);
#else
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
#endif
}
// The resident set at its peak, in MiB. Under ASan it counts freed blocks too, which only makes
// a bound on its growth harder to meet.
double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024;
}
}  // namespace

TEST_CASE("a large reply grows the read buffer once and gives the memory back",
          "[client][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  constexpr std::size_t size = 64u << 20;
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    // Made on the server, so that nothing of this size was ever in this process.
    co_await conn.async_exec(redcoro::command("SETRANGE", "big", size - 1, "x"), use_awaitable);
    const double before = resident_mib();
    const double peak_before = peak_mib();
    {
      auto got =
          co_await conn.async_exec(redcoro::command<std::string>("GET", "big"), use_awaitable);
      REQUIRE(got.value().size() == size);
      CHECK(got.value().back() == 'x');
      // The read buffer (64 MiB, grown once to the size the header announced) and the string:
      // about 128 MiB. Growing by doubling would peak at 128 + 64 for the buffer alone.
      const double grown = peak_mib() - peak_before;
      INFO("peak grew by " << grown << " MiB for a 64 MiB reply");
      CHECK(grown < 160);
    }
    // Done with it: the buffer went back to its first size.
    co_await conn.async_exec(redcoro::command("PING"), use_awaitable);
    const double after = resident_mib();
    INFO("resident before " << before << " MiB, after " << after << " MiB");
    CHECK(after < before + 16);
    conn.close();
  });
}

namespace {
// The `field=` number of the CLIENT LIST line of the client named `name`, or -1.
std::int64_t client_list_field(const redis_server& server, std::string_view name,
                               std::string_view field) {
  std::istringstream list(server.cli({"CLIENT", "LIST"}));
  const std::string who = " name=" + std::string(name) + " ";
  const std::string tag = " " + std::string(field) + "=";
  for (std::string line; std::getline(list, line);) {
    if (line.find(who) == std::string::npos) continue;
    const auto at = line.find(tag);
    if (at != std::string::npos) return std::stoll(line.substr(at + tag.size()));
  }
  return -1;
}
}  // namespace

TEST_CASE("a full push queue stops the reading: the backlog waits in the server, none is lost",
          "[client][live][backpressure]") {
  // No output buffer limit for pub/sub clients: the backlog passes the default soft limit.
  redis_server server({"--client-output-buffer-limit", "pubsub 0 0 0"});
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.max_queued_pushes = 8;
  cfg.client_name = "slow-reader";
  connection sub(ioc, cfg);
  connection pub(ioc, local_config(server.port()));
  constexpr std::size_t total = 5000;
  const std::string pad(2000, '.');  // 5000 x 2 kB: 10 MB of backlog
  const auto payload = [&](std::size_t i) { return std::to_string(i) + pad; };
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    pub.async_run(asio::detached);
    proto::request subscribe;
    subscribe.push("SUBSCRIBE", "firehose");
    proto::response<> none;
    const auto subscribed = co_await exec(sub, subscribe, none);
    REQUIRE_FALSE(subscribed);
    auto confirm = co_await sub.async_receive_push(use_awaitable);
    REQUIRE(confirm.size() == 3);
    REQUIRE(confirm[0].text == "subscribe");

    // Published in pipelines of 250 while nobody receives; each reaches the subscriber.
    const double resident_before = resident_mib();
    std::size_t not_received = 0;
    for (std::size_t first = 0; first < total; first += 250) {
      proto::request req;
      for (std::size_t i = first; i < first + 250; ++i)
        req.push("PUBLISH", "firehose", payload(i));
      proto::generic_response resp;
      const auto published = co_await exec(pub, req, resp);
      REQUIRE_FALSE(published);
      for (const auto& r : resp)
        if (!r.has_value() || r.value().to_integer() != 1) ++not_received;
    }
    CHECK(not_received == 0);
    // (Whatever the subscriber's reader would read, it has had the time to.)
    co_await redcoro::test::sleep_for(200ms);

    // The server holds the backlog for the subscriber: the client stopped reading...
    const std::int64_t omem = client_list_field(server, "slow-reader", "omem");
    INFO("server output buffer for the subscriber: " << omem << " bytes");
    CHECK(omem > 0);
    // ...and its memory did not grow with the backlog (10 MB).
    const double grown = resident_mib() - resident_before;
    INFO("resident memory grew by " << grown << " MiB");
    CHECK(grown < 5);
    // What the client queued: a full queue, and at most one read's worth more (the reader
    // finishes the read that filled it). Taken without a co_await, so the reader, woken by
    // the room made, reads nothing meanwhile.
    std::vector<proto::value> got;
    while (auto v = sub.try_receive_push())
      got.push_back(std::move(*v));
    const std::size_t one_read = cfg.read_buffer_size / pad.size() + 1;
    INFO("queued while nobody received: " << got.size());
    CHECK(got.size() >= cfg.max_queued_pushes);
    CHECK(got.size() <= cfg.max_queued_pushes + one_read);

    // Then everything arrives, in order.
    while (got.size() < total) {
      got.push_back(co_await sub.async_receive_push(use_awaitable));
      while (auto v = sub.try_receive_push())
        got.push_back(std::move(*v));
    }
    REQUIRE(got.size() == total);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < total; ++i) {
      const auto& m = got[i];
      if (m.size() != 3 || m[0].text != "message" || m[2].text != payload(i)) ++wrong;
    }
    CHECK(wrong == 0);
    CHECK_FALSE(sub.try_receive_push());
    sub.close();
    pub.close();
  });
}
