// The lock and leader election over real servers and a real cluster: holders in other
// processes (recipes_lock_worker, next to this executable), a holder SIGSTOPped past its
// lease, the watchdog, the guard, the wait and its wake-up.
#include "recipes/worker.hpp"
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/recipes/leader.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <signal.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
namespace rr = redcoro::recipes;

namespace lock_test {

using clock = std::chrono::steady_clock;

// A single server (a pooled client: blocking waits on dedicated connections) and a
// 3-primary cluster.
void on_both(const std::function<asio::awaitable<void>(handle&)>& body) {
  {
    INFO("single server");
    redis_server server;
    with_handle(local_config(server.port()), body);
  }
  {
    INFO("cluster");
    redis_cluster cluster(3, 0);
    REQUIRE(cluster.wait_healthy());
    with_handle(config_for(cluster), body);
  }
}

asio::awaitable<std::optional<std::string>> get(handle& h, const std::string& key) {
  auto r = co_await h.async_exec(cmd::get(key), asio::use_awaitable);
  co_return std::move(r).value();
}

// Polls until `key` is gone: at most `limit`.
asio::awaitable<bool> gone(handle& h, const std::string& key, std::chrono::milliseconds limit) {
  const auto deadline = clock::now() + limit;
  while (clock::now() < deadline) {
    auto v = co_await get(h, key);
    if (!v) co_return true;
    co_await sleep_for(10ms);
  }
  co_return false;
}

asio::awaitable<error_code> release(rr::lock_guard& g) {
  auto [ec] = co_await g.async_release(asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

asio::awaitable<error_code> extend(rr::lock_guard& g, std::chrono::milliseconds lease) {
  auto [ec] = co_await g.async_extend(lease, asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

std::string url_of(const redis_server& s) {
  return "redis://127.0.0.1:" + std::to_string(s.port());
}

std::string url_of(const redis_cluster& c) {
  std::string url = "redis+cluster://";
  for (std::uint16_t p : c.ports())
    url += "127.0.0.1:" + std::to_string(p) + ",";
  url.pop_back();
  return url;
}

// 3 processes x 20 coroutines, 2,000 increments of a GET-then-SET counter under the lock.
void count_in_three_processes(const std::string& url, handle_config cfg) {
  const std::string name = "counter";
  std::vector<std::unique_ptr<worker>> workers;
  const int shares[3] = {667, 667, 666};
  for (int share : shares)
    workers.push_back(std::make_unique<worker>(
        std::vector<std::string>{"count", url, name, "20", std::to_string(share)}));
  for (auto& w : workers) {
    const int status = w->wait(100s);
    CHECK(status == 0);
  }
  with_handle(std::move(cfg), [&](handle& h) -> asio::awaitable<void> {
    auto v = co_await get(h, "{" + name + "}:counter");
    REQUIRE(v);
    CHECK(*v == "2000");
    // Every acquisition got a fencing token of its own (the workers checked, under the lock,
    // that each was greater than the last one written): at least 2,000 of them (a coroutine
    // that finds the work done once it holds the lock releases it without counting).
    auto f = co_await get(h, "lock:{" + name + "}:fence");
    REQUIRE(f);
    CHECK(std::stoll(*f) >= 2000);
  });
}

// A holder in another process, SIGSTOPped past its lease: another takes the lock with a
// greater fence; resumed, the holder's watchdog reports the loss and its release fails.
void stopped_holder(const std::string& url, handle_config cfg) {
  worker w({"hold", url, "paused", "500"});
  const std::string first = w.read_line(20s);
  REQUIRE(first.rfind("fence ", 0) == 0);
  const std::int64_t child_fence = std::stoll(first.substr(6));
  REQUIRE(::kill(w.pid(), SIGSTOP) == 0);

  with_handle(std::move(cfg), [&](handle& h) -> asio::awaitable<void> {
    // The stopped holder's watchdog cannot extend: its lease lapses and we get the lock.
    rr::lock l(h, "paused");
    auto g = co_await l.async_acquire(10s, asio::use_awaitable);
    REQUIRE(g);
    CHECK(g.fence() > child_fence);
    REQUIRE(::kill(w.pid(), SIGCONT) == 0);
    // Resumed, its watchdog finds the lock lost, and its release fails and says so.
    CHECK(w.read_line(10s) == "lost");
    w.write_line("release");
    CHECK(w.read_line(10s) == "release lock_not_held");
    CHECK(g.owns_lock());
    auto v = co_await get(h, l.key());
    CHECK(v == g.token());
    const error_code rec = co_await release(g);
    CHECK_FALSE(rec);
  });
  CHECK(w.wait(10s) == 0);
}

}  // namespace lock_test

using namespace lock_test;

TEST_CASE("lock: only the holder releases or extends, and fencing tokens grow", "[lock]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    rr::lock_options o;
    o.lease = 300ms;
    rr::lock a(h, "basics", o);
    rr::lock b(h, "basics", o);
    auto first = co_await a.async_try_acquire(asio::use_awaitable);
    REQUIRE(first.owns_lock());
    CHECK(first.token().size() == 32);
    auto busy = co_await b.async_try_acquire(asio::use_awaitable);
    CHECK_FALSE(busy);  // held by the first
    auto holder = co_await get(h, a.key());
    CHECK(holder == first.token());

    // The first holder's lease runs out; another takes the lock with a greater fence.
    const bool expired = co_await gone(h, a.key(), 5s);
    REQUIRE(expired);
    auto second = co_await b.async_try_acquire(asio::use_awaitable);
    REQUIRE(second.owns_lock());
    CHECK(second.fence() > first.fence());
    CHECK(second.token() != first.token());

    // The first holder's late extend and release fail, and leave the second's lock alone.
    const error_code late_extend = co_await extend(first, 10s);
    CHECK(late_extend == rr::error::lock_not_held);
    const error_code late_release = co_await release(first);
    CHECK(late_release == rr::error::lock_not_held);
    auto still = co_await get(h, a.key());
    CHECK(still == second.token());

    // The holder extends, then releases; a second release is refused.
    const error_code extended = co_await extend(second, 10s);
    CHECK_FALSE(extended);
    const error_code released = co_await release(second);
    CHECK_FALSE(released);
    CHECK_FALSE(second.owns_lock());
    const error_code again = co_await release(second);
    CHECK(again == rr::error::lock_not_held);
    auto after = co_await get(h, a.key());
    CHECK_FALSE(after);
  });
}

TEST_CASE("lock: the guard releases on every exit path", "[lock]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    rr::lock l(h, "scoped");
    bool thrown = false;
    try {
      auto g = co_await l.async_acquire(asio::use_awaitable);
      REQUIRE(g.owns_lock());
      throw std::runtime_error("the work failed");
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    CHECK(thrown);
    const bool released = co_await gone(h, l.key(), 5s);
    CHECK(released);

    // Moving a guard moves the holding; assigning over a guard releases what it held.
    auto g1 = co_await l.async_acquire(asio::use_awaitable);
    rr::lock_guard moved = std::move(g1);
    CHECK(moved.owns_lock());
    moved = rr::lock_guard();
    const bool released_again = co_await gone(h, l.key(), 5s);
    CHECK(released_again);
  });
}

TEST_CASE("lock: a busy lock is waited for within a bound, and a release wakes the waiter",
          "[lock]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    rr::lock_options o;
    o.lease = 20s;
    rr::lock holder(h, "busy", o);
    auto held = co_await holder.async_acquire(asio::use_awaitable);
    REQUIRE(held);

    // Busy for the whole bound: lock_wait_timeout, not before the bound.
    rr::lock waiter(h, "busy", o);
    const auto t0 = clock::now();
    auto [ec, none] = co_await waiter.async_acquire(300ms, asio::as_tuple(asio::use_awaitable));
    CHECK(ec == rr::error::lock_wait_timeout);
    CHECK_FALSE(none);
    CHECK(clock::now() - t0 >= 300ms);

    // A waiter whose next retry is 5 to 10 s away (10 s, jittered) is woken by the release (a
    // notice on the wake list it blocks on) before it. The bound of 4 s is not a speed claim:
    // it only separates "woken" from "retried".
    rr::lock_options slow = o;
    slow.retry_min = 10s;
    slow.retry_max = 10s;
    rr::lock patient(h, "busy", slow);
    bool got = false;
    clock::time_point got_at;
    std::int64_t fence = 0;
    asio::co_spawn(
        h.get_executor(),
        [&]() -> asio::awaitable<void> {
          auto g = co_await patient.async_acquire(19s, asio::use_awaitable);
          got = g.owns_lock();
          got_at = clock::now();
          fence = g.fence();
          co_await g.async_release(asio::use_awaitable);
        },
        asio::detached);
    co_await sleep_for(200ms);  // the waiter tried once and waits
    CHECK_FALSE(got);
    const auto released_at = clock::now();
    const error_code rec = co_await release(held);
    CHECK_FALSE(rec);
    for (int i = 0; i < 1500 && !got; ++i)
      co_await sleep_for(10ms);
    REQUIRE(got);
    CHECK(got_at - released_at < 4s);
    CHECK(fence > held.fence());
  });
}

