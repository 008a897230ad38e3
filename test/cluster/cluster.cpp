// cluster_client against real clusters on loopback: 3 primaries and 3 replicas each time,
// made by redis-cli and stopped at the end of the test, also when it fails.

#include "support/cluster_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

using namespace redcoro;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
using test::run;
using test::sleep_for;

namespace {

using test::config_for;

void with_client(const cluster_config& cfg,
                 const std::function<awaitable<void>(cluster_client&)>& body,
                 std::chrono::seconds limit = 60s) {
  test::with_running<cluster_client>(cfg, body, limit);
}

// The node connection of the primary serving `key`, asked directly.
std::uint16_t owner_port(test::redis_cluster& c, std::string_view key) {
  return c.owner_of(proto::key_slot(key));
}

std::int64_t commandstat_calls(test::redis_server& s, std::string_view command) {
  const std::string info = s.cli({"INFO", "commandstats"});
  const std::string tag = "cmdstat_" + std::string(command) + ":calls=";
  const auto at = info.find(tag);
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + tag.size()));
}

// How many error replies starting with `prefix` (TRYAGAIN, MOVED...) the server has sent.
std::int64_t errorstat_count(test::redis_server& s, std::string_view prefix) {
  const std::string info = s.cli({"INFO", "errorstats"});
  const std::string tag = "errorstat_" + std::string(prefix) + ":count=";
  const auto at = info.find(tag);
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + tag.size()));
}

// Replication is asynchronous: WAIT on each primary's own connection (the one that wrote)
// until a replica has its writes.
awaitable<void> wait_replicated(cluster_client& cl) {
  for (const auto& a : cl.primaries()) {
    const auto acked = co_await run(cl.node(a), command<std::int64_t>("WAIT", 1, 2000));
    CHECK(acked >= 1);
  }
}

// Writers and readers over `keys` until `stop`: every write that was acknowledged is
// remembered, every failure counted by reason.
struct load {
  std::map<std::string, std::string> acked;
  std::map<std::string, int> failures;
  std::size_t ops = 0;
  bool stop = false;
  std::size_t running = 0;

  awaitable<void> worker(cluster_client& cl, int id) {
    ++running;
    for (int n = 0; !stop; ++n) {
      const std::string key = "load:" + std::to_string((id * 7919 + n * 104729) % 5000);
      const std::string value = std::to_string(id) + ":" + std::to_string(n);
      error_code ec;
      auto set =
          co_await cl.async_exec(cmd::set(key, value), asio::redirect_error(use_awaitable, ec));
      ++ops;
      if (ec) {
        ++failures[ec.message()];
      } else if (set.has_error()) {
        ++failures[set.error().message];
      } else {
        acked[key] = value;
        auto got = co_await cl.async_exec(cmd::get(key), asio::redirect_error(use_awaitable, ec));
        if (ec)
          ++failures[ec.message()];
        else if (got.has_error())
          ++failures[got.error().message];
        else if (!got.value() || *got.value() != acked[key])
          ++failures["read a different value"];
      }
    }
    --running;
  }

  // Once the client knows the topology: `workers` coroutines, given 300 ms to get going.
  awaitable<void> start(cluster_client& cl, int workers) {
    co_await run(cl, cmd::get("warm"));
    for (int i = 0; i < workers; ++i)
      asio::co_spawn(co_await asio::this_coro::executor, worker(cl, i), asio::detached);
    co_await sleep_for(300ms);
  }

  awaitable<void> finish() {
    stop = true;
    while (running > 0)
      co_await sleep_for(10ms);
  }

  // Every acknowledged write reads back.
  awaitable<std::size_t> verify(cluster_client& cl) {
    std::size_t wrong = 0;
    for (const auto& [k, v] : acked) {
      auto got = co_await run(cl, cmd::get(k));
      if (!got || *got != v) ++wrong;
    }
    co_return wrong;
  }
};

std::string describe(const std::map<std::string, int>& failures) {
  std::string out;
  for (const auto& [why, n] : failures)
    out += why + " x" + std::to_string(n) + "; ";
  return out;
}

}  // namespace

TEST_CASE("cluster: every key goes to the node serving its slot, hash tags included") {
  test::redis_cluster c;
  with_client(config_for(c), [&](cluster_client& cl) -> awaitable<void> {
    std::vector<std::string> keys;
    for (int i = 0; i < 100; ++i) {
      keys.push_back("key:" + std::to_string(i));
      keys.push_back("{tag" + std::to_string(i % 7) + "}:" + std::to_string(i));
    }
    keys.push_back("{}empty-tag");
    keys.push_back("a{b}c{d}");
    co_await run(cl, cmd::get("warm"));  // the cluster_topology is known after the first reply
    for (const auto& k : keys) {
      const std::int64_t server_slot = co_await test::run(
          cl.node(cl.primaries()[0]), command<std::int64_t>("CLUSTER", "KEYSLOT", k));
      CHECK(server_slot == proto::key_slot(k));
      co_await run(cl, cmd::set(k, "v:" + k));
    }
    // Every write went straight to its owner: no redirection was needed.
    CHECK(cl.stats().moved == 0);
    CHECK(cl.stats().ask == 0);
    // And each key is on the node that serves its slot.
    for (const auto& k : keys) {
      connection& owner = cl.node({"127.0.0.1", owner_port(c, k)});
      auto v = co_await test::run(owner, cmd::get(k));
      CHECK(v == "v:" + k);
    }
  });
}

