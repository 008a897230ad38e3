// The handle over every deployment: one small service runs unchanged on a single
// connection, a pooled client and a cluster, and gives the same results; what cannot work
// the same is refused with a reason; failures end every request.
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/redirect_error.hpp>

#include <array>
#include <map>
#include <set>

using namespace redcoro;
using namespace redcoro::test;
using redcoro::test::redis_sentinel;
using namespace std::chrono_literals;
using asio::use_awaitable;

namespace {

// Runs `body` with a handle made from `cfg`, without waiting for it to answer: some tests
// look at a handle that is not ready yet.
void with_handle_as_is(handle_config cfg, const std::function<asio::awaitable<void>(handle&)>& body,
                       std::chrono::seconds limit = 60s) {
  with_handle(std::move(cfg), body, limit, false);
}

// What the service observed, compared between deployments value by value.
using observations = std::map<std::string, std::string>;

const script lock_script(
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 else return 0 "
    "end");
const script unlock_script(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return "
    "0 end");

command<std::int64_t> lock(std::string_view key, std::string_view token) {
  const std::array<std::string_view, 2> a{token, "5000"};
  return lock_script.call<std::int64_t>(key, a);
}
command<std::int64_t> unlock(std::string_view key, std::string_view token) {
  return unlock_script.call<std::int64_t>(key, token);
}

// A small service: a JSON value with a TTL, a hash counter, a Lua lock, SCAN-based
// invalidation under the key prefix, a health check.
asio::awaitable<observations> service(handle& redis) {
  observations seen;
  auto ready = co_await redis.async_wait_ready(10s, use_awaitable);
  seen["ready"] = ready ? "yes" : "no";

  const std::string json = R"({"id":42,"name":"Ada"})";
  auto set = co_await redis.async_exec(cmd::set("user:42", json, {.ttl = 60s}), use_awaitable);
  seen["set"] = set.value().value_or("null");
  auto got = co_await redis.async_exec(cmd::get("user:42"), use_awaitable);
  seen["get"] = got.value().value_or("null");
  auto ttl = co_await redis.async_exec(cmd::pttl("user:42"), use_awaitable);
  seen["ttl in range"] = ttl.value() > 0 && ttl.value() <= 60000 ? "yes" : "no";

  for (int i = 0; i < 5; ++i)
    co_await redis.async_exec(cmd::hincrby("visits", "home", 2), use_awaitable);
  auto visits = co_await redis.async_exec(cmd::hincrby("visits", "home", 0), use_awaitable);
  seen["visits"] = std::to_string(visits.value());

  auto locked = co_await redis.async_exec(lock("lock:a", "t1"), use_awaitable);
  auto again = co_await redis.async_exec(lock("lock:a", "t2"), use_awaitable);
  auto wrong = co_await redis.async_exec(unlock("lock:a", "t2"), use_awaitable);
  auto released = co_await redis.async_exec(unlock("lock:a", "t1"), use_awaitable);
  seen["lock"] = std::to_string(locked.value()) + std::to_string(again.value()) +
                 std::to_string(wrong.value()) + std::to_string(released.value());

  // Invalidate every product:* key by pattern: the keys come back as the service names them
  // (without the prefix), so deleting them deletes them.
  for (int i = 0; i < 40; ++i)
    co_await redis.async_exec(cmd::set("product:" + std::to_string(i), "x"), use_awaitable);
  std::set<std::string> found;
  scan_cursor scan(cmd::scan_options{.match = "product:*", .count = 7, .type = {}});
  std::int64_t deleted = 0;
  for (int pages = 0; !scan.done() && pages < 1000; ++pages) {
    auto keys = co_await redis.async_scan(scan, use_awaitable);
    for (auto& k : keys) {
      found.insert(k);
      auto d = co_await redis.async_exec(cmd::del(k), use_awaitable);
      deleted += d.value();
    }
  }
  seen["scanned"] = std::to_string(found.size());
  seen["deleted"] = std::to_string(deleted);
  scan_cursor after(cmd::scan_options{.match = "product:*", .count = 100, .type = {}});
  std::size_t left = 0;
  for (int pages = 0; !after.done() && pages < 1000; ++pages)
    left += (co_await redis.async_scan(after, use_awaitable)).size();
  seen["left"] = std::to_string(left);

  auto report = co_await redis.async_health(use_awaitable);
  seen["healthy"] = report.healthy ? "yes" : report.reason;
  seen["role"] = report.role;
  seen["version known"] = report.server_version.empty() ? "no" : "yes";
  co_return seen;
}

const observations expected = {
    {"ready", "yes"},        {"set", "OK"},      {"get", R"({"id":42,"name":"Ada"})"},
    {"ttl in range", "yes"}, {"visits", "10"},   {"lock", "1001"},
    {"scanned", "40"},       {"deleted", "40"},  {"left", "0"},
    {"healthy", "yes"},      {"role", "master"}, {"version known", "yes"}};

void check(const observations& seen) {
  for (const auto& [what, value] : expected) {
    INFO(what);
    auto it = seen.find(what);
    REQUIRE(it != seen.end());
    CHECK(it->second == value);
  }
}

}  // namespace