TEST_CASE("lock: on a single connection, waiters use timers, and a release wakes them", "[lock]") {
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.pool_size = 0;  // no dedicated connections: no BLPOP
  with_handle(cfg, [](handle& h) -> asio::awaitable<void> {
    rr::lock_options o;
    o.lease = 20s;
    o.retry_min = 10s;  // the next retry is 5 to 10 s away
    o.retry_max = 10s;
    rr::lock l(h, "single", o);
    auto held = co_await l.async_acquire(asio::use_awaitable);
    REQUIRE(held);
    bool got = false;
    clock::time_point got_at;
    rr::lock same = l;  // a copy shares the waiters
    asio::co_spawn(
        h.get_executor(),
        [&]() -> asio::awaitable<void> {
          auto g = co_await same.async_acquire(19s, asio::use_awaitable);
          got = g.owns_lock();
          got_at = clock::now();
          co_await g.async_release(asio::use_awaitable);
        },
        asio::detached);
    co_await sleep_for(200ms);
    CHECK_FALSE(got);
    const auto released_at = clock::now();
    const error_code rec = co_await release(held);
    CHECK_FALSE(rec);
    for (int i = 0; i < 1500 && !got; ++i)
      co_await sleep_for(10ms);
    REQUIRE(got);
    CHECK(got_at - released_at < 4s);  // woken, not retried
  });
}