TEST_CASE("cluster: cross-slot pipelines and multi-key commands, value by value") {
  test::redis_cluster c;
  with_client(config_for(c), [&](cluster_client& cl) -> awaitable<void> {
    // A pipeline over 40 keys on every node, in the caller's order.
    proto::request req;
    for (int i = 0; i < 40; ++i)
      req.push("SET", "p:" + std::to_string(i), i);
    for (int i = 0; i < 40; ++i)
      req.push("GET", "p:" + std::to_string(i));
    req.push("INCR", "p:0");
    proto::generic_response resp;
    auto ec = co_await [&]() -> awaitable<error_code> {
      error_code e;
      co_await cl.async_exec(req, resp, asio::redirect_error(use_awaitable, e));
      co_return e;
    }();
    REQUIRE_FALSE(ec);
    REQUIRE(resp.size() == 81);
    for (int i = 0; i < 40; ++i) {
      CHECK(resp[i].value().text == "OK");
      CHECK(resp[40 + i].value().text == std::to_string(i));
    }
    CHECK(resp[80].value().to_integer() == 1);
    CHECK(cl.stats().split > 0);

    // MSET / MGET / EXISTS / DEL across slots, split per slot and merged.
    std::vector<std::string> pairs, keys;
    for (int i = 0; i < 30; ++i) {
      keys.push_back("m:" + std::to_string(i));
      pairs.push_back(keys.back());
      pairs.push_back("value" + std::to_string(i));
    }
    const auto got1 = co_await run(cl, cmd::mset(pairs));
    CHECK(got1 == "OK");
    std::vector<std::string> asked = keys;
    asked.insert(asked.begin() + 5, "m:missing");
    const auto values = co_await run(cl, cmd::mget(asked));
    REQUIRE(values.size() == 31);
    for (std::size_t i = 0, k = 0; i < values.size(); ++i) {
      if (i == 5) {
        CHECK_FALSE(values[i]);
        continue;
      }
      CHECK(values[i] == "value" + std::to_string(k++));
    }
    const auto got2 = co_await run(cl, cmd::exists(asked));
    CHECK(got2 == 30);
    const auto got3 = co_await run(cl, cmd::dbsize());
    CHECK(got3 == 40 + 30);
    const auto all = co_await run(cl, cmd::keys("m:*"));
    CHECK(all.size() == 30);
    const auto got4 = co_await run(cl, cmd::del(asked));
    CHECK(got4 == 30);
    const auto got5 = co_await run(cl, cmd::dbsize());
    CHECK(got5 == 40);

    // What must stay in one slot is refused before anything is sent.
    auto msetnx =
        co_await cl.async_exec(command<std::int64_t>("MSETNX", "a", "1", "b", "2"), use_awaitable);
    REQUIRE(msetnx.has_error());
    CHECK(msetnx.error().message.starts_with("CROSSSLOT"));
    auto tx = co_await cl.async_exec(transaction(cmd::incr("a"), cmd::incr("b")), use_awaitable);
    CHECK(tx.has_error());
    const std::vector<std::string> ab = {"a", "b"};
    const auto got6 = co_await run(cl, cmd::exists(ab));
    CHECK(got6 == 0);
    // With a hash tag, the transaction runs.
    auto tagged =
        co_await cl.async_exec(transaction(cmd::incr("{t}a"), cmd::incr("{t}b")), use_awaitable);
    REQUIRE(tagged.has_value());
    REQUIRE(tagged.value());
    CHECK(std::get<1>(**tagged).value() == 1);

    // SCRIPT LOAD goes to every primary, so EVALSHA works wherever the key lives.
    script s("return redis.call('GET', KEYS[1])");
    const std::string sha = co_await run(cl, s.load());
    CHECK(sha == s.sha1());
    for (int i = 1; i < 10; ++i) {  // (p:0 was incremented)
      auto v = co_await cl.async_exec(
          command<std::optional<std::string>>("EVALSHA", s.sha1(), 1, "p:" + std::to_string(i)),
          use_awaitable);
      INFO((v.has_error() ? v.error().message : v.value().value_or("(nil)")));
      CHECK(v.value() == std::to_string(i));
    }
    // A SCAN of the whole cluster sees each key once.
    cluster_scan scan(cmd::scan_options{.match = "p:*", .count = 7, .type = {}});
    std::multiset<std::string> scanned;
    while (!scan.done()) {
      auto batch = co_await cl.async_scan(scan, use_awaitable);
      scanned.insert(batch.begin(), batch.end());
    }
    CHECK(scanned.size() == 40);
    CHECK(std::set<std::string>(scanned.begin(), scanned.end()).size() == 40);

    const auto got7 = co_await run(cl, command<std::string>("FLUSHALL"));
    CHECK(got7 == "OK");
    const auto got8 = co_await run(cl, cmd::dbsize());
    CHECK(got8 == 0);
  });
}

TEST_CASE("cluster: ASK during a migration driven by hand leaves the map alone") {
  test::redis_cluster c;
  const int slot = proto::key_slot("ask");
  const std::uint16_t source = c.owner_of(slot);
  std::uint16_t target = 0;
  std::string source_id, target_id;
  for (const auto& n : c.nodes()) {
    if (n.port == source) source_id = n.id;
    if (n.primary && n.port != source && !target) {
      target = n.port;
      target_id = n.id;
    }
  }
  with_client(config_for(c), [&](cluster_client& cl) -> awaitable<void> {
    for (int i = 0; i < 10; ++i)
      co_await run(cl, cmd::set("{ask}" + std::to_string(i), i));
    // Half of the keys move to the target, the rest are still on the source.
    c.server_on(target).cli({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", source_id});
    c.server_on(source).cli({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target_id});
    std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0",
                                        "5000",    "KEYS"};
    for (int i = 0; i < 5; ++i)
      migrate.push_back("{ask}" + std::to_string(i));
    CHECK(c.server_on(source).cli(migrate).find("OK") != std::string::npos);

    for (int i = 0; i < 10; ++i) {
      const auto got = co_await run(cl, cmd::get("{ask}" + std::to_string(i)));
      CHECK(got == std::to_string(i));
    }
    // A new key of the slot goes to the target (the source does not have it).
    co_await run(cl, cmd::set("{ask}new", "n"));
    // (The source does not have it: it answers ASK for it.)
    CHECK(c.server_on(source).cli({"GET", "{ask}new"}).find("ASK") != std::string::npos);
    const auto fresh = co_await run(cl, cmd::get("{ask}new"));
    CHECK(fresh == "n");
    CHECK(cl.stats().ask >= 6);
    CHECK(cl.stats().moved == 0);
    // The map still says the source.
    const auto& t = cl.current_topology();
    CHECK(
        t.nodes()[t.shards()[t.shard_of(static_cast<std::uint16_t>(slot))].primary].address.port ==
        source);
  });
}

TEST_CASE("cluster: a redirection loop ends with TOOMANYREDIRECTS naming the last redirect") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.max_redirects = 5;
  const int slot = proto::key_slot("loop");
  const std::uint16_t source = c.owner_of(slot);
  std::string target_id;
  for (const auto& n : c.nodes())
    if (n.primary && n.port != source && target_id.empty()) target_id = n.id;
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    co_await run(cl, cmd::get("other"));  // the cluster_topology is known
    // MIGRATING without IMPORTING on the other side: the source says ASK, the target MOVED.
    c.server_on(source).cli({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target_id});
    auto r = co_await cl.async_exec(cmd::get("{loop}absent"), use_awaitable);
    REQUIRE(r.has_error());
    INFO(r.error().message);
    CHECK(r.error().message.starts_with("TOOMANYREDIRECTS"));
    CHECK((r.error().message.find("MOVED") != std::string::npos ||
           r.error().message.find("ASK") != std::string::npos));
  });
}

