// Blocking pops whose caller gives up (a timeout, a cancellation) while a producer pushes:
// the connection unblocks the command on the server, and an element the server handed over
// anyway goes back where it came from. Every element is received exactly once.
#include "support/client_helpers.hpp"
#include "support/log_capture.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/client.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <random>
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
namespace proto = redcoro::proto;
using asio::awaitable;
using asio::use_awaitable;

namespace {

// One blocking pop and what goes with it.
struct pop_case {
  std::string name;
  // The blocking command, blocking 2 s on the server.
  std::function<redcoro::command<proto::value>()> pop;
  // The element a reply delivered, or nullopt (nil).
  std::function<std::optional<std::string>(const proto::value&)> element_of;
  // Puts element `i` where the pop takes from.
  std::function<redcoro::command<proto::value>(int)> push;
  // After the run: what is still where the pop takes from, and (for BLMOVE) what is in the
  // destination.
  std::function<awaitable<std::vector<std::string>>(connection&)> left;
  std::function<awaitable<std::vector<std::string>>(connection&)> moved;
  // Acknowledges what the caller received (XREADGROUP).
  std::function<redcoro::command<proto::value>(const proto::value&)> ack;
};

std::vector<std::string> texts(const proto::value& v) {
  std::vector<std::string> out;
  for (const auto& e : v.elements)
    out.push_back(e.text);
  return out;
}

awaitable<std::vector<std::string>> list(connection& c, std::string key) {
  auto v = co_await run(c, redcoro::command("LRANGE", key, 0, -1));
  co_return texts(v);
}

std::vector<pop_case> cases() {
  std::vector<pop_case> out;
  out.push_back({"BLPOP", [] { return redcoro::command("BLPOP", "q", 2); },
                 [](const proto::value& v) -> std::optional<std::string> {
                   if (v.is_null()) return std::nullopt;
                   return v[1].text;
                 },
                 [](int i) { return redcoro::command("RPUSH", "q", "e" + std::to_string(i)); },
                 [](connection& c) { return list(c, "q"); }, nullptr, nullptr});
  out.push_back({"BLMOVE",
                 [] { return redcoro::command("BLMOVE", "src", "dst", "LEFT", "RIGHT", 2); },
                 [](const proto::value& v) -> std::optional<std::string> {
                   if (v.is_null()) return std::nullopt;
                   return v.text;
                 },
                 [](int i) { return redcoro::command("RPUSH", "src", "e" + std::to_string(i)); },
                 [](connection& c) { return list(c, "src"); },
                 [](connection& c) { return list(c, "dst"); }, nullptr});
  out.push_back({"BZPOPMIN", [] { return redcoro::command("BZPOPMIN", "z", 2); },
                 [](const proto::value& v) -> std::optional<std::string> {
                   if (v.is_null()) return std::nullopt;
                   return v[1].text;
                 },
                 [](int i) { return redcoro::command("ZADD", "z", i, "e" + std::to_string(i)); },
                 [](connection& c) -> awaitable<std::vector<std::string>> {
                   auto v = co_await run(c, redcoro::command("ZRANGE", "z", 0, -1));
                   co_return texts(v);
                 },
                 nullptr, nullptr});
  out.push_back(
      {"XREADGROUP BLOCK",
       [] {
         return redcoro::command("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "BLOCK", 2000,
                                 "STREAMS", "s", ">");
       },
       [](const proto::value& v) -> std::optional<std::string> {
         // {s: [[id, [n, e7]]]}
         if (v.is_null() || v.size() < 2) return std::nullopt;
         const auto& entries = v[1];
         if (entries.size() != 1) return std::nullopt;
         return entries[0][1][1].text;
       },
       [](int i) { return redcoro::command("XADD", "s", "*", "n", "e" + std::to_string(i)); },
       // What the gave-up calls were handed stays pending for the consumer (the entries of a
       // consumer group are not lost: that is what the pending list is for), and what nobody
       // read is still new.
       [](connection& c) -> awaitable<std::vector<std::string>> {
         std::vector<std::string> found;
         for (const char* from : {"0", ">"}) {
           auto v = co_await run(
               c, redcoro::command("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", from));
           if (v.is_null() || v.size() < 2) continue;
           for (const auto& e : v[1].elements)
             if (e.size() == 2 && e[1].size() == 2) found.push_back(e[1][1].text);
         }
         co_return found;
       },
       nullptr,
       [](const proto::value& v) { return redcoro::command("XACK", "s", "g", v[1][0][0].text); }});
  return out;
}

// `rounds` pops, each given up after about 300 ms (alternately by its timeout and by
// cancellation) while element i is pushed from another connection at a random moment around
// then; afterwards every element was received by a caller or is still where it was pushed,
// exactly once. `pop_on` runs the pop (on a connection, or on a pooled one).
void run_case(const pop_case& pc, bool pooled) {
  INFO(pc.name << (pooled ? " on a pooled connection" : " on a connection"));
  using namespace asio::experimental::awaitable_operators;
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  redcoro::test::log_capture log;
  auto consumer_cfg = cfg;
  consumer_cfg.logger = log.logger();
  connection conn(ioc, consumer_cfg);
  connection producer(ioc, cfg);
  auto pool_cfg = consumer_cfg;
  pool_cfg.pool_size = 1;
  redcoro::client pool(ioc, pool_cfg);
  constexpr int rounds = 12;
  std::set<std::string> received;
  std::size_t duplicates = 0, timeouts = 0, cancelled = 0, other_errors = 0;
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        conn.async_run(asio::detached);
        producer.async_run(asio::detached);
        pool.async_run(asio::detached);
        if (pc.name.starts_with("XREADGROUP"))
          co_await run(producer, redcoro::command("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"));
        std::mt19937 rng(42);
        std::uniform_int_distribution<int> early(0, 250);
        for (int i = 0; i < rounds; ++i) {
          const bool by_timeout = i % 2 == 0;
          // Three moments for the push: while the caller still waits (it gets the element);
          // the instant it gives up, which races with the unblock and usually reaches the
          // server first, so the server hands the element to a caller who is gone; and well
          // after (the command was unblocked empty-handed, the element stays).
          const int moment = (i / 2) % 3;
          auto pop = pc.pop();
          if (by_timeout) pop.request().get_config().timeout = 300ms;
          if (moment == 0) {
            asio::co_spawn(
                ioc,
                [&, i, delay = std::chrono::milliseconds(early(rng))]() -> awaitable<void> {
                  co_await sleep_for(delay);
                  co_await run(producer, pc.push(i));
                },
                asio::detached);
          }
          redcoro::error_code ec;
          proto::result<proto::value> got;
          if (by_timeout) {
            if (pooled)
              got = co_await pool.async_exec_dedicated(std::move(pop),
                                                       asio::redirect_error(use_awaitable, ec));
            else
              got =
                  co_await conn.async_exec(std::move(pop), asio::redirect_error(use_awaitable, ec));
          } else {
            asio::steady_timer give_up(ioc, 300ms);
            std::variant<proto::result<proto::value>, std::monostate> r;
            if (pooled)
              r = co_await (pool.async_exec_dedicated(std::move(pop),
                                                      asio::redirect_error(use_awaitable, ec)) ||
                            give_up.async_wait(use_awaitable));
            else
              r = co_await (
                  conn.async_exec(std::move(pop), asio::redirect_error(use_awaitable, ec)) ||
                  give_up.async_wait(use_awaitable));
            if (r.index() == 0)
              got = std::move(std::get<0>(r));
            else
              ec = asio::error::operation_aborted;
          }
          if (moment == 1) co_await run(producer, pc.push(i));
          if (moment == 2) {
            co_await sleep_for(100ms);
            co_await run(producer, pc.push(i));
          }
          if (ec == redcoro::error::timeout) {
            ++timeouts;
          } else if (ec == asio::error::operation_aborted) {
            ++cancelled;
          } else if (ec) {
            ++other_errors;
          } else if (auto e = pc.element_of(got.value())) {
            if (!received.insert(*e).second) ++duplicates;
            if (pc.ack) co_await run(conn, pc.ack(got.value()));
          }
          // Let an early push land before the next round starts.
          co_await sleep_for(50ms);
        }
        // Every late reply has come in and gone back.
        for (int i = 0; i < 200 && conn.pending_requests() + producer.pending_requests() > 0; ++i)
          co_await sleep_for(20ms);
        CHECK(conn.pending_requests() == 0);
        const auto left = co_await pc.left(producer);
        std::multiset<std::string> all(left.begin(), left.end());
        for (const auto& r : received) {
          CHECK(all.count(r) == 0);  // received and still there: twice
          all.insert(r);
        }
        INFO("received " << received.size() << ", left " << left.size() << ", timeouts " << timeouts
                         << ", cancelled " << cancelled);
        CHECK(duplicates == 0);
        CHECK(other_errors == 0);
        CHECK(all.size() == static_cast<std::size_t>(rounds));
        for (int i = 0; i < rounds; ++i)
          CHECK(all.count("e" + std::to_string(i)) == 1);
        if (pc.moved) {
          // BLMOVE: what sits in the destination is exactly what callers received.
          const auto moved = co_await pc.moved(producer);
          CHECK(std::set<std::string>(moved.begin(), moved.end()) == received);
          CHECK(moved.size() == received.size());
        }
        // The race was there to lose: pushes at the instant of giving up reached the server
        // before the unblock (an open connection against one still connecting), so calls that
        // were gone took elements, and those went back. (XREADGROUP leaves them pending.)
        if (pc.name != "XREADGROUP BLOCK") CHECK(log.count("giving back") >= 1);
        conn.close();
        producer.close();
        pool.close();
      },
      120s);
}

}  // namespace

TEST_CASE("blocking pops given up by timeout or cancellation lose no element",
          "[client][live][failure][blocking]") {
  for (const auto& pc : cases())
    run_case(pc, false);
}

TEST_CASE("blocking pops on pooled connections given up lose no element",
          "[client][live][failure][blocking][pool]") {
  run_case(cases()[0], true);
}

TEST_CASE("a blocking command's default timeout is its block time plus the request timeout",
          "[client][live][blocking]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 300ms;
  connection conn(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    // Blocks 1 s, longer than the request timeout: still answered (nil), not timed out.
    redcoro::error_code ec;
    auto r = co_await conn.async_exec(redcoro::command("BLPOP", "nothing", 1),
                                      asio::redirect_error(use_awaitable, ec));
    CHECK_FALSE(ec);
    CHECK(r.value().is_null());
    // An ordinary command keeps the request timeout; a paused server makes it expire.
    server.pause();
    co_await conn.async_exec(redcoro::command("GET", "k"), asio::redirect_error(use_awaitable, ec));
    CHECK(ec == redcoro::error::timeout);
    server.resume();
    conn.close();
  });
}
