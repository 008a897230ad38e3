// The cache class over a real server and a real cluster: value shapes, values written by
// other clients, undecodable values, single flight, SCAN-scoped keys() and clear(), TTLs,
// and a server killed under load.
#include "cache/helpers.hpp"
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/client/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/describe.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
using redcoro::cache::cache_options;
using redcoro::cache::no_ttl;
namespace rc = redcoro::cache;

namespace cache_test {

enum class tier { free, pro, enterprise };
BOOST_DESCRIBE_ENUM(tier, free, pro, enterprise)

struct place {
  std::string city;
  std::uint16_t zip = 0;
  bool operator==(const place&) const = default;
};
BOOST_DESCRIBE_STRUCT(place, (), (city, zip))

struct profile {
  std::string name;
  std::int64_t id = 0;
  tier plan = tier::free;
  std::optional<std::string> nickname;
  std::vector<std::string> tags;
  std::map<std::string, std::int64_t> limits;
  place home;
  bool operator==(const profile&) const = default;
};
BOOST_DESCRIBE_STRUCT(profile, (), (name, id, plan, nickname, tags, limits, home))

profile ada() {
  profile p;
  p.name = "Ada";
  p.id = 42;
  p.plan = tier::enterprise;
  p.nickname = "countess";
  p.tags.push_back("math");
  p.tags.push_back("engines");
  p.limits["daily"] = 1000;
  p.limits["burst"] = 50;
  p.home = {"London", 1815};
  return p;
}

std::vector<std::string> names(std::initializer_list<const char*> l) {
  std::vector<std::string> out;
  for (const char* s : l)
    out.emplace_back(s);
  return out;
}

std::vector<std::string> foreign_keys() {
  return names({"app1:item:1", "app[1]x:item:1", "item:1", "other:app[1]:item:1"});
}

std::vector<std::string> product_keys() {
  return names({"p:1", "p:2", "missing", "p:3"});
}

asio::awaitable<std::string> raw_get(handle& h, std::string key) {
  auto r = co_await h.async_exec(cmd::get(key), asio::use_awaitable);
  co_return r.value().value_or("(nil)");
}

asio::awaitable<void> round_trips(handle& h) {
  rc::cache c(h, {.prefix = "shapes:", .default_ttl = 60s, .negative_ttl = {}, .scan_count = 500});

  auto s1 = co_await c.set("s", std::string("hello world"));
  REQUIRE(s1);
  auto s2 = co_await c.get<std::string>("s");
  REQUIRE(s2);
  CHECK(s2->value() == "hello world");

  auto i1 = co_await c.set("i", -9007199254740993LL);
  REQUIRE(i1);
  auto i2 = co_await c.get<std::int64_t>("i");
  REQUIRE(i2);
  CHECK(i2->value() == -9007199254740993LL);
  // Stored as text that other clients read: INCR works on it.
  auto as_text = co_await raw_get(h, "shapes:i");
  CHECK(as_text == "-9007199254740993");

  auto d1 = co_await c.set("d", 0.1);
  REQUIRE(d1);
  auto d2 = co_await c.get<double>("d");
  REQUIRE(d2);
  CHECK(d2->value() == 0.1);

  auto literal = co_await c.set("lit", "a literal");
  REQUIRE(literal);
  auto lit = co_await c.get<std::string>("lit");
  CHECK(lit.value().value() == "a literal");

  const profile p = ada();
  auto p1 = co_await c.set("user:42", p);
  REQUIRE(p1);
  auto p2 = co_await c.get<profile>("user:42");
  REQUIRE(p2);
  REQUIRE(p2->has_value());
  CHECK(**p2 == p);
  auto json = co_await raw_get(h, "shapes:user:42");
  CHECK(json.find(R"("plan":"enterprise")") != std::string::npos);

  profile q = p;
  q.nickname.reset();
  q.tags.clear();
  auto q1 = co_await c.set("user:43", q);
  REQUIRE(q1);
  auto q2 = co_await c.get<profile>("user:43");
  CHECK(q2.value().value() == q);

  auto absent = co_await c.get<profile>("nobody");
  REQUIRE(absent);
  CHECK(!absent->has_value());

  // MGET of keys in several slots: one call, values in the order of the keys.
  for (int i = 1; i <= 3; ++i) {
    const std::string k = "p:" + std::to_string(i);
    auto r = co_await c.set(k, i * 10);
    REQUIRE(r);
  }
  const std::vector<std::string> keys = product_keys();
  auto many = co_await c.get_many<int>(keys);
  REQUIRE(many);
  REQUIRE(many->size() == 4);
  CHECK((*many)[0] == std::optional<int>(10));
  CHECK((*many)[1] == std::optional<int>(20));
  CHECK(!(*many)[2]);
  CHECK((*many)[3] == std::optional<int>(30));

  // The same read with a callback: the handler gets the result.
  std::optional<int> called;
  c.async_get<int>("p:2",
                   [&](rc::result<std::optional<int>> r) { called = r.value().value_or(-1); });
  for (int i = 0; i < 200 && !called; ++i)
    co_await sleep_for(5ms);
  CHECK(called == std::optional<int>(20));

  auto e1 = co_await c.exists("s");
  CHECK(e1.value());
  auto del1 = co_await c.del("s");
  CHECK(del1.value());
  auto del2 = co_await c.del("s");
  CHECK(!del2.value());
  auto e2 = co_await c.exists("s");
  CHECK(!e2.value());

  auto added = co_await c.set_if_absent("once", std::string("first"));
  CHECK(added.value());
  auto again = co_await c.set_if_absent("once", std::string("second"));
  CHECK(!again.value());
  auto once = co_await c.get<std::string>("once");
  CHECK(once.value().value() == "first");

  const auto m = c.metrics();
  CHECK(m.sets == 10);
  CHECK(m.deletes == 1);
  CHECK(m.hits >= 9);
  CHECK(m.errors == 0);
}

asio::awaitable<void> foreign_and_malformed(handle& h) {
  rc::cache c(h, {.prefix = "f:", .default_ttl = no_ttl, .negative_ttl = {}, .scan_count = 500});
  // Written by another client (the same bytes redis-cli SET would send).
  auto w = co_await h.async_exec(cmd::set("f:greeting", "hi there"), asio::use_awaitable);
  REQUIRE(w.has_value());
  auto g = co_await c.get<std::string>("greeting");
  CHECK(g.value().value() == "hi there");

  auto bad =
      co_await h.async_exec(cmd::set("f:user:1", R"({"name":"Ann","id":)"), asio::use_awaitable);
  REQUIRE(bad.has_value());
  auto u = co_await c.get<profile>("user:1");
  REQUIRE(u.has_error());
  CHECK(u.error().code == rc::error::invalid_json);
  CHECK(u.error().key == "user:1");
  CHECK(u.error().to_string().find("user:1") != std::string::npos);

  // Well-formed JSON with a member of the wrong type: the error names the member.
  auto wrong = co_await h.async_exec(
      cmd::set("f:user:2", R"({"name":"Ann","id":1,"plan":"gold","tags":[],"limits":{},)"
                           R"("home":{"city":"Oslo","zip":70000}})"),
      asio::use_awaitable);
  REQUIRE(wrong.has_value());
  auto u2 = co_await c.get<profile>("user:2");
  REQUIRE(u2.has_error());
  CHECK(u2.error().key == "user:2");
  CHECK(u2.error().path == "plan");
  CHECK(u2.error().code == rc::error::unknown_enum_name);
  CHECK_THROWS_AS(u2.value(), rc::cache_exception);

  auto n = co_await c.get<int>("greeting");
  REQUIRE(n.has_error());
  CHECK(n.error().code == rc::error::invalid_text);
  CHECK(c.metrics().errors == 3);
}

}  // namespace cache_test

