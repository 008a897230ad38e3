// sentinel_client against a real Sentinel deployment (test/support/redis_sentinel.hpp): one
// primary, one replica, three sentinels, with quick failovers. Every wait is bounded.
#include "support/client_helpers.hpp"
#include "support/log_capture.hpp"
#include "support/redis_sentinel.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/client/url.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using redcoro::error_code;
using redcoro::sentinel_client;
using redcoro::test::eventually;
using redcoro::test::log_capture;
using redcoro::test::redis_sentinel;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;
using steady = std::chrono::steady_clock;

namespace {

auto use_ec(error_code& ec) {
  return asio::redirect_error(use_awaitable, ec);
}

// The deployment's URL, with the sentinels `which` (indices) in that order.
std::string url_of(const redis_sentinel& d, const std::vector<std::size_t>& which = {0, 1, 2},
                   const std::string& userinfo = "", const std::string& name = "",
                   const std::string& options = "") {
  std::string url = "redis+sentinel://" + userinfo;
  const auto ports = d.sentinel_ports();
  for (std::size_t i = 0; i < which.size(); ++i)
    url += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(ports.at(which[i]));
  url += "/" + (name.empty() ? d.name() : name);
  if (!options.empty()) url += "?" + options;
  return url;
}

// Quick reconnects and bounded waits for the tests; logs captured.
redcoro::sentinel_config config_of(const std::string& url, const log_capture& log) {
  auto defaults = redcoro::test::local_config(6379);
  defaults.request_timeout = 10s;
  defaults.connect_timeout = 2s;
  defaults.logger = log.logger();
  return redcoro::parse_sentinel_url(url, defaults);
}

awaitable<error_code> ping(sentinel_client& c, std::chrono::milliseconds timeout = 10s) {
  redcoro::command<std::string> p("PING");
  p.request().get_config().timeout = timeout;
  error_code ec;
  co_await c.async_exec(std::move(p), use_ec(ec));
  co_return ec;
}

std::string describe(const std::map<std::string, std::size_t>& m) {
  std::ostringstream out;
  for (const auto& [why, n] : m)
    out << n << " x " << why << "; ";
  return out.str();
}

// Writers of distinct keys (SET load:<worker>:<n>, INCR load:<worker>:count): what was issued,
// what completed and how.
struct write_load {
  bool stop = false;
  int running = 0;
  std::size_t issued = 0, completed = 0, ok = 0;
  std::map<std::string, std::size_t> failures;
  // Of the requests issued after `mark`: when the first one succeeded.
  std::optional<steady::time_point> mark, first_ok_after_mark;

  awaitable<void> worker(sentinel_client& c, int id) {
    ++running;
    const std::string prefix = "load:" + std::to_string(id) + ":";
    for (std::int64_t n = 0; !stop; ++n) {
      ++issued;
      const auto issued_at = steady::now();
      error_code ec;
      std::string why;
      if (n % 2 == 0) {
        auto r = co_await c.async_exec(cmd::set(prefix + std::to_string(n), n), use_ec(ec));
        if (!ec && r.has_error()) why = r.error().message;
      } else {
        auto r = co_await c.async_exec(cmd::incr(prefix + "count"), use_ec(ec));
        if (!ec && r.has_error()) why = r.error().message;
      }
      ++completed;
      if (ec) why = ec.message();
      if (why.empty()) {
        ++ok;
        if (mark && issued_at >= *mark && !first_ok_after_mark) first_ok_after_mark = steady::now();
      } else {
        ++failures[why];
        co_await sleep_for(20ms);  // no busy loop while the primary is away
      }
    }
    --running;
  }

  void start(sentinel_client& c, int workers) {
    for (int i = 0; i < workers; ++i)
      asio::co_spawn(c.get_executor(), worker(c, i), asio::detached);
  }

