// The cache's patterns over real servers: write-through, write-behind (across a SIGKILL and
// restart with an append-only file, and a frozen server at close), invalidation by prefix,
// pattern and tag (100,000 keys on a 3+3 cluster), the cross-process load lock, early
// refresh, and the latency histograms and observer.
#include "cache/helpers.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/cache/write_behind.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace cache_test;
using namespace std::chrono_literals;
namespace rc = redcoro::cache;

namespace {

std::vector<std::string> tags_of(const std::string& a, const std::string& b) {
  std::vector<std::string> out;
  out.push_back(a);
  out.push_back(b);
  return out;
}

std::vector<std::string> one_tag(const std::string& a) {
  std::vector<std::string> out;
  out.push_back(a);
  return out;
}

// Runs `n` calls of `each(i)`, `width` at a time, and waits for them.
asio::awaitable<void> fan_out(std::size_t n, std::size_t width,
                              std::function<asio::awaitable<void>(std::size_t)> each) {
  auto ex = co_await asio::this_coro::executor;
  std::size_t next = 0;
  std::size_t running = width;
  for (std::size_t w = 0; w < width; ++w)
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          while (next < n) {
            const std::size_t i = next++;
            co_await each(i);
          }
          --running;
        },
        asio::detached);
  for (int i = 0; i < 200'000 && running > 0; ++i)
    co_await sleep_for(5ms);
  REQUIRE(running == 0);
}

asio::awaitable<void> write_through_keeps_no_stale_entry(handle& h) {
  rc::cache c(h, {.prefix = "wt:"});
  std::map<std::string, std::string> source;
  auto ok = co_await c.write_through("1", std::string("v1"),
                                     [&](const std::string& v) -> asio::awaitable<void> {
                                       source["1"] = v;
                                       co_return;
                                     });
  CHECK(ok.has_value());
  auto got = co_await c.get<std::string>("1");
  CHECK(got.value() == std::optional<std::string>("v1"));
  CHECK(source["1"] == "v1");

  // The writer fails: the entry is gone (the source may or may not hold v2), never v1 alone.
  auto bad = co_await c.write_through("1", std::string("v2"),
                                      [&](const std::string&) -> asio::awaitable<void> {
                                        throw std::runtime_error("database is down");
                                        co_return;
                                      });
  REQUIRE(bad.has_error());
  CHECK(bad.error().code == rc::error::write_failed);
  CHECK(bad.error().message == "database is down");
  auto after = co_await c.get<std::string>("1");
  CHECK(after.value() == std::nullopt);
  CHECK(source["1"] == "v1");
}

asio::awaitable<void> invalidation_counts(handle& h) {
  rc::cache c(h, {.prefix = "inv:"});
  for (int i = 0; i < 300; ++i) {
    const std::string id = std::to_string(i);
    auto a = co_await c.set("product:" + id, i);
    a.value();
    auto b = co_await c.set("user:" + id, i);
    b.value();
  }
  // Tags: every product in "catalog", the even ones also in "sale".
  for (int i = 0; i < 100; ++i) {
    const std::string id = std::to_string(i);
    const auto tags = i % 2 == 0 ? tags_of("catalog", "sale") : one_tag("catalog");
    auto r = co_await c.set_tagged("tagged:" + id, i, tags);
    r.value();
  }
  // The tag records are the cache's own: keys() does not list them.
  auto listed = co_await c.keys("tagged:*");
  CHECK(listed.value().size() == 100);
  auto all = co_await c.keys();
  CHECK(all.value().size() == 700);

  auto by_prefix = co_await c.invalidate_prefix("product:");
  CHECK(by_prefix.value() == 300);
  auto by_pattern = co_await c.invalidate_matching("user:1*");
  CHECK(by_pattern.value() == 111);  // 1, 10-19, 100-199
  auto sale = co_await c.invalidate_tag("sale");
  CHECK(sale.value() == 50);
  auto again = co_await c.invalidate_tag("sale");
  CHECK(again.value() == 0);
  auto catalog = co_await c.invalidate_tag("catalog");
  CHECK(catalog.value() == 50);  // the odd ones; the even ones went with "sale"
  auto left = co_await c.keys();
  CHECK(left.value().size() == 300 - 111);
  CHECK(c.metrics().invalidated == 300 + 111 + 100);

  auto bad = co_await c.invalidate_tag("a{b}");
  CHECK(bad.error().code == rc::error::invalid_tag);
  auto untagged = co_await c.set_tagged("x", 1, one_tag(""));
  CHECK(untagged.error().code == rc::error::invalid_tag);
  rc::cache bare(h, {});
  auto refused = co_await bare.invalidate_matching("**");
  CHECK(refused.error().code == rc::error::no_prefix);
  auto refused_prefix = co_await bare.invalidate_prefix("");
  CHECK(refused_prefix.error().code == rc::error::no_prefix);
}

