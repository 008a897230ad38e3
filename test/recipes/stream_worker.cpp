// Stream workers over real servers: three worker processes share 10,000 messages while one is
// SIGKILLed holding messages in progress; a handler that always fails; a message whose
// consumers keep dying; reclaiming from a dead consumer; stop() draining the handlers in
// progress.
//
// "Handled and acknowledged exactly once", honestly: delivery is at least once. The handler
// counts each message in a hash (HINCRBY id 1); a message the killed worker had counted but
// not acknowledged is delivered again and counted twice. The test checks that every message
// was counted, that exactly the messages the killed worker held were counted twice (and none
// more than twice), that no acknowledgement found its message already acknowledged, and
// that nothing is left pending: each message was acknowledged once.
#include "support/child_process.hpp"
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/redis_server.hpp"
#include "support/sentinel_helpers.hpp"
#include <redcoro/recipes/stream_worker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
namespace rr = redcoro::recipes;
using asio::as_tuple;
using asio::use_awaitable;

namespace stream_test {

using fields = std::vector<std::pair<std::string, std::string>>;

// Polls `pred` every 20 ms until it holds, at most `bound`: whether it did.
asio::awaitable<bool> eventually(std::function<asio::awaitable<bool>()> pred,
                                 std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    const bool ok = co_await pred();
    if (ok) co_return true;
    co_await sleep_for(20ms);
  }
  const bool last = co_await pred();
  co_return last;
}

asio::awaitable<std::int64_t> xlen(handle& h, std::string key) {
  auto r = co_await h.async_exec(cmd::xlen(key), use_awaitable);
  co_return r.value();
}

// XPENDING's summary: the group's pending count, and each consumer's.
struct pending_summary {
  std::int64_t total = 0;
  std::map<std::string, std::int64_t> per_consumer;
};
asio::awaitable<pending_summary> pending(handle& h, std::string stream, std::string group) {
  auto r = co_await h.async_exec(command<proto::value>("XPENDING", stream, group), use_awaitable);
  const proto::value& v = r.value();
  pending_summary out;
  REQUIRE(v.size() == 4);
  out.total = v[0].to_integer().value_or(-1);
  for (const auto& c : v[3].elements)
    out.per_consumer[c[0].text] = c[1].to_integer().value_or(-1);
  co_return out;
}

asio::awaitable<void> add(handle& h, std::string stream, int n, std::string tag = "m") {
  rr::stream_producer producer(h, stream, 0);
  for (int i = 0; i < n; ++i) {
    fields f;
    f.emplace_back("n", std::to_string(i));
    f.emplace_back("tag", tag);
    auto r = co_await producer.async_add(f, use_awaitable);
    REQUIRE(r.has_value());
  }
}

// Runs the worker in the background; the returned flag is set when async_run completed.
std::shared_ptr<bool> run_in_background(rr::stream_worker& w) {
  auto done = std::make_shared<bool>(false);
  w.async_run([done](error_code ec, rr::stream_worker_stats) {
    CHECK_FALSE(ec);
    *done = true;
  });
  return done;
}

// ---------------------------------------------------------------------------------------------
// A handler that always fails.