using namespace cache_test;

TEST_CASE("cache: values of every shape round trip on a single server and a cluster", "[cache]") {
  on_both(round_trips);
}

TEST_CASE(
    "cache: values written by other clients read as strings, malformed ones are errors "
    "naming the key and the member",
    "[cache]") {
  on_both(foreign_and_malformed);
  // And through redis-cli itself.
  redis_server server;
  server.cli({"SET", "cli:k", "from the cli"});
  server.cli({"SET", "cli:bad", "{not json"});
  with_handle(local_config(server.port()), [&](handle& h) -> asio::awaitable<void> {
    rc::cache c(h,
                {.prefix = "cli:", .default_ttl = no_ttl, .negative_ttl = {}, .scan_count = 500});
    auto g = co_await c.get<std::string>("k");
    CHECK(g.value().value() == "from the cli");
    auto b = co_await c.get<profile>("bad");
    REQUIRE(b.has_error());
    CHECK(b.error().key == "bad");
  });
}

namespace cache_test {

// 1,000 coroutines miss the same key at once: the loader runs once, every caller gets its
// value; then the value is in Redis, with the TTL given.
asio::awaitable<void> single_flight(handle& h) {
  rc::cache c(h, {.prefix = "sf:", .default_ttl = 60s, .negative_ttl = {}, .scan_count = 500});
  auto ex = co_await asio::this_coro::executor;
  int loads = 0;
  int finished = 0;
  int right = 0;
  auto loader = [&]() -> asio::awaitable<profile> {
    ++loads;
    co_await sleep_for(100ms);  // a slow source: every other caller misses meanwhile
    co_return ada();
  };
  for (int i = 0; i < 1000; ++i)
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          auto r = co_await c.get_or_load<profile>("user:42", loader, 30s);
          if (r && r->has_value() && **r == ada()) ++right;
          ++finished;
        },
        asio::detached);
  for (int i = 0; i < 1000 && finished < 1000; ++i)
    co_await sleep_for(10ms);
  CHECK(finished == 1000);
  CHECK(right == 1000);
  CHECK(loads == 1);
  CHECK(c.metrics().loads == 1);
  auto ttl = co_await c.ttl("user:42");
  REQUIRE(ttl);
  CHECK(ttl->exists);
  REQUIRE(ttl->remaining);
  CHECK(*ttl->remaining <= 30s);
  CHECK(*ttl->remaining > 20s);

  // Now a hit: no load.
  auto hit = co_await c.get_or_load<profile>("user:42", loader);
  CHECK(hit.value().value() == ada());
  CHECK(loads == 1);
}

