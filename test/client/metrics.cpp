// Metrics: the meter without sockets (labels, outcomes, error codes, percentiles against exact
// ones, merging), then a connection's counters after a scripted sequence against a real
// server, exact, and an observer told of the same requests.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/meter.hpp>
#include <redcoro/client/error.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::connection_metrics;
using redcoro::request_outcome;
using redcoro::detail::meter;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace proto = redcoro::proto;
using asio::awaitable;
using asio::use_awaitable;

namespace {

const redcoro::command_metrics* find(const connection_metrics& m, std::string_view command) {
  for (const auto& c : m.by_command)
    if (c.command == command) return &c;
  return nullptr;
}

// Counts what an observer is told, by command and outcome.
struct counting_observer final : redcoro::request_observer {
  std::map<std::string, int> started, finished;
  std::map<request_outcome, int> outcomes;
  std::string last_node;
  void request_started(const redcoro::request_event& e) override {
    ++started[std::string(e.command)];
  }
  void request_finished(const redcoro::request_event& e) override {
    ++finished[std::string(e.command)];
    ++outcomes[e.outcome];
    last_node = e.node;
    CHECK(e.duration.count() >= 0);
  }
};

}  // namespace

TEST_CASE("meter: a request is labelled by its command, a pipeline or a transaction",
          "[client][metrics]") {
  proto::request get, pipeline, tx, unknown;
  get.push("GET", "k");
  pipeline.push("GET", "a");
  pipeline.push("SET", "b", "1");
  tx.push("MULTI");
  tx.push("INCR", "n");
  tx.push("EXEC");
  unknown.push("MODULE.COMMAND", "x");
  CHECK(meter::label_name(meter::label_of(get)) == "GET");
  CHECK(meter::label_name(meter::label_of(pipeline)) == "PIPELINE");
  CHECK(meter::label_name(meter::label_of(tx)) == "MULTI");
  CHECK(meter::label_name(meter::label_of(unknown)) == "OTHER");
}

TEST_CASE("meter: outcomes, error codes and latency, counted exactly", "[client][metrics]") {
  meter m(true, nullptr);
  proto::request get;
  get.push("GET", "k");
  const auto t0 = meter::clock::now();
  // 1000 replied requests of 1..1000 us: the histogram's percentiles against the exact ones.
  std::vector<std::uint64_t> exact;
  std::mt19937 random(7);
  for (int i = 1; i <= 1000; ++i) {
    const std::uint64_t ns = static_cast<std::uint64_t>(i) * 1000 + random() % 1000;
    exact.push_back(ns);
    m.started(get, "n");
    m.finished(get, t0, t0 + std::chrono::nanoseconds(ns), {}, "n");
  }
  m.started(get, "n");
  m.finished(get, t0, t0, redcoro::error_code(redcoro::error::timeout), "n");
  m.started(get, "n");
  m.finished(get, t0, t0, redcoro::error_code(asio::error::operation_aborted), "n");
  m.started(get, "n");
  m.finished(get, t0, t0, redcoro::error_code(redcoro::error::connection_lost), "n");
  m.started(get, "n");
  m.finished(get, t0, t0, redcoro::error_code(redcoro::error::queue_full), "n");
  m.error_reply("WRONGTYPE Operation against a key holding the wrong kind of value");
  m.error_reply("WRONGTYPE again");
  m.error_reply("ERR unknown command");
  // More codes than are told apart: the rest count as OTHER.
  for (int i = 0; i < 40; ++i)
    m.error_reply("CODE" + std::to_string(i) + " message");
  m.wrote(100);
  m.connected();
  m.disconnected();
  m.pushed();

  const connection_metrics s = m.snapshot();
  CHECK(s.requests == 1004);
  CHECK(s.completed_with(request_outcome::replied) == 1000);
  CHECK(s.completed_with(request_outcome::timeout) == 1);
  CHECK(s.completed_with(request_outcome::cancelled) == 1);
  CHECK(s.completed_with(request_outcome::connection_lost) == 1);
  CHECK(s.completed_with(request_outcome::refused) == 1);
  CHECK(s.server_errors_of("WRONGTYPE") == 2);
  CHECK(s.server_errors_of("ERR") == 1);
  CHECK(s.server_errors.size() == 32);
  std::uint64_t errors = 0;
  for (const auto& [code, n] : s.server_errors)
    errors += n;
  CHECK(errors == 43);
  CHECK(s.server_errors_of("OTHER") == 43 - 2 - 1 - 29);
  CHECK(s.bytes_written == 100);
  CHECK(s.connects == 1);
  CHECK(s.disconnects == 1);
  CHECK(s.pushes == 1);
  REQUIRE(s.latency.count() == 1000);
  const auto* g = find(s, "GET");
  REQUIRE(g != nullptr);
  CHECK(g->requests() == 1000);
  CHECK(g->latency.count() == 1000);
  std::sort(exact.begin(), exact.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    INFO("p" << p);
    const auto want = exact[redcoro::histogram::rank_for(p, exact.size()) - 1];
    const auto got = s.latency.percentile(p);
    CHECK(got >= want);
    CHECK(static_cast<double>(got) <= static_cast<double>(want) * (1 + 1.0 / 128) + 1);
  }

  // Merging two connections' snapshots adds everything.
  connection_metrics sum = s;
  sum.merge(s);
  CHECK(sum.requests == 2008);
  CHECK(sum.server_errors_of("WRONGTYPE") == 4);
  CHECK(sum.latency.count() == 2000);
  CHECK(find(sum, "GET")->requests() == 2000);
}