  // Stops the writers and waits for every one of them (each request is bounded by its
  // timeout, 10 s).
  awaitable<bool> finish() {
    stop = true;
    co_return co_await eventually([&] { return running == 0; }, 15s);
  }
};

// Writes `count` keys on one pooled connection, then WAIT 1: how many replicas acknowledged
// all of them.
awaitable<std::int64_t> acknowledged_writes(sentinel_client& c, int count) {
  auto [ec, l] = co_await c.async_acquire(asio::as_tuple(use_awaitable));
  REQUIRE_FALSE(ec);
  for (int i = 0; i < count; ++i) {
    auto r = co_await l->async_exec(cmd::set("acked:" + std::to_string(i), i), use_awaitable);
    REQUIRE(r.has_value());
  }
  redcoro::command<std::int64_t> wait("WAIT", 1, 5000);
  auto w = co_await l->async_exec(std::move(wait), use_awaitable);
  co_return w.value();
}

// How many of the acknowledged keys read back with their value.
awaitable<int> read_back(sentinel_client& c, int count) {
  int found = 0;
  for (int i = 0; i < count; ++i) {
    error_code ec;
    auto r = co_await c.async_exec(cmd::get("acked:" + std::to_string(i)), use_ec(ec));
    const std::optional<std::string> expected = std::to_string(i);
    if (!ec && r.has_value() && *r == expected) ++found;
  }
  co_return found;
}

// Polls the sentinels on a thread of its own (redis-cli would stall the io_context) until they
// agree on a primary other than `old`: which, and when that was seen.
struct agreement_watch {
  agreement_watch(const redis_sentinel& d, std::uint16_t old)
      : thread([this, &d, old] {
          promoted = d.wait_primary(45s, old);
          at = steady::now();
          done = true;
        }) {}
  std::atomic<std::uint16_t> promoted = 0;
  steady::time_point at;
  std::atomic<bool> done = false;
  std::jthread thread;  // last: starts once the rest is built
};

// The failover scenario of (a) and (b): 20 writers, acknowledged writes, then `fail_over()`.
void failover_under_load(redis_sentinel& d, const std::function<void()>& fail_over,
                         bool expect_push) {
  log_capture log;
  auto cfg = config_of(url_of(d), log);
  asio::io_context ioc;
  sentinel_client c(ioc, cfg);
  const std::uint16_t old_primary = d.server(0).port();
  const std::uint16_t replica = d.server(1).port();
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        c.async_run(asio::detached);
        write_load load;
        load.start(c, 20);
        co_await sleep_for(500ms);
        constexpr int acked = 200;
        const std::int64_t replicas_acked = co_await acknowledged_writes(c, acked);
        REQUIRE(replicas_acked == 1);
        const std::size_t ok_before = load.ok;
        CHECK(ok_before > 0);
        REQUIRE(c.current_address().has_value());
        CHECK(c.current_address()->port == old_primary);

        fail_over();
        agreement_watch agreed(d, old_primary);
        const bool switched = co_await eventually([&] { return agreed.done.load(); }, 50s);
        REQUIRE(switched);
        REQUIRE(agreed.promoted.load() == replica);
        INFO("the sentinels agreed on the new primary "
             << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - agreed.at)
                    .count()
             << " ms ago");
        // Writes issued from now on reach the promoted replica (the only primary, and the
        // only server a write succeeds on) within 2 s.
        load.mark = agreed.at;
        const bool writing =
            co_await eventually([&] { return load.first_ok_after_mark.has_value(); }, 5s);
        REQUIRE(writing);
        CHECK(*load.first_ok_after_mark - agreed.at <= 2s);
        const bool moved = co_await eventually(
            [&] { return c.current_address() && c.current_address()->port == replica; }, 2s);
        CHECK(moved);
        if (expect_push) CHECK(log.count("+switch-master: the primary of 'mymaster' moved") >= 1);

        co_await sleep_for(300ms);
        const bool finished = co_await load.finish();
        REQUIRE(finished);
        // Every request completed, with a reply or an error.
        CHECK(load.completed == load.issued);
        INFO("ok " << load.ok << ", failures: " << describe(load.failures));
        CHECK(load.ok > ok_before);
        for (const auto& [why, n] : load.failures) {
          INFO(why);
          CHECK((why.find("connection was lost") != std::string::npos ||
                 why.find("timed out") != std::string::npos || why.rfind("READONLY", 0) == 0));
        }
        // What WAIT acknowledged before the failover survived it.
        const int found = co_await read_back(c, acked);
        CHECK(found == acked);
        // A write now lands on the promoted server.
        co_await c.async_exec(cmd::set("after-failover", "yes"), use_awaitable);
        c.close();
      },
      90s);
  CHECK(d.server_cli(replica, {"GET", "after-failover"}) == "yes\n");
}

}  // namespace