// A loader that throws: every waiter gets the error, nothing is stored, the next call loads
// again. A "not found" is remembered for negative_ttl.
asio::awaitable<void> failing_and_absent(handle& h) {
  rc::cache c(h, {.prefix = "fl:", .default_ttl = 60s, .negative_ttl = 300ms, .scan_count = 500});
  auto ex = co_await asio::this_coro::executor;
  int loads = 0;
  int failed = 0;
  int finished = 0;
  auto throwing = [&]() -> asio::awaitable<std::string> {
    ++loads;
    co_await sleep_for(50ms);
    throw std::runtime_error("source down");
  };
  for (int i = 0; i < 50; ++i)
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          auto r = co_await c.get_or_load<std::string>("k", throwing);
          if (r.has_error() && r.error().code == rc::error::load_failed &&
              r.error().message == "source down" && r.error().key == "k")
            ++failed;
          ++finished;
        },
        asio::detached);
  for (int i = 0; i < 500 && finished < 50; ++i)
    co_await sleep_for(10ms);
  CHECK(finished == 50);
  CHECK(failed == 50);
  CHECK(loads == 1);
  CHECK(c.metrics().load_errors == 1);
  auto stored = co_await c.exists("k");
  CHECK(!stored.value());

  // Not poisoned: the next call loads again, and this time it works.
  auto ok = co_await c.get_or_load<std::string>("k", [&]() -> asio::awaitable<std::string> {
    ++loads;
    co_return std::string("fresh");
  });
  CHECK(ok.value().value() == "fresh");
  CHECK(loads == 2);

  // Not found, remembered for 300 ms: no second load within it; loaded again after it.
  int lookups = 0;
  auto nothing = [&]() -> asio::awaitable<std::optional<std::string>> {
    ++lookups;
    co_return std::nullopt;
  };
  auto a1 = co_await c.get_or_load<std::string>("gone", nothing);
  REQUIRE(a1);
  CHECK(!a1->has_value());
  auto a2 = co_await c.get_or_load<std::string>("gone", nothing);
  REQUIRE(a2);
  CHECK(!a2->has_value());
  CHECK(lookups == 1);
  // A plain get sees the remembered absence as absent too, not as a value.
  auto plain = co_await c.get<std::string>("gone");
  CHECK(!plain.value().has_value());
  co_await sleep_for(500ms);
  auto a3 = co_await c.get_or_load<std::string>("gone", nothing);
  CHECK(!a3.value().has_value());
  CHECK(lookups == 2);
}