TEST_CASE("lock: the watchdog keeps a lock held across 3 times its lease", "[lock]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    // A lease of 1 s, extended every 333 ms: only a stall of 2/3 s would lose it.
    rr::lock_options o;
    o.lease = 1s;
    o.watchdog = true;
    rr::lock l(h, "watched", o);
    rr::lock other(h, "watched", o);
    auto g = co_await l.async_acquire(asio::use_awaitable);
    REQUIRE(g);
    const auto until = clock::now() + 3 * o.lease + 300ms;
    int tries = 0;
    while (clock::now() < until) {
      auto theirs = co_await other.async_try_acquire(asio::use_awaitable);
      CHECK_FALSE(theirs);
      ++tries;
      co_await sleep_for(100ms);
    }
    CHECK(tries > 3);
    CHECK(g.owns_lock());
    auto v = co_await get(h, l.key());
    CHECK(v == g.token());
    const error_code rec = co_await release(g);
    CHECK_FALSE(rec);
  });
}

TEST_CASE("lock: the watchdog tells the holder at once when the lock was lost", "[lock]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    rr::lock_options o;
    o.lease = 600ms;
    o.watchdog = true;
    rr::lock l(h, "stolen", o);
    auto g = co_await l.async_acquire(asio::use_awaitable);
    REQUIRE(g);
    bool called = false;
    g.on_lost([&](error_code ec) { called = ec == rr::error::lock_lost; });
    // Someone else's token replaces ours (an operator, or a lease that ran out while we hung).
    co_await h.async_exec(cmd::set(l.key(), "intruder"), asio::use_awaitable);
    auto [ec] = co_await g.async_wait_lost(asio::as_tuple(asio::use_awaitable));
    CHECK(ec == rr::error::lock_lost);
    CHECK(called);
    CHECK(g.lost());
    CHECK_FALSE(g.owns_lock());
    // A lost lock is not released: the intruder keeps it.
    const error_code rec = co_await release(g);
    CHECK(rec == rr::error::lock_not_held);
    auto v = co_await get(h, l.key());
    CHECK(v == std::string("intruder"));
  });
}