TEST_CASE("sentinel: SIGKILL of the primary under 20 writers", "[sentinel][live]") {
  redis_sentinel d;
  failover_under_load(
      d, [&] { d.server(0).kill(); }, false);
}

TEST_CASE("sentinel: SENTINEL FAILOVER under 20 writers, followed through +switch-master",
          "[sentinel][live]") {
  redis_sentinel d;
  failover_under_load(
      d,
      [&] {
        const std::string ok = d.sentinel_cli(1, {"SENTINEL", "FAILOVER", d.name()});
        REQUIRE(ok == "OK\n");
      },
      true);
}

TEST_CASE("sentinel: one sentinel down from the start, the others serve, across a failover",
          "[sentinel][live]") {
  redis_sentinel d;
  d.stop_sentinel(0);
  log_capture log;
  asio::io_context ioc;
  sentinel_client c(ioc, config_of(url_of(d, {0, 1, 2}), log));
  const auto down = redcoro::endpoint{"127.0.0.1", d.sentinel_ports()[0]};
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        c.async_run(asio::detached);
        int ok = 0;
        for (int i = 0; i < 50; ++i) {
          auto r = co_await c.async_exec(cmd::incr("counter"), use_awaitable);
          if (r.has_value()) ++ok;
        }
        CHECK(ok == 50);
        CHECK(c.current_address().value_or(redcoro::endpoint{}).port == d.server(0).port());
        // The one that answered is asked first from now on.
        CHECK(c.sentinels().front() != down);
        CHECK(c.sentinels().size() == 3);

        // Two sentinels still make the quorum: a failover is followed too.
        d.server(0).kill();
        const auto killed = steady::now();
        bool recovered = false;
        while (!recovered && steady::now() - killed < 40s) {
          error_code ec;
          auto r = co_await c.async_exec(cmd::incr("counter"), use_ec(ec));
          recovered = !ec && r.has_value();
          if (!recovered) co_await sleep_for(50ms);
        }
        CHECK(recovered);
        CHECK(c.current_address().value_or(redcoro::endpoint{}).port == d.server(1).port());
        c.close();
      },
      90s);
}

TEST_CASE("sentinel: all sentinels down is a clear error, retried with backoff, then recovery",
          "[sentinel][live]") {
  redis_sentinel d;
  for (std::size_t i = 0; i < 3; ++i)
    d.stop_sentinel(i);
  log_capture log;
  auto cfg = config_of(url_of(d), log);
  cfg.node.reconnect.min_delay = 50ms;
  cfg.node.reconnect.max_delay = 400ms;
  asio::io_context ioc;
  sentinel_client c(ioc, cfg);
  error_code run_ec;
  bool run_done = false;
  const std::string attempt_line = "no primary of 'mymaster' to connect to";
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        c.async_run([&](error_code ec) {
          run_ec = ec;
          run_done = true;
        });
        // Told why at the first attempt, long before the request's own 10 s.
        const auto start = steady::now();
        const error_code first = co_await ping(c);
        CHECK(first == redcoro::error::no_sentinel_reachable);
        CHECK(steady::now() - start < 3s);
        CHECK_FALSE(c.current_address().has_value());

        // Two seconds down: attempts every 25 to 400 ms (backoff with jitter), not a storm.
        const std::size_t before = log.count(attempt_line);
        int failed_clearly = 0;
        const auto until = steady::now() + 2s;
        while (steady::now() < until) {
          const error_code ec = co_await ping(c);
          if (ec == redcoro::error::no_sentinel_reachable) ++failed_clearly;
        }
        const std::size_t attempts = log.count(attempt_line) - before;
        CHECK(attempts >= 4);
        CHECK(attempts <= 40);
        CHECK(failed_clearly >= 4);
        CHECK(log.count("Connection refused") >= 3);  // the log says what each sentinel did

        // One sentinel back: the client recovers (bounded).
        d.start_sentinel(2);
        const auto back = steady::now();
        bool recovered = false;
        while (!recovered && steady::now() - back < 10s) {
          const error_code ec = co_await ping(c);
          recovered = !ec;
          if (!recovered) co_await sleep_for(20ms);
        }
        CHECK(recovered);
        REQUIRE(c.current_address().has_value());
        CHECK(c.current_address()->port == d.server(0).port());
        CHECK_FALSE(run_done);  // retried all along, never given up
        c.close();
        const bool ended = co_await eventually([&] { return run_done; }, 5s);
        CHECK(ended);
      },
      60s);
  CHECK(run_ec == redcoro::error::closed);
}