asio::awaitable<void> set_raw(handle& h, std::string key, std::string value) {
  auto r = co_await h.async_exec(cmd::set(key, value), asio::use_awaitable);
  REQUIRE(r.has_value());
}

// keys() and clear() walk every node, and see only the cache's own keys: foreign keys next to
// them (a longer prefix, a glob character in the prefix, no prefix) survive.
asio::awaitable<void> scoped_scan(handle& h) {
  rc::cache c(h, {.prefix = "app[1]:", .default_ttl = 60s, .negative_ttl = {}, .scan_count = 7});
  for (int i = 0; i < 120; ++i) {
    const std::string k = "item:" + std::to_string(i);
    auto r = co_await c.set(k, i);
    REQUIRE(r);
  }
  // Foreign keys: one that "app[1]:*" would match as a glob, one with a longer prefix that a
  // bare "app" would catch, one with no prefix.
  const std::vector<std::string> foreign = foreign_keys();
  for (const auto& k : foreign)
    co_await set_raw(h, k, "foreign");

  auto all = co_await c.keys();
  REQUIRE(all);
  const std::set<std::string> seen(all->begin(), all->end());
  CHECK(seen.size() == 120);
  CHECK(seen.count("item:0") == 1);
  CHECK(seen.count("item:119") == 1);

  auto some = co_await c.keys("item:1?");
  REQUIRE(some);
  CHECK(some->size() == 10);

  auto removed = co_await c.clear();
  REQUIRE(removed);
  CHECK(*removed == 120);
  CHECK(c.metrics().deletes == 120);
  auto left = co_await c.keys();
  CHECK(left.value().empty());
  for (const auto& k : foreign) {
    INFO(k);
    auto v = co_await raw_get(h, k);
    CHECK(v == "foreign");
  }

  // Without a prefix, clear() would remove everything: refused.
  rc::cache bare(h);
  auto refused = co_await bare.clear();
  REQUIRE(refused.has_error());
  CHECK(refused.error().code == rc::error::no_prefix);
}