TEST_CASE("cluster: resharding 1000 slots under load loses nothing") {
  test::redis_cluster c;
  const auto nodes = c.nodes();
  std::string from, to;
  for (const auto& n : nodes) {
    if (!n.primary) continue;
    if (from.empty())
      from = n.id;
    else if (to.empty())
      to = n.id;
  }
  const auto slots_of = [&](const std::string& id) {
    int n = 0;
    for (const auto& v : c.nodes())
      if (v.id == id)
        for (auto [first, last] : v.slots)
          n += last - first + 1;
    return n;
  };
  const int to_before = slots_of(to);
  load l;
  with_client(
      config_for(c),
      [&](cluster_client& cl) -> awaitable<void> {
        co_await l.start(cl, 20);
        std::string out;
        std::atomic<bool> done = false;
        // (jthread: if the test's bound runs out first, the frame's destruction joins it
        // instead of terminating the test binary.)
        std::jthread reshard([&] {
          out = c.cli({"--cluster", "reshard", "127.0.0.1:" + std::to_string(c.ports()[0]),
                       "--cluster-from", from, "--cluster-to", to, "--cluster-slots", "1000",
                       "--cluster-yes", "--cluster-pipeline", "100"});
          done = true;
        });
        // The client keeps working while the slots move.
        const auto until = std::chrono::steady_clock::now() + 100s;
        while (!done && std::chrono::steady_clock::now() < until)
          co_await sleep_for(20ms);
        REQUIRE(done);
        reshard.join();
        co_await sleep_for(300ms);
        co_await l.finish();
        INFO(out.substr(out.size() > 2000 ? out.size() - 2000 : 0));
        CHECK(c.wait_healthy());
        CHECK(slots_of(to) == to_before + 1000);
        INFO("failures: " << describe(l.failures));
        CHECK(l.failures.empty());
        CHECK(l.ops > 1000);
        CHECK(cl.stats().moved > 0);
        const auto got10 = co_await l.verify(cl);
        CHECK(got10 == 0);
      },
      120s);
}

TEST_CASE("cluster: failover by CLUSTER FAILOVER moves traffic to the new primary") {
  test::redis_cluster c;
  const std::uint16_t old_primary = owner_port(c, "load:0");
  const std::uint16_t promoted = c.replicas_of(old_primary).at(0);
  load l;
  with_client(
      config_for(c),
      [&](cluster_client& cl) -> awaitable<void> {
        co_await l.start(cl, 20);
        CHECK(c.server_on(promoted).cli({"CLUSTER", "FAILOVER"}).find("OK") != std::string::npos);
        // Bounded: the replica takes over within a few seconds.
        for (int i = 0; i < 100 && owner_port(c, "load:0") != promoted; ++i)
          co_await sleep_for(100ms);
        CHECK(owner_port(c, "load:0") == promoted);
        co_await sleep_for(500ms);
        co_await l.finish();
        INFO("failures: " << describe(l.failures));
        CHECK(l.failures.empty());
        const auto got11 = co_await l.verify(cl);
        CHECK(got11 == 0);
        // New writes to the slot land on the promoted node.
        const auto before = commandstat_calls(c.server_on(promoted), "set");
        co_await run(cl, cmd::set("load:0", "after"));
        CHECK(commandstat_calls(c.server_on(promoted), "set") == before + 1);
      },
      90s);
}

TEST_CASE("cluster: SIGKILL of a primary: errors while it is down, then recovery") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.node.request_timeout = 3s;
  const std::uint16_t victim = owner_port(c, "load:0");
  load l;
  with_client(
      cfg,
      [&](cluster_client& cl) -> awaitable<void> {
        co_await l.start(cl, 20);
        c.kill(victim);
        const auto killed_at = std::chrono::steady_clock::now();
        // Recovery: a write to the dead primary's slot succeeds again, within a bound.
        bool recovered = false;
        while (!recovered && std::chrono::steady_clock::now() - killed_at < 30s) {
          error_code ec;
          auto r = co_await cl.async_exec(cmd::set("load:0", "x"),
                                          asio::redirect_error(use_awaitable, ec));
          recovered = !ec && r.has_value();
          if (!recovered) co_await sleep_for(100ms);
        }
        CHECK(recovered);
        const auto ops_at_recovery = l.ops;
        co_await sleep_for(500ms);
        co_await l.finish();
        // Every request completed (the workers are done), the failed window as errors, and
        // traffic flows again afterwards.
        INFO("failures: " << describe(l.failures));
        CHECK(l.ops > ops_at_recovery);
        for (const auto& [why, n] : l.failures)
          CHECK((why.find("connection") != std::string::npos ||
                 why.find("timeout") != std::string::npos ||
                 why.find("timed out") != std::string::npos ||
                 why.find("CLUSTERDOWN") != std::string::npos ||
                 why.find("TOOMANYREDIRECTS") != std::string::npos));
      },
      90s);
}