asio::awaitable<void> always_fails(handle& h) {
  const std::string stream = "{poison}:jobs";
  std::map<std::string, int> attempts;
  std::map<std::string, std::int64_t> last_delivery;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = "g";
  o.start_id = "0";
  o.concurrency = 4;
  o.block = 100ms;
  o.claim_idle = 100ms;
  o.claim_interval = 50ms;
  o.max_deliveries = 3;
  rr::stream_worker worker(h, o, [&](const rr::stream_message& m) -> asio::awaitable<void> {
    ++attempts[m.id];
    last_delivery[m.id] = m.deliveries;
    throw std::runtime_error("boom: no such account");
    co_return;
  });
  co_await add(h, stream, 5);
  auto done = run_in_background(worker);

  const bool all_dead = co_await eventually(
      [&]() -> asio::awaitable<bool> {
        const auto n = co_await xlen(h, stream + ":dead");
        co_return n == 5;
      },
      20s);
  {
    const auto st = worker.stats();
    INFO("failed " << st.failed << " dead " << st.dead_lettered << " claimed " << st.claimed
                   << " errors " << st.read_errors << "/" << st.ack_errors);
    REQUIRE(all_dead);
  }
  auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
  REQUIRE_FALSE(ec);
  CHECK(*done);

  CHECK(attempts.size() == 5);
  for (const auto& [id, n] : attempts) {
    INFO(id);
    CHECK(n == 3);
    CHECK(last_delivery[id] == 3);
  }
  CHECK(stats.failed == 15);
  CHECK(stats.dead_lettered == 5);
  CHECK(stats.handled == 0);

  auto dead = co_await h.async_exec(cmd::xrange(stream + ":dead"), use_awaitable);
  REQUIRE(dead.value().size() == 5);
  std::set<std::string> moved;
  for (const stream_entry& e : dead.value()) {
    std::map<std::string, std::string> f(e.fields.begin(), e.fields.end());
    CHECK(f["dead.reason"] == "boom: no such account");
    CHECK(f["dead.deliveries"] == "3");
    CHECK(f["dead.group"] == "g");
    CHECK(f["tag"] == "m");  // the message's own fields follow
    CHECK(f.count("n") == 1);
    moved.insert(f["dead.id"]);
  }
  CHECK(moved.size() == 5);
  for (const auto& [id, n] : attempts)
    CHECK(moved.count(id) == 1);
  // Moved and acknowledged in one step: nothing pending.
  const pending_summary p = co_await pending(h, stream, "g");
  CHECK(p.total == 0);
}

TEST_CASE("stream workers: a handler that always fails sends its message to the dead letter",
          "[recipes][stream]") {
  {
    INFO("single server");
    redis_server server;
    with_handle(local_config(server.port()), always_fails);
  }
  {
    INFO("cluster");
    redis_cluster cluster(3, 0);
    REQUIRE(cluster.wait_healthy());
    with_handle(config_for(cluster), always_fails);
  }
}

// ---------------------------------------------------------------------------------------------
// Messages left pending by consumers that died.

asio::awaitable<void> dead_consumers(handle& h) {
  const std::string stream = "{ghosts}:jobs";
  auto made = co_await rr::async_create_group(h, stream, "g", "0", use_awaitable);
  CHECK(made);
  auto again = co_await rr::async_create_group(h, stream, "g", "0", use_awaitable);
  CHECK_FALSE(again);  // BUSYGROUP is success
  co_await add(h, stream, 2);

  // A consumer reads both and dies. The first message is then claimed (and dropped) by
  // consumers that die too, until it has been delivered 3 times: a message that kills its
  // worker.
  std::vector<std::pair<std::string, std::string>> from_new;
  from_new.emplace_back(stream, ">");
  cmd::xread_options two;
  two.count = 2;
  auto read = co_await h.async_exec(cmd::xreadgroup("g", "ghost-1", from_new, two), use_awaitable);
  REQUIRE(read.value().has_value());
  const auto entries = read.value()->at(0).second;
  REQUIRE(entries.size() == 2);
  const std::string killer = entries[0].id;
  const std::string orphan = entries[1].id;
  const std::array<std::string, 2> ghosts{std::string("ghost-2"), std::string("ghost-3")};
  for (const std::string& ghost : ghosts) {
    auto c = command<proto::value>("XCLAIM", stream, "g", ghost, "0", killer);
    auto r = co_await h.async_exec(std::move(c), use_awaitable);
    REQUIRE(r.has_value());
  }

  std::map<std::string, std::int64_t> seen;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = "g";
  o.consumer = "survivor";
  o.block = 100ms;
  o.claim_idle = 200ms;
  o.claim_interval = 50ms;
  o.max_deliveries = 3;
  rr::stream_worker worker(h, o, [&](const rr::stream_message& m) -> asio::awaitable<void> {
    seen[m.id] = m.deliveries;
    co_return;
  });
  auto done = run_in_background(worker);
  const bool settled = co_await eventually(
      [&]() -> asio::awaitable<bool> {
        const pending_summary p = co_await pending(h, stream, "g");
        co_return p.total == 0;
      },
      20s);
  REQUIRE(settled);
  auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
  REQUIRE_FALSE(ec);
  CHECK(*done);

  // The orphan ran again, on its second delivery; the killer was not run a fourth time.
  CHECK(seen.size() == 1);
  CHECK(seen[orphan] == 2);
  CHECK(stats.claimed == 1);
  CHECK(stats.dead_lettered == 1);
  auto dead = co_await h.async_exec(cmd::xrange(stream + ":dead"), use_awaitable);
  REQUIRE(dead.value().size() == 1);
  std::map<std::string, std::string> f(dead.value()[0].fields.begin(),
                                       dead.value()[0].fields.end());
  CHECK(f["dead.id"] == killer);
  CHECK(f["dead.deliveries"] == "4");
  CHECK(f["dead.reason"] == "delivered 4 times without an acknowledgement");
}