TEST_CASE("sentinel: a primary name no sentinel knows ends async_run at once", "[sentinel][live]") {
  redis_sentinel d;
  log_capture log;
  asio::io_context ioc;
  sentinel_client c(ioc, config_of(url_of(d, {0, 1, 2}, "", "no-such-primary"), log));
  error_code run_ec;
  bool run_done = false;
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        const auto start = steady::now();
        c.async_run([&](error_code ec) {
          run_ec = ec;
          run_done = true;
        });
        const error_code r = co_await ping(c);
        CHECK(r == redcoro::error::unknown_primary_name);
        const bool ended = co_await eventually([&] { return run_done; }, 5s);
        REQUIRE(ended);
        CHECK(steady::now() - start < 5s);
        // After the end, requests are refused.
        const error_code after = co_await ping(c);
        CHECK(after == redcoro::error::closed);
      },
      30s);
  CHECK(run_ec == redcoro::error::unknown_primary_name);
  CHECK(log.count("no sentinel knows a primary named 'no-such-primary'") == 1);
}

TEST_CASE("sentinel: role replica reads from the replica", "[sentinel][live]") {
  redis_sentinel d;
  log_capture log;
  asio::io_context ioc;
  sentinel_client c(ioc, config_of(url_of(d, {0, 1, 2}, "", "", "role=replica"), log));
  REQUIRE(d.server_cli(d.server(0).port(), {"SET", "k", "from-primary"}) == "OK\n");
  run_bounded(ioc, [&]() -> awaitable<void> {
    c.async_run(asio::detached);
    int slave = 0;
    for (int i = 0; i < 20; ++i) {
      auto role = co_await c.async_exec(redcoro::command("ROLE"), use_awaitable);
      const std::string said = role.value().size() > 0 ? role.value()[0].text : "";
      if (said == "slave") ++slave;
    }
    CHECK(slave == 20);
    // A dedicated connection goes to a replica as well.
    auto pooled = co_await c.async_exec_dedicated(redcoro::command("ROLE"), use_awaitable);
    const std::string pooled_role = pooled.value().size() > 0 ? pooled.value()[0].text : "";
    CHECK(pooled_role == "slave");
    REQUIRE(c.current_address().has_value());
    CHECK(c.current_address()->port == d.server(1).port());
    // The replica has the primary's data (replicated), and refuses writes.
    const std::optional<std::string> expected = "from-primary";
    bool replicated = false;
    for (int i = 0; i < 100 && !replicated; ++i) {
      auto v = co_await c.async_exec(cmd::get("k"), use_awaitable);
      replicated = v.has_value() && *v == expected;
      if (!replicated) co_await sleep_for(20ms);
    }
    CHECK(replicated);
    auto w = co_await c.async_exec(cmd::set("k", "x"), use_awaitable);
    REQUIRE(w.has_error());
    const std::string refusal = w.error().message;
    CHECK(refusal.rfind("READONLY", 0) == 0);
    c.close();
  });
}