asio::awaitable<void> ttl_semantics(handle& h) {
  rc::cache c(h, {.prefix = "t:", .default_ttl = 10s, .negative_ttl = {}, .scan_count = 500});
  auto r1 = co_await c.set("default", 1);
  REQUIRE(r1);
  auto t1 = co_await c.ttl("default");
  REQUIRE(t1);
  CHECK(t1->exists);
  REQUIRE(t1->remaining);
  CHECK(*t1->remaining <= 10s);
  CHECK(*t1->remaining > 9s);

  auto r2 = co_await c.set("ms", 2, 1500ms);
  REQUIRE(r2);
  auto t2 = co_await c.ttl("ms");
  REQUIRE(t2->remaining);
  CHECK(*t2->remaining <= 1500ms);
  CHECK(*t2->remaining > 1000ms);

  auto r3 = co_await c.set("forever", 3, no_ttl);
  REQUIRE(r3);
  auto t3 = co_await c.ttl("forever");
  CHECK(t3->exists);
  CHECK(!t3->remaining);

  auto t4 = co_await c.ttl("nothing");
  CHECK(!t4->exists);
  CHECK(!t4->remaining);

  // Sub-millisecond TTLs round up, to 1 ms, not to "no TTL".
  auto r5 = co_await c.set("tiny", 5, std::chrono::microseconds(10));
  REQUIRE(r5);
  // A TTL that is not positive is refused, and nothing is written.
  auto r6 = co_await c.set("zero", 6, 0ms);
  REQUIRE(r6.has_error());
  CHECK(r6.error().code == rc::error::invalid_ttl);
  auto zero = co_await c.exists("zero");
  CHECK(!zero.value());

  // touch: a new TTL, the default one, or none.
  auto k1 = co_await c.touch("forever", 2s);
  CHECK(k1.value());
  auto t7 = co_await c.ttl("forever");
  REQUIRE(t7->remaining);
  CHECK(*t7->remaining <= 2s);
  auto k2 = co_await c.touch("forever");
  CHECK(k2.value());
  auto t8 = co_await c.ttl("forever");
  REQUIRE(t8->remaining);
  CHECK(*t8->remaining > 9s);
  auto k3 = co_await c.touch("forever", no_ttl);
  CHECK(k3.value());
  auto t9 = co_await c.ttl("forever");
  CHECK(!t9->remaining);
  auto k4 = co_await c.touch("nothing", no_ttl);
  CHECK(!k4.value());
  auto k5 = co_await c.touch("nothing", 1s);
  CHECK(!k5.value());

  // Values do expire.
  auto r8 = co_await c.set("short", std::string("x"), 100ms);
  REQUIRE(r8);
  co_await sleep_for(300ms);
  auto gone = co_await c.get<std::string>("short");
  CHECK(!gone.value().has_value());
  auto tiny = co_await c.get<int>("tiny");
  CHECK(!tiny.value().has_value());
}

}  // namespace cache_test

TEST_CASE("cache: get_or_load calls the loader once for 1,000 concurrent misses", "[cache]") {
  on_both(single_flight);
}

TEST_CASE("cache: a failing loader poisons nothing, a not-found is remembered for its own TTL",
          "[cache]") {
  on_both(failing_and_absent);
}

TEST_CASE("cache: keys() and clear() see only the cache's prefix, on every node", "[cache]") {
  on_both(scoped_scan);
}

TEST_CASE("cache: TTLs are the default, per call in milliseconds, or none", "[cache]") {
  on_both(ttl_semantics);
}

TEST_CASE(
    "cache: a server killed under 20 coroutines: every call completes, and it serves "
    "again after a restart",
    "[cache]") {
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.request_timeout = 2s;
  asio::io_context ioc;
  handle h(ioc, cfg);
  rc::cache c(h, {.prefix = "kill:", .default_ttl = 60s, .negative_ttl = {}, .scan_count = 500});
  std::size_t calls = 0;
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::size_t served_after = 0;
  bool restarted = false;
  int workers_done = 0;
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto ready = co_await h.async_wait_ready(10s, asio::use_awaitable);
        REQUIRE(ready);
        for (int w = 0; w < 20; ++w)
          asio::co_spawn(
              ex,
              [&, w]() -> asio::awaitable<void> {
                const std::string key = "w" + std::to_string(w);
                // Until the restart, and then until this worker has been served again.
                for (int i = 0;; ++i) {
                  ++calls;
                  const bool after = restarted;
                  bool ok = false;
                  if (i % 2 == 0) {
                    auto r = co_await c.set(key, i);
                    ok = r.has_value();
                  } else {
                    auto r = co_await c.get<int>(key);
                    ok = r.has_value();
                  }
                  ++completed;
                  if (!ok) {
                    ++failed;
                    co_await sleep_for(20ms);
                  }
                  if (after && ok) {
                    ++served_after;
                    break;
                  }
                }
                ++workers_done;
              },
              asio::detached);
        co_await sleep_for(200ms);
        server.kill();
        co_await sleep_for(1500ms);
        server.restart();
        restarted = true;
        for (int i = 0; i < 1500 && workers_done < 20; ++i)
          co_await sleep_for(10ms);
        h.close();
      },
      60s);
  INFO("calls " << calls << ", completed " << completed << ", failed " << failed);
  CHECK(workers_done == 20);
  CHECK(completed == calls);
  CHECK(failed > 0);  // the kill was seen
  CHECK(served_after == 20);
}