TEST_CASE("stream workers: messages of dead consumers are reclaimed, or dead-lettered",
          "[recipes][stream]") {
  redis_server server;
  with_handle(local_config(server.port()), dead_consumers);
}

// ---------------------------------------------------------------------------------------------
// stop() drains.

asio::awaitable<void> drains(handle& h) {
  const std::string stream = "{drain}:jobs";
  co_await add(h, stream, 20);
  int started = 0;
  int finished = 0;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = "g";
  o.start_id = "0";
  o.concurrency = 4;
  o.block = 100ms;
  o.claim_idle = 60s;
  rr::stream_worker worker(h, o, [&](const rr::stream_message& m) -> asio::awaitable<void> {
    ++started;
    co_await sleep_for(300ms);
    auto c = cmd::hincrby(stream + ":handled", m.id, 1);
    auto r = co_await h.async_exec(std::move(c), use_awaitable);
    REQUIRE(r.has_value());
    ++finished;
  });
  auto done = run_in_background(worker);
  const bool busy =
      co_await eventually([&]() -> asio::awaitable<bool> { co_return started == 4; }, 10s);
  REQUIRE(busy);
  CHECK(finished == 0);

  auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
  REQUIRE_FALSE(ec);
  CHECK(*done);
  // Every handler that had started has finished, and its message is acknowledged; no
  // message was started after the stop.
  CHECK(started == 4);
  CHECK(finished == 4);
  CHECK(stats.handled == 4);
  CHECK(stats.acked == 4);
  const pending_summary p = co_await pending(h, stream, "g");
  CHECK(p.total == 0);
  auto counted = co_await h.async_exec(cmd::hlen(stream + ":handled"), use_awaitable);
  CHECK(counted.value() == 4);

  // A stopped worker does not run again.
  auto [ec2, stats2] = co_await worker.async_run(as_tuple(use_awaitable));
  CHECK(ec2 == error_code(rr::make_error_code(rr::error::worker_stopped)));

  // The rest is there for the next worker.
  rr::stream_worker next(h, o, [&](const rr::stream_message&) -> asio::awaitable<void> {
    ++finished;
    co_return;
  });
  auto next_done = run_in_background(next);
  const bool rest =
      co_await eventually([&]() -> asio::awaitable<bool> { co_return finished == 20; }, 10s);
  CHECK(rest);
  auto [ec3, stats3] = co_await next.async_stop(as_tuple(use_awaitable));
  CHECK_FALSE(ec3);
  CHECK(*next_done);
  CHECK(stats3.acked == 16);
}

TEST_CASE(
    "stream workers: stop drains the handlers in progress, on a pooled client and on one "
    "connection",
    "[recipes][stream]") {
  redis_server server;
  {
    INFO("pooled");
    with_handle(local_config(server.port()), drains);
  }
  {
    INFO("single connection: the worker reads on a connection of its own");
    auto cfg = local_config(server.port());
    cfg.pool_size = 0;
    cfg.key_prefix = "single:";
    with_handle(cfg, drains);
  }
}