TEST_CASE(
    "cluster: a frozen primary: writes follow its promoted replica, none acknowledged is "
    "lost") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  // A health interval longer than the freeze: the frozen node's connection is never given up
  // by its own health check, so the cluster layer must notice the failover by itself, and
  // stop the writes in that connection from being acknowledged when the node wakes up.
  cfg.node.request_timeout = 10s;
  cfg.node.health_check_interval = 30s;
  REQUIRE(cfg.refresh_interval > 10s);  // the periodic refresh comes after the wake-up
  const std::uint16_t victim = owner_port(c, "load:0");
  const std::uint16_t heir = c.replicas_of(victim).at(0);
  const int victim_slot = proto::key_slot("load:0");
  // 20 writers, each a key of its own per write: every acknowledged one must read back.
  std::vector<std::string> acked;
  std::map<std::string, int> failures;
  bool stop = false, promoted = false;
  std::size_t running = 0;
  std::optional<std::chrono::steady_clock::time_point> promoted_at, first_write_after;
  with_client(
      cfg,
      [&](cluster_client& cl) -> awaitable<void> {
        co_await run(cl, cmd::get("warm"));
        auto writer = [&](int id) -> awaitable<void> {
          ++running;
          // The test body sets `stop` while this writer waits in a co_await; clang's
          // -Wfor-loop-analysis cannot see that, so the check is not the loop's condition.
          for (int n = 0;; ++n) {
            if (stop) break;
            // Half the writes go to the victim's slot (a hash tag), half anywhere.
            const std::string key = n % 2 == 0
                                        ? "{load:0}:" + std::to_string(id) + ":" + std::to_string(n)
                                        : "w:" + std::to_string(id) + ":" + std::to_string(n);
            error_code ec;
            auto r =
                co_await cl.async_exec(cmd::set(key, "v"), asio::redirect_error(use_awaitable, ec));
            if (ec) {
              ++failures[ec.message()];
              co_await sleep_for(10ms);
            } else if (r.has_error()) {
              ++failures[r.error().message];
              co_await sleep_for(10ms);
            } else {
              acked.push_back(key);
              if (promoted && n % 2 == 0 && !first_write_after)
                first_write_after = std::chrono::steady_clock::now();
            }
          }
          --running;
        };
        for (int i = 0; i < 20; ++i)
          asio::co_spawn(co_await asio::this_coro::executor, writer(i), asio::detached);
        co_await sleep_for(300ms);
        c.server_on(victim).pause();
        const auto frozen_at = std::chrono::steady_clock::now();
        // The cluster promotes the replica after its node timeout (2 s here).
        while (std::chrono::steady_clock::now() - frozen_at < 10s) {
          if (!promoted && owner_port(c, "load:0") == heir) {
            promoted = true;
            promoted_at = std::chrono::steady_clock::now();
          }
          co_await sleep_for(100ms);
        }
        const auto resumed_at = std::chrono::steady_clock::now();
        c.server_on(victim).resume();
        CHECK(c.wait_healthy());
        co_await sleep_for(500ms);
        stop = true;
        while (running > 0)
          co_await sleep_for(10ms);
        INFO("failures: " << describe(failures) << " acked " << acked.size());
        REQUIRE(promoted);
        // Writes reached the promoted replica while the old primary was still frozen: the
        // client followed the failover by itself, not when the frozen node woke up, nor at the
        // periodic refresh (30 s, after the wake-up).
        REQUIRE(first_write_after);
        INFO("first write on the promoted replica "
             << std::chrono::duration_cast<std::chrono::milliseconds>(*first_write_after -
                                                                      *promoted_at)
                    .count()
             << " ms after promotion");
        CHECK(*first_write_after < resumed_at);
        CHECK(c.owner_of(victim_slot) == heir);
        // Nothing acknowledged was lost, though the old primary executed what sat in its
        // socket when it woke and then resynced as a replica.
        std::size_t missing = 0;
        for (const auto& key : acked) {
          auto got = co_await run(cl, cmd::get(key));
          if (!got) ++missing;
        }
        CHECK(missing == 0);
        CHECK(acked.size() > 1000);
      },
      120s);
}

TEST_CASE("cluster: a request held by a frozen node is cancelled, and the client goes on") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.node.request_timeout = 30s;  // only the cancellation can end it
  cfg.node.health_check_interval = 30s;
  const std::uint16_t victim = owner_port(c, "load:0");
  with_client(
      cfg,
      [&](cluster_client& cl) -> awaitable<void> {
        co_await run(cl, cmd::set("load:0", "v"));
        c.server_on(victim).pause();
        // Terminal cancellation of a written GET (the fast path), by a signal.
        asio::cancellation_signal signal;
        error_code ec;
        bool done = false;
        asio::co_spawn(
            co_await asio::this_coro::executor,
            [&]() -> awaitable<void> {
              co_await cl.async_exec(cmd::get("load:0"),
                                     asio::bind_cancellation_slot(
                                         signal.slot(), asio::redirect_error(use_awaitable, ec)));
              done = true;
            },
            asio::detached);
        co_await sleep_for(200ms);
        CHECK_FALSE(done);
        signal.emit(asio::cancellation_type::terminal);
        for (int i = 0; i < 100 && !done; ++i)
          co_await sleep_for(10ms);
        CHECK(done);
        CHECK(ec == asio::error::operation_aborted);
        // A split MGET with one part on the frozen node (the slow path), raced by a timer.
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer t(co_await asio::this_coro::executor, 200ms);
        // (Named before the co_await: GCC 12 mishandles such temporaries inside it.)
        const std::vector<std::string> three{"load:0", "other", "more"}, two{"load:0", "other"};
        auto split = cmd::mget(three);
        auto raced = co_await (cl.async_exec(std::move(split), asio::as_tuple(use_awaitable)) ||
                               t.async_wait(use_awaitable));
        CHECK(raced.index() == 1);
        c.server_on(victim).resume();
        // Usable afterwards, on every shard.
        const std::optional<std::string> v_expected("v"), o_expected("o");
        auto v = co_await run(cl, cmd::get("load:0"));
        CHECK(v == v_expected);
        co_await run(cl, cmd::set("other", "o"));
        auto both = co_await run(cl, cmd::mget(two));
        REQUIRE(both.size() == 2);
        CHECK(both[1] == o_expected);
      },
      60s);
}