TEST_CASE("lock: 3 processes x 20 coroutines keep a plain counter exact (single server)",
          "[lock][process]") {
  redis_server server;
  count_in_three_processes(url_of(server), local_config(server.port()));
}

TEST_CASE("lock: 3 processes x 20 coroutines keep a plain counter exact (cluster)",
          "[lock][process]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  count_in_three_processes(url_of(cluster), config_for(cluster));
}

TEST_CASE("lock: a holder SIGSTOPped past its lease loses the lock, its late release fails",
          "[lock][process]") {
  redis_server server;
  stopped_holder(url_of(server), local_config(server.port()));
}

TEST_CASE("lock: a holder SIGSTOPped past its lease loses the lock (cluster)", "[lock][process]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  stopped_holder(url_of(cluster), config_for(cluster));
}

TEST_CASE("leader election: one leader at a time, terms numbered, a resignation hands over",
          "[leader]") {
  on_both([](handle& h) -> asio::awaitable<void> {
    rr::leader_options o;
    o.lease = 2s;
    rr::leader_election a(h, "scheduler", o);
    rr::leader_election b(h, "scheduler", o);
    auto term1 = co_await a.async_campaign(asio::use_awaitable);
    REQUIRE(term1);

    bool b_leads = false;
    std::int64_t b_fence = 0;
    int b_lost = 0;
    asio::cancellation_signal stop_b;
    bool b_done = false;
    asio::co_spawn(
        h.get_executor(),
        b.async_run([&](std::int64_t fence) { b_leads = true, b_fence = fence; },
                    [&](error_code) { b_leads = false, ++b_lost; }, asio::use_awaitable),
        asio::bind_cancellation_slot(stop_b.slot(), [&](std::exception_ptr) { b_done = true; }));
    // b is a follower while a leads (and a's watchdog keeps it leading past its lease).
    co_await sleep_for(2500ms);
    CHECK_FALSE(b_leads);
    CHECK(term1.owns_lock());
    // a resigns: b takes over, in a later term.
    const error_code rec = co_await release(term1);
    CHECK_FALSE(rec);
    for (int i = 0; i < 500 && !b_leads; ++i)
      co_await sleep_for(10ms);
    REQUIRE(b_leads);
    CHECK(b_fence > term1.fence());
    // a campaigns again and waits; b is stopped: it resigns, and a leads again.
    bool a_again = false;
    std::int64_t a_fence = 0;
    asio::co_spawn(
        h.get_executor(),
        [&]() -> asio::awaitable<void> {
          auto term = co_await a.async_campaign(asio::use_awaitable);
          a_again = term.owns_lock();
          a_fence = term.fence();
          co_await term.async_release(asio::use_awaitable);
        },
        asio::detached);
    co_await sleep_for(200ms);
    CHECK_FALSE(a_again);
    stop_b.emit(asio::cancellation_type::terminal);
    for (int i = 0; i < 500 && !(a_again && b_done); ++i)
      co_await sleep_for(10ms);
    CHECK(b_done);
    CHECK(b_lost == 1);
    REQUIRE(a_again);
    CHECK(a_fence > b_fence);
  });
}