// Cancelling async_run (here by `||`: the other side finished first) is a stop: the run still
// completes only after the handlers in progress have.
asio::awaitable<void> cancelled_run(handle& h) {
  using namespace asio::experimental::awaitable_operators;
  const std::string stream = "{cancel}:jobs";
  co_await add(h, stream, 8);
  int started = 0;
  int finished = 0;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = "g";
  o.start_id = "0";
  o.concurrency = 4;
  o.block = 100ms;
  rr::stream_worker worker(h, o, [&](const rr::stream_message&) -> asio::awaitable<void> {
    ++started;
    co_await sleep_for(300ms);
    ++finished;
  });
  auto busy = [&]() -> asio::awaitable<void> {
    // At least: on a loaded machine the first four may have finished and more started by
    // the time this looks.
    const bool four =
        co_await eventually([&]() -> asio::awaitable<bool> { co_return started >= 4; }, 10s);
    REQUIRE(four);
  };
  auto running = worker.async_run(use_awaitable);
  auto waiting = busy();
  auto which = co_await (std::move(running) || std::move(waiting));
  CHECK(which.index() == 1);
  // Cancelled with handlers in progress: each of them ran to its end and was acknowledged.
  CHECK(started >= 4);
  CHECK(finished == started);
  const pending_summary p = co_await pending(h, stream, "g");
  CHECK(p.total == 0);
  auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
  CHECK_FALSE(ec);
  CHECK(stats.acked == static_cast<std::uint64_t>(started));
}

TEST_CASE("stream workers: cancelling async_run stops the worker and drains it",
          "[recipes][stream]") {
  redis_server server;
  with_handle(local_config(server.port()), cancelled_run);
}

// A worker handles 3 messages, then `disrupt()` takes its group away (the stream deleted, the
// server restarted empty): the worker makes the group again by itself and handles 3 more.
// Returns the worker's statistics after it stopped.
asio::awaitable<rr::stream_worker_stats> regroups_after(
    handle& h, const std::string& stream, std::function<asio::awaitable<void>()> disrupt) {
  int handled = 0;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = "g";
  o.start_id = "0";
  o.block = 100ms;
  rr::stream_worker worker(h, o, [&](const rr::stream_message&) -> asio::awaitable<void> {
    ++handled;
    co_return;
  });
  auto done = run_in_background(worker);
  co_await add(h, stream, 3);
  const bool first =
      co_await eventually([&]() -> asio::awaitable<bool> { co_return handled == 3; }, 10s);
  REQUIRE(first);
  co_await disrupt();
  // Until the worker has made the group again, XADD would make a stream without it: wait.
  const bool regrouped = co_await eventually(
      [&]() -> asio::awaitable<bool> {
        auto c = command<proto::value>("XINFO", "GROUPS", stream);
        error_code ec;
        auto r = co_await h.async_exec(std::move(c), asio::redirect_error(use_awaitable, ec));
        co_return !ec && r.has_value() && r->size() == 1;
      },
      20s);
  REQUIRE(regrouped);
  co_await add(h, stream, 3);
  const bool second =
      co_await eventually([&]() -> asio::awaitable<bool> { co_return handled == 6; }, 10s);
  CHECK(second);
  auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
  CHECK_FALSE(ec);
  CHECK(*done);
  CHECK(stats.read_errors >= 1);
  co_return stats;
}

TEST_CASE("stream workers: a worker makes its group again when the stream is deleted",
          "[recipes][stream]") {
  redis_server server;
  with_handle(local_config(server.port()), [&](handle& h) -> asio::awaitable<void> {
    // (Named, not temporaries in the co_await: see the README on GCC 12.)
    const std::string stream = "{gone}:jobs";
    std::function<asio::awaitable<void>()> delete_stream = [&]() -> asio::awaitable<void> {
      auto deleted = co_await h.async_exec(cmd::del(stream), use_awaitable);
      CHECK(deleted.value() == 1);
    };
    auto stats = co_await regroups_after(h, stream, std::move(delete_stream));
    CHECK(stats.acked == 6);
  });
}

TEST_CASE("stream workers: a worker rides out a server restart (SIGKILL, no persistence)",
          "[recipes][stream]") {
  redis_server server;
  with_handle(local_config(server.port()), [&](handle& h) -> asio::awaitable<void> {
    const std::string stream = "{restart}:jobs";
    std::function<asio::awaitable<void>()> restart = [&]() -> asio::awaitable<void> {
      server.kill();
      co_await sleep_for(300ms);
      server.restart();
    };
    co_await regroups_after(h, stream, std::move(restart));
  });
}