TEST_CASE("cache: get_or_load serves from the loader while Redis is unreachable", "[cache]") {
  auto cfg = local_config(free_port());  // nothing listens there
  cfg.request_timeout = 300ms;
  asio::io_context ioc;
  handle h(ioc, cfg);
  rc::cache c(h, {.prefix = "down:", .default_ttl = 60s, .negative_ttl = {}, .scan_count = 500});
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        int loads = 0;
        auto v = co_await c.get_or_load<std::string>("k", [&]() -> asio::awaitable<std::string> {
          ++loads;
          co_return std::string("from the source");
        });
        CHECK(v.value().value() == "from the source");
        CHECK(loads == 1);
        // A plain get reports the failure instead.
        auto g = co_await c.get<std::string>("k");
        CHECK(g.has_error());
        CHECK(c.metrics().errors >= 2);
        h.close();
      },
      20s);
}

namespace cache_test {

// The near cache: a second get is answered from process memory; a write by another client,
// or by the cache itself, is what the next get sees.
asio::awaitable<void> near_cache_reads(handle& h) {
  cache_options o;
  o.prefix = "near:";
  o.near_cache = redcoro::tracking_cache_config{};
  rc::cache users(h, o);
  cache_options plain;
  plain.prefix = "near:";
  rc::cache other(h, plain);  // no near cache
  // Another client of the same deployment.
  const handle_config same = h.as_cluster()
                                 ? handle_config(h.as_cluster()->get_config())
                                 : handle_config(h.as_client()->next_layer().get_config());
  handle writer(co_await asio::this_coro::executor, same);
  rc::cache from_elsewhere(writer, plain);
  // A round trip on the near cache's connection to the key's node applies what it reported.
  const auto drain = [&]() -> asio::awaitable<void> {
    co_await h.async_exec(cmd::exists("near:ada"), asio::use_awaitable);
  };
  co_await drain();
  REQUIRE(users.near_cache_stats().has_value());
  // On a cluster each node connection asks for tracking on its own (bounded wait).
  for (int i = 0; i < 250 && !users.near_cache_stats()->available; ++i)
    co_await sleep_for(20ms);
  (co_await users.set("ada", ada())).value();
  co_await drain();  // (drain() read the key: the write is reported to it too)
  // A cluster that is still settling may move a slot (or report one moved), which drops
  // what was read: the pair of gets is tried again, a bounded number of times.
  for (int attempt = 0; attempt < 20 && users.near_cache_stats()->hits == 0; ++attempt) {
    auto first = co_await users.get<profile>("ada");
    CHECK(first.value() == ada());
    auto second = co_await users.get<profile>("ada");
    CHECK(second.value() == ada());
    if (users.near_cache_stats()->hits == 0) co_await sleep_for(50ms);
  }
  CHECK(users.near_cache_stats()->hits >= 1);
  CHECK_FALSE(other.near_cache_stats().has_value());

  profile changed = ada();
  changed.name = "Ada L.";
  (co_await from_elsewhere.set("ada", changed)).value();
  co_await drain();
  auto third = co_await users.get<profile>("ada");
  CHECK(third.value() == changed);

  // The cache's own write is what it reads back at once.
  changed.name = "Ada Lovelace";
  (co_await users.set("ada", changed)).value();
  auto fourth = co_await users.get<profile>("ada");
  CHECK(fourth.value() == changed);
  writer.close();
}

}  // namespace cache_test

TEST_CASE("cache: a near cache serves repeated gets locally and sees every write",
          "[cache][tracking]") {
  on_both(near_cache_reads);
}