TEST_CASE("cluster: reads go to replicas when asked, and only reads") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.reads = read_from::replica;
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    for (int i = 0; i < 50; ++i)
      co_await run(cl, cmd::set("r:" + std::to_string(i), i));
    co_await wait_replicated(cl);
    std::map<std::uint16_t, std::int64_t> gets_before;
    for (std::uint16_t p : c.ports())
      gets_before[p] = commandstat_calls(c.server_on(p), "get");
    for (int round = 0; round < 4; ++round)
      for (int i = 0; i < 50; ++i) {
        auto v = co_await run(cl, cmd::get("r:" + std::to_string(i)));
        CHECK(v == std::to_string(i));
      }
    std::int64_t on_replicas = 0, on_primaries = 0;
    for (const auto& n : c.nodes()) {
      const auto calls = commandstat_calls(c.server_on(n.port), "get") - gets_before[n.port];
      (n.primary ? on_primaries : on_replicas) += calls;
    }
    CHECK(on_replicas == 200);
    CHECK(on_primaries == 0);
    // Writes still go to primaries, straight (no MOVED from a replica).
    auto& owner = c.server_on(owner_port(c, "r:x"));
    const auto sets_before = commandstat_calls(owner, "set");
    const auto moved_before = cl.stats().moved;
    co_await run(cl, cmd::set("r:x", "1"));
    CHECK(commandstat_calls(owner, "set") == sets_before + 1);
    CHECK(cl.stats().moved == moved_before);
  });
}

TEST_CASE("cluster: over RESP2, with reads spread over primaries and replicas") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.node.protocol = 2;
  cfg.reads = read_from::any;
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    std::vector<std::string> pairs, keys;
    for (int i = 0; i < 20; ++i) {
      keys.push_back("two:" + std::to_string(i));
      pairs.push_back(keys.back());
      pairs.push_back(std::to_string(i));
    }
    const auto ok = co_await run(cl, cmd::mset(pairs));
    CHECK(ok == "OK");
    co_await wait_replicated(cl);
    std::map<std::uint16_t, std::int64_t> before;
    for (std::uint16_t p : c.ports())
      before[p] = commandstat_calls(c.server_on(p), "mget");
    for (int round = 0; round < 6; ++round) {
      const auto values = co_await run(cl, cmd::mget(keys));
      REQUIRE(values.size() == 20);
      for (int i = 0; i < 20; ++i)
        CHECK(values[static_cast<std::size_t>(i)] == std::to_string(i));
    }
    // Both roles served some of the reads.
    std::int64_t on_replicas = 0, on_primaries = 0;
    for (const auto& n : c.nodes())
      (n.primary ? on_primaries : on_replicas) +=
          commandstat_calls(c.server_on(n.port), "mget") - before[n.port];
    CHECK(on_replicas > 0);
    CHECK(on_primaries > 0);
  });
}

namespace {

// A slot moved by hand from its owner (`source`) to another primary (`target`), in two
// steps: start() marks it MIGRATING / IMPORTING and moves some keys with MIGRATE, finish()
// moves the rest and gives the slot to the target on every primary.
struct slot_migration {
  test::redis_cluster& c;
  int slot;
  std::string s = std::to_string(slot);
  std::uint16_t source = c.owner_of(slot), target = 0;
  std::string source_id, target_id;
  std::vector<std::uint16_t> primaries;

  slot_migration(test::redis_cluster& cluster, int which) : c(cluster), slot(which) {
    for (const auto& n : c.nodes()) {
      if (!n.primary) continue;
      primaries.push_back(n.port);
      if (n.port == source) source_id = n.id;
      if (n.port != source && !target) {
        target = n.port;
        target_id = n.id;
      }
    }
  }

  bool migrate(const std::vector<std::string>& keys) {
    std::vector<std::string> m = {"MIGRATE", "127.0.0.1", std::to_string(target), "", "0",
                                  "5000",    "KEYS"};
    m.insert(m.end(), keys.begin(), keys.end());
    return c.server_on(source).cli(m).find("OK") != std::string::npos;
  }
  bool start(const std::vector<std::string>& moved_now) {
    c.server_on(target).cli({"CLUSTER", "SETSLOT", s, "IMPORTING", source_id});
    c.server_on(source).cli({"CLUSTER", "SETSLOT", s, "MIGRATING", target_id});
    return migrate(moved_now);
  }
  bool finish(const std::vector<std::string>& the_rest) {
    if (!migrate(the_rest)) return false;
    c.server_on(target).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    for (std::uint16_t p : primaries)
      if (p != target) c.server_on(p).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    return c.owner_of(slot) == target;
  }

  // TRYAGAIN replies the two nodes have sent.
  std::int64_t tryagains() const {
    return errorstat_count(c.server_on(source), "TRYAGAIN") +
           errorstat_count(c.server_on(target), "TRYAGAIN");
  }
};

}  // namespace