TEST_CASE(
    "stream workers: through a Sentinel failover under load, every message a replica "
    "acknowledged is handled",
    "[recipes][stream][sentinel][failure]") {
  redis_sentinel d;
  REQUIRE(d.wait_ready(20s));
  auto cfg = config_for(d);
  cfg.node.connect_timeout = 2s;
  cfg.node.request_timeout = 3s;
  with_handle(
      cfg,
      [&](handle& h) -> asio::awaitable<void> {
        const std::string stream = "{fo}:jobs";
        std::set<std::string> handled, confirmed;
        std::size_t refused = 0;
        rr::stream_worker_options o;
        o.stream = stream;
        o.group = "g";
        o.start_id = "0";
        o.block = 100ms;
        o.claim_idle = 1s;
        o.claim_interval = 300ms;
        rr::stream_worker worker(h, o, [&](const rr::stream_message& m) -> asio::awaitable<void> {
          handled.insert(m.id);
          co_return;
        });
        auto done = run_in_background(worker);

        // A producer that counts a message as written only once a replica has it: XADD and
        // WAIT 1 in one pipeline. What WAIT did not confirm may be lost in the failover.
        bool stop = false, producing = true;
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              int i = 0;
              while (!stop) {  // set by the test while this waits
                fields f;
                f.emplace_back("n", std::to_string(i++));
                // (Named: no temporaries with destructors inside a co_await, for GCC 12.)
                auto write = redcoro::pipeline(cmd::xadd(stream, f),
                                               command<std::int64_t>("WAIT", "1", "500"));
                auto [ec, r] = co_await h.async_exec(std::move(write), as_tuple(use_awaitable));
                auto& [id, replicas] = r;
                if (!ec && id.has_value() && replicas.has_value() && replicas.value() >= 1) {
                  confirmed.insert(id.value());
                } else {
                  ++refused;
                  co_await sleep_for(20ms);
                }
              }
              producing = false;
            },
            asio::detached);
        const bool started = co_await eventually(
            [&]() -> asio::awaitable<bool> { co_return handled.size() >= 200; }, 20s);
        REQUIRE(started);

        const std::uint16_t old = d.agreed_primary();
        d.server_on(old).kill();
        const std::uint16_t promoted = d.wait_primary(20000ms, old);
        REQUIRE(promoted != 0);
        // The old primary comes back; the sentinels make it the new one's replica, so WAIT 1
        // can be satisfied again. Writes are confirmed on the promoted primary, then a while
        // more of load.
        d.server_on(old).restart();
        const std::size_t before = confirmed.size();
        const bool resumed = co_await eventually(
            [&]() -> asio::awaitable<bool> { co_return confirmed.size() >= before + 200; }, 30s);
        CHECK(resumed);
        stop = true;
        const bool producer_ended =
            co_await eventually([&]() -> asio::awaitable<bool> { co_return !producing; }, 10s);
        CHECK(producer_ended);  // no caller hung

        // Every confirmed message is handled (at least once), the ones the old primary had
        // delivered but whose acknowledgement was lost included (reclaimed after claim_idle).
        std::vector<std::string> lost;
        const bool all_handled = co_await eventually(
            [&]() -> asio::awaitable<bool> {
              lost.clear();
              for (const auto& id : confirmed)
                if (!handled.count(id)) lost.push_back(id);
              co_return lost.empty();
            },
            30s);
        CAPTURE(confirmed.size(), handled.size(), refused, lost.size());
        CHECK(all_handled);
        auto [ec, stats] = co_await worker.async_stop(as_tuple(use_awaitable));
        CHECK_FALSE(ec);
        CHECK(*done);
      },
      150s);
}

TEST_CASE("stream producer: MAXLEN ~ keeps the stream near its bound", "[recipes][stream]") {
  redis_server server;
  with_handle(local_config(server.port()), [](handle& h) -> asio::awaitable<void> {
    rr::stream_producer producer(h, "{trim}", 100);
    std::string last;
    for (int i = 0; i < 1000; ++i) {
      fields f;
      f.emplace_back("n", std::to_string(i));
      auto id = co_await producer.async_add(f, use_awaitable);
      last = id.value();
    }
    // Approximate: whole nodes (100 entries each by default) are trimmed, never below 100.
    const auto n = co_await xlen(h, "{trim}");
    CHECK(n >= 100);
    CHECK(n <= 300);
    auto newest = co_await h.async_exec(cmd::xrevrange("{trim}", "+", "-", 1), use_awaitable);
    REQUIRE(newest.value().size() == 1);
    CHECK(newest.value()[0].id == last);
  });
}