TEST_CASE(
    "handle: the same service gives the same results on a single connection, a pooled "
    "client and a cluster",
    "[handle]") {
  redis_server server;
  observations single, pooled, clustered;

  auto cfg = local_config(server.port());
  cfg.key_prefix = "svc:";
  cfg.pool_size = 0;
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    CHECK(h.kind() == deployment::single);
    single = co_await service(h);
  });
  server.cli({"FLUSHALL"});
  cfg.pool_size = 2;
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    CHECK(h.kind() == deployment::pooled);
    pooled = co_await service(h);
  });
  // What the prefix did on the server: every key the service made is under it.
  const std::string keys = server.cli({"KEYS", "*"});
  CHECK(keys.find("svc:visits") != std::string::npos);
  CHECK(keys.find("svc:user:42") != std::string::npos);

  redis_cluster cluster(3, 1);
  REQUIRE(cluster.wait_healthy());
  auto ccfg = config_for(cluster);
  ccfg.node.key_prefix = "svc:";
  with_handle_as_is(ccfg, [&](handle& h) -> asio::awaitable<void> {
    CHECK(h.kind() == deployment::cluster);
    clustered = co_await service(h);
  });

  check(single);
  check(pooled);
  check(clustered);
}

TEST_CASE("handle: a URL makes the engine it names", "[handle]") {
  redis_server server;
  asio::io_context ioc;
  const std::string url = "redis://127.0.0.1:" + std::to_string(server.port()) + "/3";
  handle h(ioc, url);
  CHECK(h.kind() == deployment::pooled);
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    co_await h.async_exec(cmd::set("in-three", "yes"), use_awaitable);
    h.close();
  });
  CHECK(server.cli({"-n", "3", "GET", "in-three"}).find("yes") != std::string::npos);

  // Malformed: the URL's own error, naming the part.
  CHECK_THROWS_AS(handle(ioc, "redis://127.0.0.1:notaport"), bad_url);
}

std::vector<std::string> two(std::string a, std::string b) {
  return {std::move(a), std::move(b)};
}

TEST_CASE("handle: what a cluster cannot do is refused, not done wrongly", "[handle]") {
  asio::io_context ioc;
  cluster_config cfg;
  cfg.seeds.push_back({"127.0.0.1", free_port()});
  cfg.node.database = 2;
  try {
    handle h(ioc, cfg);
    FAIL("a cluster handle with database 2 was made");
  } catch (const std::system_error& e) {
    CHECK(e.code() == error::invalid_config);
    CHECK(std::string(e.what()).find("database") != std::string::npos);
  }

  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  with_handle_as_is(config_for(cluster), [&](handle& h) -> asio::awaitable<void> {
    // SCAN through async_exec would walk one node only: an error reply that says what to use.
    auto page = co_await h.async_exec(cmd::scan(0), use_awaitable);
    REQUIRE(page.has_error());
    CHECK(page.error().message.find("async_scan") != std::string::npos);

    // A WATCH over keys of different slots has no one node to run on.
    error_code ec;
    co_await h.async_optimistic(
        two("a", "b"),
        [](connection&) -> asio::awaitable<transaction<std::int64_t>> {
          co_return transaction(cmd::incr("a"));
        },
        asio::redirect_error(use_awaitable, ec));
    CHECK(ec == error::cross_slot);

    // With keys of one slot it runs on the owner.
    auto tx = co_await h.async_optimistic(
        two("{acct}:a", "{acct}:b"),
        [](connection& c) -> asio::awaitable<transaction<std::int64_t, std::int64_t>> {
          auto a = co_await c.async_exec(cmd::get("{acct}:a"), use_awaitable);
          const std::int64_t base = a.value() ? std::stoll(*a.value()) : 0;
          co_return transaction(cmd::incr("{acct}:a"), cmd::incrby("{acct}:b", base + 10));
        },
        use_awaitable);
    REQUIRE(tx.has_value());
    REQUIRE(tx.value().has_value());
    CHECK(std::get<0>(*tx.value()).value() == 1);
    CHECK(std::get<1>(*tx.value()).value() == 10);
  });
}