// TRYAGAIN: a multi-key command whose slot is half migrated (some of its keys moved to the
// target, some still on the source) is refused with TRYAGAIN (by the source, or by the
// target after ASK, depending on the server's version); the client retries, retry_delay
// doubling, until the migration is over, then follows the MOVED to the target.
TEST_CASE("cluster: TRYAGAIN during a multi-key migration is retried until it completes") {
  test::redis_cluster c;
  slot_migration mig(c, proto::key_slot("{mk}"));
  auto cfg = config_for(c);
  cfg.retry_delay = 20ms;  // 20, 40, 80 ... 1000 ms between retries
  cfg.max_redirects = 16;  // (about 10 s of retries)
  // Three groups of ten keys in the slot: read by MGET, overwritten by MSET, removed by DEL.
  const auto key = [](char group, int i) {
    return "{mk}" + std::string(1, group) + ":" + std::to_string(i);
  };
  std::vector<std::string> reads, dels, pairs, first_half, second_half;
  for (int i = 0; i < 10; ++i) {
    reads.push_back(key('r', i));
    dels.push_back(key('d', i));
    pairs.push_back(key('w', i));
    pairs.push_back("new" + std::to_string(i));
    for (char g : {'r', 'w', 'd'})
      (i < 5 ? first_half : second_half).push_back(key(g, i));
  }
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    for (int i = 0; i < 10; ++i) {
      co_await run(cl, cmd::set(key('r', i), "r" + std::to_string(i)));
      co_await run(cl, cmd::set(key('w', i), "old"));
      co_await run(cl, cmd::set(key('d', i), "d"));
    }
    // Half of each group moves to the target; the other half stays on the source.
    REQUIRE(mig.start(first_half));
    const std::int64_t tryagain_before = mig.tryagains();
    const std::size_t retries_before = cl.stats().retries;

    // The three commands, each in a coroutine of its own.
    std::optional<proto::result<std::vector<std::optional<std::string>>>> got_mget;
    std::optional<proto::result<std::string>> got_mset;
    std::optional<proto::result<std::int64_t>> got_del;
    std::size_t failed = 0;
    const auto ex = co_await asio::this_coro::executor;
    const auto launch = [&](auto command, auto& out) {
      asio::co_spawn(
          ex,
          [&, command]() mutable -> awaitable<void> {
            error_code ec;
            auto r =
                co_await cl.async_exec(std::move(command), asio::redirect_error(use_awaitable, ec));
            if (ec) ++failed;
            out = std::move(r);
          },
          asio::detached);
    };
    launch(cmd::mget(reads), got_mget);
    launch(cmd::mset(pairs), got_mset);
    launch(cmd::del(dels), got_del);
    const auto all_done = [&] { return got_mget && got_mset && got_del; };

    // While the slot is half migrated, the servers refuse them and the client retries: at
    // least six retries in all (bounded: 5 s), each after a TRYAGAIN the servers counted.
    for (int i = 0; i < 500 && cl.stats().retries - retries_before < 6; ++i)
      co_await sleep_for(10ms);
    CHECK(cl.stats().retries - retries_before >= 6);
    CHECK(mig.tryagains() - tryagain_before >= 6);
    CHECK_FALSE(got_mget);
    CHECK_FALSE(got_mset);
    CHECK_FALSE(got_del);

    // The migration ends; each command completes (bounded: 10 s), with the right reply.
    REQUIRE(mig.finish(second_half));
    for (int i = 0; i < 1000 && !all_done(); ++i)
      co_await sleep_for(10ms);
    REQUIRE(all_done());
    CHECK(failed == 0);
    REQUIRE(got_mget->has_value());
    const auto& values = got_mget->value();
    REQUIRE(values.size() == 10);
    for (int i = 0; i < 10; ++i)
      CHECK(values[static_cast<std::size_t>(i)] == "r" + std::to_string(i));
    INFO((got_mset->has_error() ? got_mset->error().message : got_mset->value()));
    CHECK(got_mset->has_value());
    INFO((got_del->has_error() ? got_del->error().message : ""));
    REQUIRE(got_del->has_value());
    CHECK(got_del->value() == 10);
    // What they did is on the target, and nothing of the slot is left on the source.
    for (int i = 0; i < 10; ++i) {
      CHECK(c.server_on(mig.target).cli({"GET", key('w', i)}) == "new" + std::to_string(i) + "\n");
      CHECK(c.server_on(mig.target).cli({"EXISTS", key('d', i)}) == "0\n");
    }
    CHECK(c.server_on(mig.source).cli({"CLUSTER", "COUNTKEYSINSLOT", mig.s}) == "0\n");
    // The retries were counted: each TRYAGAIN but (see the next test) the first of each
    // command. And the map says the target now.
    const std::int64_t tryagain = mig.tryagains() - tryagain_before;
    const std::size_t retries = cl.stats().retries - retries_before;
    INFO("TRYAGAIN sent " << tryagain << ", retries counted " << retries);
    CHECK(retries <= static_cast<std::size_t>(tryagain));
    CHECK(retries + 3 >= static_cast<std::size_t>(tryagain));
    CHECK(cl.stats().moved >= 1);
    const auto& t = cl.current_topology();
    CHECK(t.nodes()[t.shards()[t.shard_of(static_cast<std::uint16_t>(mig.slot))].primary]
              .address.port == mig.target);
  });
}

// A TRYAGAIN (or CLUSTERDOWN, or ASK) that answers a request sent on the fast path is that
// request's first attempt: its redirect_machine waits retry_delay, counts it as a retry and
// against max_redirects, so a command refused with TRYAGAIN until it gives up is sent
// max_redirects + 1 times.
TEST_CASE("cluster: a TRYAGAIN on the fast path counts as a retry, and against max_redirects") {
  test::redis_cluster c;
  slot_migration mig(c, proto::key_slot("{ta}"));
  auto cfg = config_for(c);
  cfg.max_redirects = 3;
  cfg.retry_delay = 5ms;
  std::vector<std::string> keys;
  for (int i = 0; i < 4; ++i)
    keys.push_back("{ta}" + std::to_string(i));
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    for (const auto& k : keys)
      co_await run(cl, cmd::set(k, "v"));
    REQUIRE(mig.start({keys[0], keys[1]}));
    const std::int64_t tryagain_before = mig.tryagains();
    const std::size_t retries_before = cl.stats().retries;
    // The migration never finishes: the MGET is refused until the client gives up, saying
    // why, after max_redirects retries.
    auto r = co_await cl.async_exec(cmd::mget(keys), use_awaitable);
    REQUIRE(r.has_error());
    INFO(r.error().message);
    CHECK(r.error().message.starts_with("TOOMANYREDIRECTS 3"));
    CHECK(r.error().message.find("TRYAGAIN") != std::string::npos);
    // Sent max_redirects + 1 times, each refused; every resend counted as a retry.
    const std::int64_t tryagain = mig.tryagains() - tryagain_before;
    const std::size_t retries = cl.stats().retries - retries_before;
    INFO("TRYAGAIN sent " << tryagain << ", retries counted " << retries);
    CHECK(tryagain == 4);
    CHECK(retries == 3);
    REQUIRE(mig.finish({keys[2], keys[3]}));
  });
}