asio::awaitable<void> load_lock_one_load(handle& first, handle& second) {
  // Two caches on two handles stand for two processes: no local single flight between them.
  rc::cache_options o{.prefix = "ll:"};
  o.load_lock = rc::cache_options::load_lock_options{.lease = 5s, .wait = 5s};
  rc::cache a(first, o);
  rc::cache b(second, o);
  int loads = 0;
  auto slow = [&]() -> asio::awaitable<std::string> {
    ++loads;
    co_await sleep_for(300ms);
    co_return std::string("loaded");
  };
  int done = 0;
  std::vector<std::string> got;
  auto ex = co_await asio::this_coro::executor;
  for (rc::cache* c : {&a, &b, &a, &b})
    asio::co_spawn(
        ex,
        [&, c]() -> asio::awaitable<void> {
          auto r = co_await c->get_or_load<std::string>("k", slow);
          got.push_back(r.value().value_or("absent"));
          ++done;
        },
        asio::detached);
  for (int i = 0; i < 1000 && done < 4; ++i)
    co_await sleep_for(10ms);
  REQUIRE(done == 4);
  CHECK(loads == 1);
  for (const auto& v : got)
    CHECK(v == "loaded");
  // The lock is gone once the value is stored.
  auto left = co_await a.keys("*");
  CHECK(left.value().size() == 1);
}

}  // namespace

TEST_CASE("cache: write_through writes the source first and leaves no stale entry",
          "[cache][patterns]") {
  on_both(write_through_keeps_no_stale_entry);
}

TEST_CASE("cache: invalidation by prefix, pattern and tag removes exactly what it reports",
          "[cache][patterns]") {
  on_both(invalidation_counts);
}

TEST_CASE("cache: with a load lock, two clients missing one key load it once",
          "[cache][patterns]") {
  redis_server server;
  asio::io_context ioc;
  handle h1(ioc, local_config(server.port()));
  handle h2(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    co_await load_lock_one_load(h1, h2);
    h1.close();
    h2.close();
  });
}

TEST_CASE("cache: early refresh reloads a hot key in the background while serving it",
          "[cache][patterns]") {
  redis_server server;
  asio::io_context ioc;
  handle h(ioc, local_config(server.port()));
  // A β this large makes the refresh certain, so that the test does not depend on chance.
  rc::cache_options o{.prefix = "er:", .default_ttl = 60s};
  o.early_refresh = 1e12;
  rc::cache c(h, o);
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto old = co_await c.set("k", std::string("old"), 60s);
    old.value();
    int loads = 0;
    auto loader = [&loads]() -> asio::awaitable<std::string> {
      ++loads;
      co_return std::string("new");
    };
    auto first = co_await c.get_or_load<std::string>("k", loader);
    CHECK(first.value() == std::optional<std::string>("old"));  // served at once
    std::optional<std::string> now;
    for (int i = 0; i < 200; ++i) {
      auto r = co_await c.get<std::string>("k");
      now = r.value();
      if (now == "new") break;
      co_await sleep_for(10ms);
    }
    CHECK(now == std::optional<std::string>("new"));
    CHECK(loads == 1);
    CHECK(c.metrics().refreshes == 1);
    auto ttl = co_await c.ttl("k");
    CHECK(ttl.value().remaining > 50s);  // stored again with the full TTL
    h.close();
  });
}