TEST_CASE("stream workers: settings that cannot work are refused", "[recipes][stream]") {
  asio::io_context ioc;
  handle h(ioc, local_config(free_port()));
  auto nothing = [](const rr::stream_message&) -> asio::awaitable<void> { co_return; };
  rr::stream_worker_options o;
  o.stream = "orders";
  o.group = "g";
  CHECK_NOTHROW(rr::stream_worker(h, o, nothing));  // dead letter: {orders}:dead, same slot
  o.dead_letter = "elsewhere";
  CHECK_THROWS_AS(rr::stream_worker(h, o, nothing), std::system_error);
  o.dead_letter.clear();
  o.concurrency = 0;
  CHECK_THROWS_AS(rr::stream_worker(h, o, nothing), std::system_error);
  o.concurrency = 1;
  o.max_deliveries = 0;
  CHECK_THROWS_AS(rr::stream_worker(h, o, nothing), std::system_error);
  o.max_deliveries = 1;
  o.group.clear();
  CHECK_THROWS_AS(rr::stream_worker(h, o, nothing), std::system_error);
  h.close();
  redcoro::test::run_until_idle(ioc, 1s);
}

TEST_CASE("stream workers: a worker ends with error closed when its handle is closed",
          "[recipes][stream]") {
  redis_server server;
  asio::io_context ioc;
  handle h(ioc, local_config(server.port()));
  bool ended = false;
  error_code why;
  rr::stream_worker_options o;
  o.stream = "{closing}";
  o.group = "g";
  o.block = 100ms;
  rr::stream_worker worker(h, o,
                           [](const rr::stream_message&) -> asio::awaitable<void> { co_return; });
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto ready = co_await h.async_wait_ready(10s, use_awaitable);
        REQUIRE(ready);
        worker.async_run([&](error_code ec, rr::stream_worker_stats) {
          ended = true;
          why = ec;
        });
        // Running: the group exists once the worker has made it.
        const bool grouped = co_await eventually(
            [&]() -> asio::awaitable<bool> {
              auto c = command<proto::value>("XINFO", "GROUPS", "{closing}");
              auto r = co_await h.async_exec(std::move(c), use_awaitable);
              co_return r.has_value() && r->size() == 1;
            },
            10s);
        REQUIRE(grouped);
        h.close();
        const bool over =
            co_await eventually([&]() -> asio::awaitable<bool> { co_return ended; }, 10s);
        CHECK(over);
      },
      30s);
  CHECK(why == error_code(redcoro::error::closed));
}

// ---------------------------------------------------------------------------------------------
// Three worker processes, one SIGKILLed.