namespace {

// A cluster read with read_from::prefer_replica: 60 keys over the three shards, and the GET
// and SET calls each node has served (INFO commandstats).
struct replica_reads {
  test::redis_cluster& c;
  std::vector<std::uint16_t> primaries;
  std::vector<std::string> keys;
  std::map<std::uint16_t, std::int64_t> keys_on;  // primary port -> keys it serves

  explicit replica_reads(test::redis_cluster& cluster) : c(cluster) {
    for (const auto& n : c.nodes())
      if (n.primary) primaries.push_back(n.port);
    for (int i = 0; i < 60; ++i) {
      keys.push_back("pr:" + std::to_string(i));
      ++keys_on[owner_port(c, keys.back())];
    }
  }

  std::map<std::uint16_t, std::int64_t> calls(std::string_view command) const {
    std::map<std::uint16_t, std::int64_t> out;
    for (std::uint16_t p : c.ports())
      if (c.server_on(p).running()) out[p] = commandstat_calls(c.server_on(p), command);
    return out;
  }

  // Writes every key, then waits until the client reads from the replicas only: a topology
  // read may catch a replica that Redis 7.0 reports as "loading" (its replication offset, as
  // gossiped, still 0 while its primary's is not), and the client then leaves that replica
  // alone until the next read. So: read the topology again, and read every key, until a
  // round of reads lands on replicas only (at most 50 times). True when it did.
  awaitable<bool> write_and_settle(cluster_client& cl) const {
    for (const auto& k : keys)
      co_await run(cl, cmd::set(k, "v:" + k));
    co_await wait_replicated(cl);
    for (int attempt = 0; attempt < 50; ++attempt) {
      const auto refreshes = cl.stats().refreshes;
      cl.refresh();
      for (int i = 0; i < 100 && cl.stats().refreshes == refreshes; ++i)
        co_await sleep_for(10ms);
      const auto before = calls("get");
      for (const auto& k : keys)
        co_await run(cl, cmd::get(k));
      const auto after = calls("get");
      if (std::all_of(primaries.begin(), primaries.end(),
                      [&](std::uint16_t p) { return after.at(p) == before.at(p); }))
        co_return true;
    }
    co_return false;
  }
};

// Reads `keys` with GET, `rounds` times; what failed, by reason.
awaitable<std::map<std::string, int>> read_all(cluster_client& cl,
                                               const std::vector<std::string>& keys, int rounds) {
  std::map<std::string, int> failures;
  for (int round = 0; round < rounds; ++round)
    for (const auto& k : keys) {
      error_code ec;
      auto v = co_await cl.async_exec(cmd::get(k), asio::redirect_error(use_awaitable, ec));
      if (ec)
        ++failures[ec.message()];
      else if (v.has_error())
        ++failures[v.error().message];
      else if (v.value() != "v:" + k)
        ++failures["read a different value"];
    }
  co_return failures;
}

}  // namespace

// prefer_replica: reads on each shard's replica while it is healthy, writes on the primaries;
// once a replica is killed (and its connection knows), the reads of its shard go to its
// primary, and none of them fails.
TEST_CASE("cluster: prefer_replica reads from replicas, and from the primary once one dies") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.reads = read_from::prefer_replica;
  const replica_reads rr(c);
  REQUIRE(rr.keys_on.size() == 3);  // every shard has some
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    // Writes: each on the primary serving the key, none redirected.
    const auto sets_before = rr.calls("set");
    const bool settled = co_await rr.write_and_settle(cl);
    REQUIRE(settled);
    const auto sets_after = rr.calls("set");
    for (std::uint16_t p : rr.primaries)
      CHECK(sets_after.at(p) - sets_before.at(p) == rr.keys_on.at(p));
    CHECK(cl.stats().moved == 0);

    // Reads: two rounds, on the replicas only, each shard's on its own replica.
    auto gets_before = rr.calls("get");
    const auto failed = co_await read_all(cl, rr.keys, 2);
    INFO("failures: " << describe(failed));
    CHECK(failed.empty());
    auto gets_after = rr.calls("get");
    for (std::uint16_t p : rr.primaries) {
      CHECK(gets_after.at(p) == gets_before.at(p));
      for (std::uint16_t r : c.replicas_of(p))
        CHECK(gets_after.at(r) - gets_before.at(r) == 2 * rr.keys_on.at(p));
    }

    // SIGKILL of the replica of one shard. Once the client's connection to it has seen it
    // go (bounded: 5 s), three rounds of reads.
    const std::uint16_t orphan = rr.primaries[0];
    const std::uint16_t victim = c.replicas_of(orphan).at(0);
    c.kill(victim);
    connection& to_victim = cl.node({"127.0.0.1", victim});
    for (int i = 0; i < 500 && to_victim.is_connected(); ++i)
      co_await sleep_for(10ms);
    REQUIRE_FALSE(to_victim.is_connected());
    gets_before = rr.calls("get");
    const auto failures = co_await read_all(cl, rr.keys, 3);
    INFO("failures: " << describe(failures));
    CHECK(failures.empty());
    // The orphaned shard's reads went to its primary; the other shards' still to replicas.
    gets_after = rr.calls("get");
    CHECK(gets_after.at(orphan) - gets_before.at(orphan) == 3 * rr.keys_on.at(orphan));
    for (std::uint16_t p : rr.primaries) {
      if (p == orphan) continue;
      CHECK(gets_after.at(p) == gets_before.at(p));
      for (std::uint16_t r : c.replicas_of(p))
        CHECK(gets_after.at(r) - gets_before.at(r) == 3 * rr.keys_on.at(p));
    }
  });
}