std::vector<std::string> job_queues() {
  return {"jobs:a", "jobs:b", "jobs:c", "jobs:d"};
}

TEST_CASE("handle: a blocking pop runs on a dedicated connection to the owner of its key",
          "[handle]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  with_handle_as_is(config_for(cluster), [&](handle& h) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    // Several keys, so that they land on different nodes.
    const std::vector<std::string> queues = job_queues();
    std::size_t popped = 0;
    for (const auto& q : queues) {
      asio::co_spawn(
          ex,
          [&, q]() -> asio::awaitable<void> {
            co_await sleep_for(100ms);
            co_await h.async_exec(cmd::rpush(q, {"job"}), use_awaitable);
          },
          asio::detached);
      auto got = co_await h.async_exec_dedicated(cmd::blpop({q}, 5s), use_awaitable);
      REQUIRE(got.value().has_value());
      CHECK(got.value()->first == q);
      ++popped;
      // The shared connections kept serving while it blocked.
      auto n = co_await h.async_exec(cmd::incr("counter"), use_awaitable);
      CHECK(n.value() == static_cast<std::int64_t>(popped));
    }
    CHECK(popped == queues.size());
  });

  // A single connection has no dedicated connections to lend.
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.pool_size = 0;
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    error_code ec;
    co_await h.async_exec_dedicated(cmd::blpop({"q"}, 1s), asio::redirect_error(use_awaitable, ec));
    CHECK(ec == error::unsupported);
  });
}

TEST_CASE("handle: per-operation cancellation reaches the engine", "[handle]") {
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.pool_size = 0;
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    // Held by a paused server, then cancelled: it completes with operation_aborted, and the
    // handle serves the next request once the server is back.
    server.pause();
    asio::cancellation_signal stop;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex, 200ms);
    t.async_wait([&](error_code) { stop.emit(asio::cancellation_type::terminal); });
    error_code ec;
    co_await h.async_exec(cmd::get("k"), asio::bind_cancellation_slot(
                                             stop.slot(), asio::redirect_error(use_awaitable, ec)));
    CHECK(ec == asio::error::operation_aborted);
    server.resume();
    auto v = co_await h.async_exec(cmd::incr("after"), use_awaitable);
    CHECK(v.value() == 1);
  });
}

TEST_CASE("handle: per-operation cancellation reaches the cluster", "[handle][cluster]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  // The node that serves "k" is frozen, the request to it cancelled: operation_aborted, and
  // the handle serves the key again once the node is back.
  auto& owner = cluster.server_on(cluster.owner_of(proto::key_slot("k")));
  with_handle_as_is(config_for(cluster), [&](handle& h) -> asio::awaitable<void> {
    auto warm = co_await h.async_exec(cmd::set("k", "v"), use_awaitable);
    warm.value();
    owner.pause();
    asio::cancellation_signal stop;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex, 200ms);
    t.async_wait([&](error_code) { stop.emit(asio::cancellation_type::terminal); });
    error_code ec;
    co_await h.async_exec(cmd::get("k"), asio::bind_cancellation_slot(
                                             stop.slot(), asio::redirect_error(use_awaitable, ec)));
    CHECK(ec == asio::error::operation_aborted);
    owner.resume();
    auto v = co_await h.async_exec(cmd::get("k"), use_awaitable);
    CHECK(v.value() == std::optional<std::string>("v"));
  });
}