// Three worker processes on the deployment `cfg` (and `url`, for the children).
void kill_one_of_three(const handle_config& cfg, const std::string& url) {
  constexpr int messages = 10000;
  constexpr int concurrency = 8;
  const std::string stream = "{jobs}";
  const std::string group = "workers";
  auto spawn = [&](const char* name, int hang_after) {
    return std::make_unique<child_process>(
        std::vector<std::string>{REDCORO_STREAM_CHILD, url, stream, group, name,
                                 std::to_string(concurrency), std::to_string(hang_after), "2000"});
  };
  std::unique_ptr<child_process> w0, w1, w2;

  with_handle(
      cfg,
      [&](handle& h) -> asio::awaitable<void> {
        auto made = co_await rr::async_create_group(h, stream, group, "0", use_awaitable);
        REQUIRE(made);
        co_await add(h, stream, messages);

        // w0 handles 300 messages, then holds `concurrency` of them (counted, not yet
        // acknowledged) until it is killed.
        w0 = spawn("w0", 300);
        REQUIRE(w0->started());
        const bool holding = co_await eventually(
            [&]() -> asio::awaitable<bool> {
              auto c = cmd::hget(stream + ":hung:w0", "held");
              auto held = co_await h.async_exec(std::move(c), use_awaitable);
              if (held.value() != std::to_string(concurrency)) co_return false;
              const pending_summary p = co_await pending(h, stream, group);
              auto it = p.per_consumer.find("w0");
              co_return it != p.per_consumer.end() && it->second == concurrency;
            },
            30s);
        REQUIRE(holding);
        w1 = spawn("w1", 0);
        w2 = spawn("w2", 0);
        REQUIRE(w1->started());
        REQUIRE(w2->started());
        const bool midway = co_await eventually(
            [&]() -> asio::awaitable<bool> {
              auto n = co_await h.async_exec(cmd::hlen(stream + ":handled"), use_awaitable);
              co_return n.value() >= 3000;
            },
            60s);
        REQUIRE(midway);
        w0->signal(SIGKILL);
        const int killed = w0->wait(10s);
        REQUIRE(killed != -1);
        CHECK(WIFSIGNALED(killed));

        // The survivors claim what w0 held (after claim_idle) and finish the rest.
        const bool finished = co_await eventually(
            [&]() -> asio::awaitable<bool> {
              auto n = co_await h.async_exec(cmd::hlen(stream + ":handled"), use_awaitable);
              if (n.value() != messages) co_return false;
              const pending_summary p = co_await pending(h, stream, group);
              co_return p.total == 0;
            },
            60s);
        REQUIRE(finished);
      },
      100s);

  // The survivors stop cleanly and report.
  w1->signal(SIGTERM);
  w2->signal(SIGTERM);
  const int s1 = w1->wait(20s);
  const int s2 = w2->wait(20s);
  REQUIRE(s1 != -1);
  REQUIRE(s2 != -1);
  CHECK(WIFEXITED(s1));
  CHECK(WEXITSTATUS(s1) == 0);
  CHECK(WIFEXITED(s2));
  CHECK(WEXITSTATUS(s2) == 0);

  with_handle(cfg, [&](handle& h) -> asio::awaitable<void> {
    auto all = co_await h.async_exec(cmd::xrange(stream), use_awaitable);
    REQUIRE(all.value().size() == messages);
    auto counts = co_await h.async_exec(cmd::hgetall(stream + ":handled"), use_awaitable);
    const auto& handled = counts.value();
    REQUIRE(handled.size() == messages);
    int twice = 0;
    int other = 0;
    for (const stream_entry& e : all.value()) {
      auto it = handled.find(e.id);
      REQUIRE(it != handled.end());
      if (it->second == "2")
        ++twice;
      else if (it->second != "1")
        ++other;
    }
    // Counted twice: exactly the messages w0 held when it died, run again by a survivor.
    CHECK(twice == concurrency);
    CHECK(other == 0);

    std::uint64_t acked = 0, handled_by_survivors = 0, claimed = 0;
    std::vector<std::string> survivors;
    survivors.push_back("w1");
    survivors.push_back("w2");
    for (const std::string& w : survivors) {
      INFO(w);
      auto st = co_await h.async_exec(cmd::hgetall(stream + ":stats:" + w), use_awaitable);
      const auto& m = st.value();
      REQUIRE(m.size() == 7);
      CHECK(m.at("stale_acks") == "0");
      CHECK(m.at("ack_errors") == "0");
      CHECK(m.at("failed") == "0");
      CHECK(m.at("dead_lettered") == "0");
      CHECK(m.at("handled") == m.at("acked"));
      acked += std::stoull(m.at("acked"));
      handled_by_survivors += std::stoull(m.at("handled"));
      claimed += std::stoull(m.at("claimed"));
    }
    // w0 acknowledged its first 300; the survivors everything else, the 8 it held included.
    CHECK(acked == messages - 300);
    CHECK(handled_by_survivors == messages - 300);
    CHECK(claimed == concurrency);
    const pending_summary p = co_await pending(h, stream, group);
    CHECK(p.total == 0);
    auto dead = co_await xlen(h, stream + ":dead");
    CHECK(dead == 0);
  });
}

TEST_CASE(
    "stream workers: 3 processes and 10000 messages with one SIGKILLed mid-run, each message "
    "handled and acknowledged, on one server",
    "[recipes][stream]") {
  redis_server server;
  kill_one_of_three(local_config(server.port()),
                    "redis://127.0.0.1:" + std::to_string(server.port()));
}

TEST_CASE(
    "stream workers: 3 processes and 10000 messages with one SIGKILLed mid-run, each message "
    "handled and acknowledged, on a cluster",
    "[recipes][stream]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  std::string url = "redis+cluster://";
  for (std::uint16_t p : cluster.ports()) {
    if (url.back() != '/') url += ",";
    url += "127.0.0.1:" + std::to_string(p);
  }
  kill_one_of_three(config_for(cluster), url);
}

}  // namespace stream_test