TEST_CASE("cache: latency histograms and the observer see every operation", "[cache][patterns]") {
  redis_server server;
  asio::io_context ioc;
  handle h(ioc, local_config(server.port()));
  std::map<rc::cache_event::kind, int> seen;
  std::map<rc::cache_event::outcome, int> outcomes;
  rc::cache_options o{.prefix = "obs:", .record_latency = true};
  o.observer = [&](const rc::cache_event& e) {
    ++seen[e.what];
    ++outcomes[e.result];
    CHECK(e.duration.count() > 0);
  };
  rc::cache c(h, o);
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto s = co_await c.set("a", 1);
    s.value();
    for (int i = 0; i < 10; ++i) {
      auto g = co_await c.get<int>(i % 2 ? "a" : "missing");
      g.value();
    }
    auto l = co_await c.get_or_load<int>("b", []() -> asio::awaitable<int> { co_return 2; });
    l.value();
    auto d = co_await c.del("a");
    d.value();
    auto n = co_await c.invalidate_prefix("b");
    CHECK(n.value() == 1);
    const auto lat = c.latency();
    CHECK(lat.gets.count() == 11);  // 10 gets and get_or_load's lookup
    CHECK(lat.loads.count() == 1);
    CHECK(lat.gets.percentile(50) > 0);
    const auto m = c.metrics();
    CHECK(m.hit_ratio() == Approx(5.0 / 11.0));
    h.close();
  });
  CHECK(seen[rc::cache_event::kind::get] == 11);
  CHECK(seen[rc::cache_event::kind::set] == 2);  // set and the load's store
  CHECK(seen[rc::cache_event::kind::load] == 1);
  CHECK(seen[rc::cache_event::kind::del] == 1);
  CHECK(seen[rc::cache_event::kind::invalidate] == 1);
  CHECK(outcomes[rc::cache_event::outcome::hit] == 5);
  CHECK(outcomes[rc::cache_event::outcome::miss] == 6);
}

TEST_CASE("cache: write_behind writes every accepted write, in batches, and reports refusals",
          "[cache][patterns]") {
  redis_server server;
  asio::io_context ioc;
  handle h(ioc, local_config(server.port()));
  rc::cache c(h, {.prefix = "wb:"});
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    {
      rc::write_behind behind(c, {.capacity = 100, .batch_size = 32, .max_delay = 5ms});
      for (int i = 0; i < 1000; ++i) {
        auto r = co_await behind.set("k" + std::to_string(i), i);
        r.value();
      }
      auto d = co_await behind.del("k0");
      d.value();
      auto failures = co_await behind.flush();
      CHECK(failures.empty());
      auto m = behind.metrics();
      CHECK(m.accepted == 1001);
      CHECK(m.written == 1001);
      CHECK(m.queued == 0);
      auto keys = co_await c.keys();
      CHECK(keys.value().size() == 999);
      auto v = co_await c.get<int>("k999");
      CHECK(v.value() == std::optional<int>(999));

      // Redis refuses writes (out of memory): each is reported, by key.
      server.cli({"CONFIG", "SET", "maxmemory", "1", "maxmemory-policy", "noeviction"});
      for (int i = 0; i < 5; ++i) {
        auto r = co_await behind.set("oom" + std::to_string(i), i);
        r.value();
      }
      auto refused = co_await behind.flush();
      REQUIRE(refused.size() == 5);
      CHECK(refused[0].key == "oom0");
      CHECK(refused[0].error.message.find("OOM") != std::string::npos);
      CHECK(behind.metrics().failed == 5);
      server.cli({"CONFIG", "SET", "maxmemory", "0"});
      auto closed = co_await behind.close(5s);
      CHECK(closed.empty());
      auto late = co_await behind.set("late", 1);
      CHECK(late.error().code == rc::error::not_written);
    }
    {
      // A full queue fails at once with when_full::fail.
      rc::write_behind tight(
          c, {.capacity = 2, .full = rc::write_behind_options::when_full::fail, .max_delay = 10s});
      auto a = co_await tight.set("t1", 1);
      auto b = co_await tight.set("t2", 2);
      auto full = co_await tight.set("t3", 3);
      CHECK(a.has_value());
      CHECK(b.has_value());
      CHECK(full.error().code == rc::error::queue_full);
      auto closed = co_await tight.close(5s);
      CHECK(closed.empty());
    }
    h.close();
  });
}