TEST_CASE(
    "handle: SIGKILL under 20 coroutines ends every request, and it serves again after "
    "the restart",
    "[handle][failure]") {
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 3s;
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    co_await h.async_wait_ready(5s, use_awaitable);
    std::size_t ok = 0, failed = 0, running = 20;
    bool stop = false;
    asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
    for (int w = 0; w < 20; ++w)
      asio::co_spawn(
          ex,
          [&, w]() -> asio::awaitable<void> {
            // The test body sets `stop` while this worker waits in a co_await; clang's
            // -Wfor-loop-analysis cannot see that, so the check is not the loop's condition.
            for (int i = 0;; ++i) {
              if (stop) break;
              error_code ec;
              auto r = co_await h.async_exec(cmd::incr("w" + std::to_string(w)),
                                             asio::redirect_error(use_awaitable, ec));
              (ec || r.has_error() ? failed : ok)++;
              if (ec) co_await sleep_for(20ms);
            }
            if (--running == 0) all_done.cancel();
          },
          asio::detached);
    co_await sleep_for(300ms);
    server.kill();
    co_await sleep_for(500ms);
    // Down: the health report says so, in bounded time.
    auto down = co_await h.async_health(500ms, use_awaitable);
    CHECK_FALSE(down.healthy);
    CHECK_FALSE(down.reason.empty());
    server.restart();
    auto up = co_await h.async_wait_ready(10s, use_awaitable);
    CHECK(up);
    const std::size_t before = ok;
    co_await sleep_for(300ms);
    stop = true;
    error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(use_awaitable, ignored));
    CHECK(running == 0);  // nothing hung
    CHECK(failed > 0);    // the kill was seen
    CHECK(ok > before);   // and it served again
    auto report = co_await h.async_health(use_awaitable);
    CHECK(report.healthy);
  });
}

TEST_CASE("handle: on a cluster with a frozen primary the health check says which node",
          "[handle][failure]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  auto cfg = config_for(cluster);
  with_handle_as_is(cfg, [&](handle& h) -> asio::awaitable<void> {
    auto ok = co_await h.async_health(2s, use_awaitable);
    CHECK(ok.healthy);
    CHECK(ok.cluster_state == "ok");
    CHECK(ok.all_slots_covered);
    CHECK(ok.nodes.size() == 3);
    const std::uint16_t frozen = cluster.owner_of(0);
    cluster.server_on(frozen).pause();
    auto report = co_await h.async_health(500ms, use_awaitable);
    cluster.server_on(frozen).resume();
    CHECK_FALSE(report.healthy);
    CHECK(report.reason.find(std::to_string(frozen)) != std::string::npos);
    std::size_t reachable = 0;
    for (const auto& n : report.nodes)
      reachable += n.reachable;
    CHECK(reachable == 2);
  });
}

TEST_CASE("handle: the last copy going closes the engine after what is in flight is answered",
          "[handle]") {
  redis_server server;
  asio::io_context ioc;
  std::size_t answered = 0, failed = 0;
  {
    handle h(ioc, local_config(server.port()));
    handle copy = h;
    for (int i = 0; i < 50; ++i)
      h.async_exec(cmd::incr("n"), [&](error_code ec, proto::result<std::int64_t> r) {
        (ec || r.has_error() ? failed : answered)++;
      });
  }
  const bool idle = run_until_idle(ioc, 20s);
  CHECK(answered == 50);
  CHECK(failed == 0);
  CHECK(idle);  // the engine closed: nothing is left to run
}

namespace {

std::string sentinel_url(const redis_sentinel& d) {
  std::string url = "redis+sentinel://";
  const auto ports = d.sentinel_ports();
  for (std::size_t i = 0; i < ports.size(); ++i)
    url += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(ports[i]);
  return url + "/" + d.name();
}

}  // namespace