TEST_CASE("sentinel: sentinels with their own password", "[sentinel][live]") {
  const std::string node_pw = "node-pw-4a1c";
  const std::string sentinel_pw = "sentinel-pw-9e2b";
  redis_sentinel::options o;
  o.password = node_pw;
  o.sentinel_password = sentinel_pw;
  redis_sentinel d(o);
  log_capture log;
  asio::io_context ioc;
  // The node's password in the userinfo, the sentinels' as an option.
  sentinel_client good(ioc, config_of(url_of(d, {0, 1, 2}, ":" + node_pw + "@", "",
                                             "sentinel_password=" + sentinel_pw),
                                      log));
  sentinel_client wrong(ioc, config_of(url_of(d, {0, 1, 2}, ":" + node_pw + "@", "",
                                              "sentinel_password=not-" + sentinel_pw),
                                       log));
  run_bounded(ioc, [&]() -> awaitable<void> {
    good.async_run(asio::detached);
    wrong.async_run(asio::detached);
    co_await good.async_exec(cmd::set("k", "v"), use_awaitable);
    auto v = co_await good.async_exec(cmd::get("k"), use_awaitable);
    const std::optional<std::string> expected = "v";
    CHECK(*v == expected);
    CHECK(good.current_address().value_or(redcoro::endpoint{}).port == d.server(0).port());

    const error_code refused = co_await ping(wrong);
    CHECK(refused == redcoro::error::no_sentinel_reachable);
    // The log says what each sentinel answered.
    for (const auto port : d.sentinel_ports()) {
      const std::string said =
          "127.0.0.1:" + std::to_string(port) + ": the server refused the credentials";
      CHECK(log.count(said) >= 1);
    }
    good.close();
    wrong.close();
  });
  for (const auto& line : log.lines()) {
    INFO(line);
    CHECK(line.find(node_pw) == std::string::npos);
    CHECK(line.find(sentinel_pw) == std::string::npos);
  }
}

TEST_CASE("sentinel: the other sentinels are found, and async_run can be cancelled",
          "[sentinel][live]") {
  redis_sentinel d;
  log_capture log;
  asio::io_context ioc;
  sentinel_client c(ioc, config_of(url_of(d, {2}), log));
  asio::cancellation_signal stop;
  error_code run_ec;
  bool run_done = false;
  run_bounded(ioc, [&]() -> awaitable<void> {
    c.async_run(asio::bind_cancellation_slot(stop.slot(), [&](error_code ec) {
      run_ec = ec;
      run_done = true;
    }));
    const error_code r = co_await ping(c);
    CHECK_FALSE(r);
    // SENTINEL SENTINELS named the two others.
    const bool found = co_await eventually([&] { return c.sentinels().size() == 3; }, 5s);
    CHECK(found);
    stop.emit(asio::cancellation_type::terminal);
    const bool ended = co_await eventually([&] { return run_done; }, 5s);
    CHECK(ended);
  });
  CHECK(run_ec == asio::error::operation_aborted);
}

TEST_CASE("sentinel: the watch moves to another sentinel when its own dies", "[sentinel][live]") {
  redis_sentinel d;
  log_capture log;
  asio::io_context ioc;
  sentinel_client c(ioc, config_of(url_of(d), log));
  const auto ports = d.sentinel_ports();
  // Which sentinel is watched: the log says.
  const auto watched = [&]() -> std::optional<std::size_t> {
    std::optional<std::size_t> last;
    for (const auto& line : log.lines())
      for (std::size_t i = 0; i < ports.size(); ++i)
        if (line.find("watching 127.0.0.1:" + std::to_string(ports[i]) + " ") != std::string::npos)
          last = i;
    return last;
  };
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        c.async_run(asio::detached);
        const error_code r = co_await ping(c);
        REQUIRE_FALSE(r);
        const bool watching = co_await eventually([&] { return watched().has_value(); }, 5s);
        REQUIRE(watching);
        const std::size_t first = *watched();
        d.stop_sentinel(first);
        const bool moved =
            co_await eventually([&] { return watched().has_value() && *watched() != first; }, 10s);
        REQUIRE(moved);
        // A failover now is followed through the new watch.
        const std::size_t other = (first + 1) % 3;
        const std::string ok = d.sentinel_cli(other, {"SENTINEL", "FAILOVER", d.name()});
        REQUIRE(ok == "OK\n");
        const bool switched = co_await eventually(
            [&] { return log.count("+switch-master: the primary of 'mymaster' moved") >= 1; }, 30s);
        CHECK(switched);
        const bool followed = co_await eventually(
            [&] { return c.current_address() && c.current_address()->port == d.server(1).port(); },
            5s);
        CHECK(followed);
        error_code ec;
        co_await c.async_exec(cmd::set("after", "1"), use_ec(ec));
        CHECK_FALSE(ec);
        c.close();
      },
      90s);
}