TEST_CASE(
    "cache: write_behind across a SIGKILL and restart with an append-only file loses no "
    "accepted write",
    "[cache][patterns][failure]") {
  redis_server server(std::vector<std::string>{"--appendonly", "yes", "--appendfsync", "always"});
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 2s;
  handle h(ioc, cfg);
  rc::cache c(h, {.prefix = "wbk:"});
  constexpr int total = 5000;
  std::size_t accepted = 0;
  std::vector<rc::write_failure> failures;
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto ready = co_await h.async_wait_ready(10s, asio::use_awaitable);
        REQUIRE(ready);
        rc::write_behind behind(c, {.capacity = 500, .batch_size = 64, .max_delay = 2ms});
        // The server dies after 1,500 writes were accepted and is back a second later; the
        // writer meanwhile fills the queue and waits for room.
        auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(
            ex,
            [&]() -> asio::awaitable<void> {
              for (int i = 0; i < 6000 && accepted < 1500; ++i)
                co_await sleep_for(5ms);
              server.kill();
              co_await sleep_for(1s);
              server.restart();
            },
            asio::detached);
        for (int i = 0; i < total; ++i) {
          auto r = co_await behind.set("k" + std::to_string(i), i);
          if (r) ++accepted;
        }
        failures = co_await behind.close(30s);
        auto m = behind.metrics();
        INFO("accepted " << accepted << ", written " << m.written << ", retried " << m.retried
                         << ", failed " << m.failed);
        CHECK(m.accepted == accepted);
        CHECK(m.written + m.failed == accepted);
        CHECK(m.retried > 0);  // the kill was seen
        // Every accepted write not reported failed is in Redis, with its value.
        std::set<std::string> reported;
        for (const auto& f : failures)
          reported.insert(f.key);
        std::size_t missing = 0;
        for (int i = 0; i < total; ++i) {
          const std::string key = "k" + std::to_string(i);
          if (reported.count(key)) continue;
          auto v = co_await c.get<int>(key);
          if (v.value() != std::optional<int>(i)) ++missing;
        }
        CHECK(missing == 0);
        h.close();
      },
      120s);
  CHECK(accepted == total);  // the queue waits for room; nothing was refused
  CHECK(failures.empty());   // the server came back within close()'s bound
}

TEST_CASE("cache: write_behind close() on a frozen server reports exactly what was not written",
          "[cache][patterns][failure]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 10s;
  handle h(ioc, cfg);
  rc::cache c(h, {.prefix = "wbf:"});
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    auto ready = co_await h.async_wait_ready(10s, asio::use_awaitable);
    REQUIRE(ready);
    rc::write_behind behind(c, {.batch_size = 50, .max_delay = 1ms});
    for (int i = 0; i < 100; ++i) {
      auto r = co_await behind.set("a" + std::to_string(i), i);
      r.value();
    }
    auto first = co_await behind.flush();
    CHECK(first.empty());
    server.pause();
    for (int i = 0; i < 300; ++i) {
      auto r = co_await behind.set("b" + std::to_string(i), i);
      r.value();
    }
    auto failures = co_await behind.close(500ms);
    server.resume();
    const auto m = behind.metrics();
    CHECK(failures.size() == 300);  // none of them was confirmed
    CHECK(m.written == 100);
    CHECK(m.written + m.failed == m.accepted);
    std::size_t maybe = 0;
    for (const auto& f : failures) {
      CHECK(f.error.code == rc::error::not_written);
      if (f.error.message.find("may have been written") != std::string::npos) ++maybe;
    }
    CHECK(maybe == 50);  // the batch in flight when the bound passed
    h.close();
  });
}

TEST_CASE("cache: 100,000 keys invalidated by prefix and by tag on a 3+3 cluster",
          "[cache][patterns][cluster]") {
  redis_cluster cluster(3, 1);
  REQUIRE(cluster.wait_healthy());
  with_handle(
      config_for(cluster),
      [](handle& h) -> asio::awaitable<void> {
        rc::cache c(h, {.prefix = "big:"});
        constexpr std::size_t n = 100'000;
        co_await fan_out(n, 128, [&](std::size_t i) -> asio::awaitable<void> {
          auto r = co_await c.set("p:" + std::to_string(i), std::string("v"));
          r.value();
        });
        co_await fan_out(n, 128, [&](std::size_t i) -> asio::awaitable<void> {
          auto r = co_await c.set_tagged("t:" + std::to_string(i), std::string("v"),
                                         one_tag(i % 2 ? "odd" : "even"));
          r.value();
        });
        auto by_prefix = co_await c.invalidate_prefix("p:");
        CHECK(by_prefix.value() == static_cast<std::int64_t>(n));
        auto even = co_await c.invalidate_tag("even");
        CHECK(even.value() == static_cast<std::int64_t>(n / 2));
        auto odd = co_await c.invalidate_tag("odd");
        CHECK(odd.value() == static_cast<std::int64_t>(n / 2));
        // Nothing is left: neither values nor the tags' records.
        auto cleared = co_await c.clear();
        CHECK(cleared.value() == 0);
      },
      240s);
}