TEST_CASE("meter: with metrics off nothing is counted but an observer is still told",
          "[client][metrics]") {
  auto seen = std::make_shared<counting_observer>();
  meter m(false, seen);
  CHECK(m.timing());
  proto::request get;
  get.push("GET", "k");
  const auto t0 = meter::clock::now();
  m.started(get, "127.0.0.1:1");
  m.finished(get, t0, t0 + 5us, {}, "127.0.0.1:1");
  m.error_reply("ERR x");
  m.wrote(10);
  const auto s = m.snapshot();
  CHECK(s.latency.count() == 0);
  CHECK(s.server_errors.empty());
  CHECK(s.bytes_written == 0);
  CHECK(seen->finished["GET"] == 1);
  CHECK(seen->last_node == "127.0.0.1:1");
  CHECK_FALSE(meter(false, nullptr).timing());
}

TEST_CASE("metrics: a connection's counters after a scripted sequence are exact",
          "[client][live][metrics]") {
  redis_server server;
  asio::io_context ioc;
  auto observer = std::make_shared<counting_observer>();
  auto cfg = local_config(server.port());
  cfg.observer = observer;
  connection conn(ioc, cfg);
  connection other(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    other.async_run(asio::detached);
    constexpr int gets = 100;
    co_await conn.async_exec(cmd::set("s", "v"), use_awaitable);  // 1 SET
    for (int i = 0; i < gets; ++i)
      co_await conn.async_exec(cmd::get("s"), use_awaitable);
    // 5 WRONGTYPE and 2 ERR error replies (still "replied" requests).
    for (int i = 0; i < 5; ++i)
      co_await conn.async_exec(cmd::lpush("s", "x"), use_awaitable);
    for (int i = 0; i < 2; ++i)
      co_await conn.async_exec(redcoro::command("NOSUCHCOMMAND"), use_awaitable);
    // A pipeline of 3 commands: one request.
    co_await conn.async_exec(redcoro::pipeline(cmd::incr("n"), cmd::incr("n"), cmd::get("n")),
                             use_awaitable);

    // One timed out (its own timeout, shorter than its block time).
    auto slow = cmd::blpop("empty", 2s);
    slow.request().get_config().timeout = 100ms;
    redcoro::error_code ec;
    co_await conn.async_exec(std::move(slow), asio::redirect_error(use_awaitable, ec));
    CHECK(ec == redcoro::error::timeout);
    // One cancelled.
    asio::cancellation_signal cancel;
    auto blocked = cmd::blpop("empty", 2s);
    redcoro::error_code cancelled_ec;
    bool done = false;
    conn.async_exec(std::move(blocked),
                    asio::bind_cancellation_slot(cancel.slot(), [&](redcoro::error_code e, auto) {
                      cancelled_ec = e;
                      done = true;
                    }));
    co_await redcoro::test::sleep_for(50ms);
    cancel.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 100 && !done; ++i)
      co_await redcoro::test::sleep_for(10ms);
    CHECK(cancelled_ec == asio::error::operation_aborted);

    // The connection killed from elsewhere: it comes back (one more connect).
    const auto id =
        co_await conn.async_exec(redcoro::command<std::int64_t>("CLIENT", "ID"), use_awaitable);
    co_await other.async_exec(
        redcoro::command<std::int64_t>("CLIENT", "KILL", "ID", std::to_string(id.value())),
        use_awaitable);
    bool back = false;
    for (int i = 0; i < 100 && !back; ++i) {
      redcoro::error_code e;
      co_await conn.async_exec(cmd::ping(), asio::redirect_error(use_awaitable, e));
      back = !e;
      if (!back) co_await redcoro::test::sleep_for(20ms);
    }
    REQUIRE(back);

    const connection_metrics m = conn.metrics();
    // SET + GETs + 7 errors + pipeline + timeout + cancelled + CLIENT ID + the PINGs.
    const std::uint64_t pings = static_cast<std::uint64_t>(observer->started["PING"]);
    CHECK(pings >= 1);
    const std::uint64_t all = 1 + gets + 7 + 1 + 1 + 1 + 1 + pings;
    CHECK(m.requests == all);
    CHECK(m.completed_with(request_outcome::timeout) == 1);
    CHECK(m.completed_with(request_outcome::cancelled) == 1);
    // A PING sent while the connection was down may have failed (connection lost or not
    // connected): every request is counted once, whatever its outcome.
    std::uint64_t completed = 0;
    for (auto n : m.completed)
      completed += n;
    CHECK(completed == all);
    CHECK(m.server_errors_of("WRONGTYPE") == 5);
    CHECK(m.server_errors_of("ERR") == 2);
    CHECK(m.connects == 2);
    CHECK(m.disconnects == 1);
    CHECK(m.latency.count() == m.completed_with(request_outcome::replied));
    REQUIRE(find(m, "GET") != nullptr);
    CHECK(find(m, "GET")->requests() == gets);
    REQUIRE(find(m, "PIPELINE") != nullptr);
    CHECK(find(m, "PIPELINE")->requests() == 1);
    CHECK(find(m, "LPUSH")->requests() == 5);
    CHECK(find(m, "OTHER")->requests() == 2);  // NOSUCHCOMMAND
    CHECK(find(m, "CLIENT")->requests() == 1);
    CHECK(m.bytes_written > 0);
    CHECK(m.bytes_read > 0);
    CHECK(m.connected);
    CHECK(m.queued == 0);
    CHECK(m.in_flight == 0);
    // The observer was told of the same requests.
    int started = 0, finished = 0;
    for (const auto& [c, n] : observer->started)
      started += n;
    for (const auto& [c, n] : observer->finished)
      finished += n;
    CHECK(static_cast<std::uint64_t>(started) == all);
    CHECK(static_cast<std::uint64_t>(finished) == all);
    CHECK(observer->started["GET"] == gets);
    CHECK(observer->last_node == "127.0.0.1:" + std::to_string(server.port()));
    conn.close();
    other.close();
  });
}