// A read-only command written to a replica whose process has just died is read from the
// shard's primary instead of failing with connection_lost: a read has no effect to repeat.
// The replica is killed (SIGKILL) before the read is made; the client's connection has not
// read the EOF yet, so the read still goes to the replica first.
TEST_CASE(
    "cluster: prefer_replica: a read sent to a replica that just died is read from the "
    "primary") {
  test::redis_cluster c;
  auto cfg = config_for(c);
  cfg.reads = read_from::prefer_replica;
  const replica_reads rr(c);
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    const bool settled = co_await rr.write_and_settle(cl);
    REQUIRE(settled);
    // The first key's replica dies; at once, its shard's keys are read.
    const std::uint16_t orphan = owner_port(c, rr.keys[0]);
    std::vector<std::string> orphaned;
    for (const auto& k : rr.keys)
      if (owner_port(c, k) == orphan) orphaned.push_back(k);
    const auto gets_before = rr.calls("get");
    c.kill(c.replicas_of(orphan).at(0));
    const auto failures = co_await read_all(cl, orphaned, 1);
    INFO("failures: " << describe(failures));
    CHECK(failures.empty());
    const auto gets_after = rr.calls("get");
    CHECK(gets_after.at(orphan) - gets_before.at(orphan) ==
          static_cast<std::int64_t>(orphaned.size()));
  });
}

TEST_CASE("cluster: a key prefix is stripped once from replies that name keys") {
  test::redis_cluster c(3, 0);
  auto cfg = config_for(c);
  cfg.node.key_prefix = "app:";
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    std::set<std::string> made;
    for (int i = 0; i < 30; ++i) {
      const std::string k = "k" + std::to_string(i);
      co_await run(cl, cmd::set(k, "v"));
      made.insert(k);
    }
    co_await run(cl, cmd::set("app:inner", "v"));  // app:app:inner on the server
    // Routed by the prefixed name: each key is on the node owning that name's slot.
    std::set<std::uint16_t> nodes;
    for (const auto& k : made)
      nodes.insert(owner_port(c, "app:" + k));
    CHECK(nodes.size() == 3);
    const auto direct = c.server_on(owner_port(c, "app:k0")).cli({"GET", "app:k0"});
    CHECK(direct.substr(0, direct.find_last_not_of("\r\n") + 1) == "v");

    // SCAN over every primary: names without the prefix, stripped once.
    cluster_scan scan(cmd::scan_options{.match = "*", .count = 100, .type = {}});
    std::set<std::string> found;
    while (!scan.done()) {
      auto page = co_await cl.async_scan(scan, use_awaitable);
      found.insert(page.begin(), page.end());
    }
    std::set<std::string> want = made;
    want.insert("app:inner");
    CHECK(found == want);
    // KEYS, sent to every primary and merged: the same names.
    const auto listed = co_await run(cl, cmd::keys("*"));
    CHECK(std::set<std::string>(listed.begin(), listed.end()) == want);

    // The key of a blocking pop and the name of a stream, through the node connections.
    co_await run(cl, cmd::rpush("jobs", "j1"));
    const auto popped = co_await run(cl, cmd::blpop("jobs", 1s));
    REQUIRE(popped.has_value());
    CHECK(popped->first == "jobs");
    co_await run(cl, redcoro::command<std::string>("XADD", "events", "1-1", "f", "v"));
    const auto read = co_await run(cl, redcoro::command<std::optional<redcoro::stream_batch>>(
                                           "XREAD", "STREAMS", "events", "0"));
    REQUIRE(read.has_value());
    REQUIRE(read->size() == 1);
    CHECK((*read)[0].first == "events");

    // Names read back delete what they name.
    std::int64_t deleted = 0;
    for (const auto& k : found) {
      auto n = co_await run(cl, cmd::del(k));
      deleted += n;
    }
    CHECK(deleted == static_cast<std::int64_t>(want.size()));
    const auto gone = c.server_on(owner_port(c, "app:k0")).cli({"EXISTS", "app:k0"});
    CHECK(gone.substr(0, gone.find_last_not_of("\r\n") + 1) == "0");
  });
}

TEST_CASE("cluster: node connections replaced by max_lifetime under load, nothing fails") {
  test::redis_cluster c(3, 0);
  auto cfg = config_for(c);
  cfg.node.max_lifetime = 300ms;
  std::int64_t connects_before = 0;
  for (std::uint16_t p : c.ports()) {
    const auto info = c.server_on(p).cli({"INFO", "stats"});
    const auto at = info.find("total_connections_received:");
    connects_before += std::stoll(info.substr(at + 27));
  }
  with_client(cfg, [&](cluster_client& cl) -> awaitable<void> {
    std::int64_t ok = 0, failed = 0, running = 0;
    const auto until = std::chrono::steady_clock::now() + 2s;
    auto ex = co_await asio::this_coro::executor;
    auto worker = [&](int w) -> awaitable<void> {
      const std::string key = "n" + std::to_string(w);
      while (std::chrono::steady_clock::now() < until) {
        error_code ec;
        auto r = co_await cl.async_exec(cmd::incr(key), asio::redirect_error(use_awaitable, ec));
        (ec || r.has_error()) ? ++failed : ++ok;
      }
      --running;
    };
    for (int w = 0; w < 20; ++w) {
      ++running;
      asio::co_spawn(ex, worker(w), asio::detached);
    }
    while (running > 0)
      co_await sleep_for(20ms);
    CHECK(failed == 0);
    std::int64_t total = 0;
    for (int w = 0; w < 20; ++w) {
      const auto v = co_await run(cl, cmd::get("n" + std::to_string(w)));
      total += v ? std::stoll(*v) : 0;
    }
    CHECK(total == ok);  // nothing sent twice
  });
  std::int64_t connects_after = 0;
  for (std::uint16_t p : c.ports()) {
    const auto info = c.server_on(p).cli({"INFO", "stats"});
    const auto at = info.find("total_connections_received:");
    connects_after += std::stoll(info.substr(at + 27));
  }
  CAPTURE(connects_before, connects_after);
  CHECK(connects_after - connects_before >= 3 * 3);  // at least 3 per node
}