TEST_CASE("handle: the same service on a Sentinel-managed primary, and through its failover",
          "[handle][sentinel][failure]") {
  redis_sentinel d;
  REQUIRE(d.wait_ready(20s));
  auto defaults = local_config(0);
  defaults.key_prefix = "svc:";
  defaults.request_timeout = 5s;
  defaults.connect_timeout = 2s;
  with_handle_as_is(
      make_handle_config(sentinel_url(d), defaults),
      [&](handle& h) -> asio::awaitable<void> {
        CHECK(h.kind() == deployment::sentinel);
        REQUIRE(h.as_sentinel() != nullptr);
        check(co_await service(h));

        // SIGKILL the primary under 20 writers: every request ends, writes land on the promoted
        // replica, and the health report names it.
        auto ex = co_await asio::this_coro::executor;
        const std::uint16_t old = d.agreed_primary();
        std::size_t ok = 0, failed = 0, running = 20;
        bool stop = false;
        asio::steady_timer all_done(ex, std::chrono::steady_clock::time_point::max());
        for (int w = 0; w < 20; ++w)
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                while (!stop) {
                  error_code ec;
                  auto r = co_await h.async_exec(cmd::incr("w" + std::to_string(w)),
                                                 asio::redirect_error(use_awaitable, ec));
                  (ec || r.has_error() ? failed : ok)++;
                  if (ec) co_await sleep_for(20ms);
                }
                if (--running == 0) all_done.cancel();
              },
              asio::detached);
        co_await sleep_for(200ms);
        d.server_on(old).kill();
        const std::uint16_t promoted = d.wait_primary(20000ms, old);
        REQUIRE(promoted != 0);
        // Writes succeed again (bounded: the failover time plus 2 s at most).
        bool served = false;
        for (int i = 0; i < 40 && !served; ++i) {
          error_code ec;
          auto r =
              co_await h.async_exec(cmd::incr("after"), asio::redirect_error(use_awaitable, ec));
          served = !ec && !r.has_error();
          if (!served) co_await sleep_for(100ms);
        }
        CHECK(served);
        stop = true;
        error_code ignored;
        co_await all_done.async_wait(asio::redirect_error(use_awaitable, ignored));
        CHECK(running == 0);  // nothing hung
        CHECK(ok > 0);
        auto report = co_await h.async_health(use_awaitable);
        CHECK(report.healthy);
        CHECK(report.role == "master");
        CHECK(report.address == "127.0.0.1:" + std::to_string(promoted));
      },
      120s);
}

namespace {

// 50 INCRs through the handle, and a dedicated command when the deployment lends connections.
asio::awaitable<void> some_requests(handle& h, bool dedicated) {
  for (int i = 0; i < 50; ++i)
    co_await h.async_exec(cmd::incr("{m}:n" + std::to_string(i % 7)), use_awaitable);
  if (dedicated) co_await h.async_exec_dedicated(cmd::incr("{m}:d"), use_awaitable);
}

std::uint64_t replied(const connection_metrics& m) {
  return m.completed_with(request_outcome::replied);
}

}  // namespace

TEST_CASE("handle: metrics name every connection of the deployment and add up",
          "[handle][metrics]") {
  redis_server server;
  auto single = local_config(server.port());
  single.pool_size = 0;
  with_handle(single, [&](handle& h) -> asio::awaitable<void> {
    const auto before = replied(h.metrics().total());
    co_await some_requests(h, false);
    const deployment_metrics d = h.metrics();
    CHECK(d.kind == deployment::single);
    REQUIRE(d.nodes.size() == 1);
    CHECK(d.nodes[0].node == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(d.nodes[0].role == "shared");
    CHECK(replied(d.total()) == before + 50);
    CHECK(d.total().connects == 1);
  });

  auto pooled = local_config(server.port());
  pooled.pool_size = 2;
  with_handle(pooled, [&](handle& h) -> asio::awaitable<void> {
    const auto before = replied(h.metrics().total());
    co_await some_requests(h, true);
    const deployment_metrics d = h.metrics();
    CHECK(d.kind == deployment::pooled);
    REQUIRE(d.nodes.size() == 2);
    CHECK(d.nodes[1].role == "pool");
    CHECK(d.nodes[1].metrics.requests == 1);
    CHECK(d.pool_open == 1);
    CHECK(d.pool_leased == 0);
    CHECK(d.pool_waiting == 0);
    CHECK(replied(d.total()) == before + 51);
  });

  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  with_handle(config_for(cluster), [&](handle& h) -> asio::awaitable<void> {
    const auto before = h.metrics();
    co_await some_requests(h, false);
    const deployment_metrics d = h.metrics();
    CHECK(d.kind == deployment::cluster);
    CHECK(d.slots_covered == 16384);
    CHECK(d.nodes.size() == 3);
    for (const auto& n : d.nodes)
      CHECK(n.role == "primary");
    // Every key of {m} is on one node: 50 more replied requests there, in all.
    CHECK(replied(d.total()) == replied(before.total()) + 50);
    const auto owner = "127.0.0.1:" + std::to_string(cluster.owner_of(proto::key_slot("{m}")));
    bool found = false;
    for (const auto& n : d.nodes)
      if (n.node == owner) found = n.metrics.by_command.size() >= 1;
    CHECK(found);
  });
}
