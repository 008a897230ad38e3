// Client-side caching against real servers: what is served locally must never be older than
// what the server's invalidations allow, through writes by others, expiry, eviction,
// FLUSHALL, a restart, a frozen server and a failover.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include "support/sentinel_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/client/tracking_cache.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::tracking_cache;
using redcoro::tracking_cache_config;
using redcoro::tracking_mode;
using redcoro::test::eventually;
using redcoro::test::held_get;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace proto = redcoro::proto;
using asio::awaitable;
using asio::use_awaitable;
using maybe = std::optional<std::string>;

namespace {

// GET through the cache; throws on an error.
awaitable<maybe> cached_get(tracking_cache& cache, std::string key) {
  auto r = co_await cache.async_exec(cmd::get(key), use_awaitable);
  co_return std::move(r).value();
}

// GET through the cache; the error instead of throwing.
awaitable<redcoro::error_code> try_cached_get(tracking_cache& cache, std::string key) {
  redcoro::error_code ec;
  auto r = co_await cache.async_exec(cmd::get(key), asio::redirect_error(use_awaitable, ec));
  if (!ec && r.has_error()) ec = redcoro::error::unexpected_reply;
  co_return ec;
}

// One round trip on the cache's connection: every invalidation the server sent before it
// has been applied once it returns.
awaitable<void> drain(tracking_cache& cache) {
  co_await run(cache.next_layer(), redcoro::command<std::string>("PING"));
}

static_assert(redcoro::executes_requests<tracking_cache>);

// Runs `body` with a cache over a connection made from `cfg`, and another connection to the
// same server that writes as another client would: both connected (the cache drained once)
// before it starts, both closed afterwards, also when it failed.
void with_cache(const redcoro::connection_config& cfg, const tracking_cache_config& tc,
                const std::function<awaitable<void>(tracking_cache&, connection&)>& body) {
  asio::io_context ioc;
  connection conn(ioc, cfg);
  connection other(ioc, local_config(cfg.port));
  tracking_cache cache(conn, tc);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    other.async_run(asio::detached);
    std::exception_ptr failure;
    try {
      co_await drain(cache);  // connected: until then reads pass through uncached
      co_await body(cache, other);
    } catch (...) {
      failure = std::current_exception();
    }
    conn.close();
    other.close();
    if (failure) std::rethrow_exception(failure);
  });
}

std::string key_of(int i) {
  std::string k = "k:";
  k += std::to_string(i);
  return k;
}

}  // namespace

TEST_CASE("tracking cache: a second read is served locally, a write anywhere drops it",
          "[client][live][tracking]") {
  redis_server server;
  with_cache(local_config(server.port()), {},
             [&](tracking_cache& cache, connection& other) -> awaitable<void> {
               co_await run(other, cmd::set("a", "1"));

               const auto first = co_await cached_get(cache, "a");
               CHECK(first == "1");
               CHECK(cache.available());
               const auto second = co_await cached_get(cache, "a");
               CHECK(second == "1");
               auto s = cache.stats();
               CHECK(s.misses == 1);
               CHECK(s.hits == 1);
               CHECK(s.entries == 1);
               CHECK(held_get(cache, "a") == maybe("1"));

               // Another client's write: the invalidation arrives before the next round trip's
               // reply.
               co_await run(other, cmd::set("a", "2"));
               co_await drain(cache);
               CHECK_FALSE(held_get(cache, "a").has_value());
               const auto third = co_await cached_get(cache, "a");
               CHECK(third == "2");

               // A write through the cache itself goes to the server and drops the key the same
               // way.
               co_await run(other, cmd::get("a"));  // (not cached: another connection)
               co_await cache.async_exec(cmd::set("a", "3"), use_awaitable);
               const auto fourth = co_await cached_get(cache, "a");
               CHECK(fourth == "3");

               // A missing key is cached as missing, until it is created.
               const auto none = co_await cached_get(cache, "nothing");
               CHECK_FALSE(none.has_value());
               CHECK(held_get(cache, "nothing") == std::optional<maybe>(maybe()));
               co_await run(other, cmd::set("nothing", "now"));
               co_await drain(cache);
               const auto created = co_await cached_get(cache, "nothing");
               CHECK(created == "now");

               // Commands outside the list go through unchanged, and are never kept.
               co_await run(other, cmd::set("n", "5"));
               auto ttl = co_await cache.async_exec(redcoro::command<std::int64_t>("TTL", "n"),
                                                    use_awaitable);
               CHECK(ttl.value() == -1);
               s = cache.stats();
               CHECK(s.uncached >= 2);
               CHECK(s.invalidations >= 3);
             });
}

TEST_CASE("tracking cache: other cacheable commands, several keys, and concurrent misses",
          "[client][live][tracking]") {
  redis_server server;
  with_cache(local_config(server.port()), {},
             [&](tracking_cache& cache, connection& other) -> awaitable<void> {
               co_await run(other, cmd::hset("h", "f", "1"));
               co_await run(other, cmd::hset("h", "g", "2"));
               co_await run(other, cmd::set("x", "1"));
               co_await run(other, cmd::set("y", "2"));

               auto all = co_await cache.async_exec(cmd::hgetall("h"), use_awaitable);
               CHECK(all.value().size() == 2);
               all = co_await cache.async_exec(cmd::hgetall("h"), use_awaitable);
               CHECK(all.value().size() == 2);
               CHECK(cache.stats().hits == 1);

               // MGET belongs to each of its keys: a change to any one drops it.
               const std::vector<std::string> xy{"x", "y"};
               auto both = co_await cache.async_exec(cmd::mget(xy), use_awaitable);
               both = co_await cache.async_exec(cmd::mget(xy), use_awaitable);
               CHECK(cache.stats().hits == 2);
               co_await run(other, cmd::set("y", "3"));
               co_await drain(cache);
               both = co_await cache.async_exec(cmd::mget(xy), use_awaitable);
               CHECK(both.value() == std::vector<maybe>{"1", "3"});
               CHECK(cache.stats().hits == 2);

               // 16 readers miss the same key at once: one request goes to the server.
               co_await run(other, cmd::set("shared", "v"));
               const auto before = cache.stats();
               int answered = 0;
               const auto ex = co_await asio::this_coro::executor;
               for (int i = 0; i < 16; ++i)
                 asio::co_spawn(
                     ex,
                     [&]() -> awaitable<void> {
                       const auto v = co_await cached_get(cache, "shared");
                       if (v == "v") ++answered;
                     },
                     asio::detached);
               const bool all_answered = co_await eventually([&] { return answered == 16; }, 10s);
               CHECK(all_answered);
               const auto after = cache.stats();
               CHECK(after.misses - before.misses == 1);
               CHECK(after.shared_misses - before.shared_misses == 15);
             });
}

TEST_CASE("tracking cache: a key changed while its read is in flight is not kept",
          "[client][tracking]") {
  // The server answers GET, then reports the key changed before PTTL's reply: the value
  // may be older than the change, so it is handed to the reader and not kept.
  redcoro::test::scripted_server server([](std::size_t n) {
    if (n == 0) return std::string("+OK\r\n");  // CLIENT TRACKING ON
    if (n == 2)
      return std::string("$3\r\nold\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n:-1\r\n");
    if (n == 3) return std::string("$3\r\nnew\r\n:-1\r\n");
    return std::string("+PONG\r\n");
  });
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.health_check_interval = 0ms;
  connection conn(ioc, cfg);
  tracking_cache cache(conn);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    co_await drain(cache);  // connected: until then reads pass through
    const auto first = co_await cached_get(cache, "k");
    CHECK(first == "old");
    CHECK_FALSE(held_get(cache, "k").has_value());
    CHECK(cache.stats().not_stored == 1);
    const auto second = co_await cached_get(cache, "k");
    CHECK(second == "new");
    CHECK(held_get(cache, "k") == maybe("new"));
    CHECK(cache.stats().entries == 1);
    conn.close();
  });
}

namespace {

enum class disturbance { none, restart, freeze };

// The staleness test: 4 readers through the cache over 1,000 keys while another
// connection writes random values; then, after one round trip, every locally held value
// equals the server's.
void staleness_under_writes(disturbance what) {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.health_check_interval = 300ms;  // a frozen server is noticed
  cfg.request_timeout = 5s;
  connection conn(ioc, cfg);
  connection writer(ioc, cfg);
  tracking_cache cache(conn);
  constexpr int keys = 1000;
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        conn.async_run(asio::detached);
        writer.async_run(asio::detached);
        bool stop = false;
        int readers_done = 0;
        std::size_t reads = 0, read_errors = 0, writes = 0, write_errors = 0;
        for (int r = 0; r < 4; ++r)
          asio::co_spawn(
              ioc,
              [&, r]() -> awaitable<void> {
                std::minstd_rand rng(static_cast<unsigned>(r + 1));
                while (!stop) {
                  const auto ec =
                      co_await try_cached_get(cache, key_of(static_cast<int>(rng() % keys)));
                  ++reads;
                  if (ec) {
                    ++read_errors;
                    co_await sleep_for(10ms);
                  }
                }
                ++readers_done;
              },
              asio::detached);
        std::minstd_rand rng(42);
        const auto start = std::chrono::steady_clock::now();
        bool disturbed = false;
        while (std::chrono::steady_clock::now() - start < 5s) {
          if (!disturbed && std::chrono::steady_clock::now() - start > 2s) {
            disturbed = true;
            if (what == disturbance::restart) {
              server.kill();
              co_await sleep_for(300ms);
              server.restart();
            } else if (what == disturbance::freeze) {
              server.pause();
              co_await sleep_for(1000ms);
              server.resume();
            }
          }
          redcoro::error_code ec;
          co_await writer.async_exec(
              cmd::set(key_of(static_cast<int>(rng() % keys)), std::to_string(rng())),
              asio::redirect_error(use_awaitable, ec));
          ++writes;
          if (ec) {
            ++write_errors;
            co_await sleep_for(10ms);
          }
        }
        stop = true;
        const bool ended = co_await eventually([&] { return readers_done == 4; }, 20s);
        REQUIRE(ended);  // no reader hung
        co_await drain(cache);

        std::vector<std::string> names;
        for (int i = 0; i < keys; ++i)
          names.push_back(key_of(i));
        const auto truth = co_await run(writer, cmd::mget(names));
        int held_now = 0, stale = 0;
        for (int i = 0; i < keys; ++i)
          if (const auto local = held_get(cache, key_of(i))) {
            ++held_now;
            if (*local != truth[static_cast<std::size_t>(i)]) ++stale;
          }
        const auto s = cache.stats();
        INFO("reads " << reads << " (" << read_errors << " failed), writes " << writes << " ("
                      << write_errors << " failed), hits " << s.hits << ", misses " << s.misses
                      << ", invalidations " << s.invalidations << ", not stored " << s.not_stored
                      << ", flushes " << s.flushes << ", held " << held_now);
        CHECK(stale == 0);
        CHECK(held_now > 0);
        CHECK(s.hits > 0);
        CHECK(s.invalidations > 0);
        if (what == disturbance::none) {
          CHECK(read_errors == 0);
          CHECK(write_errors == 0);
        } else {
          CHECK(s.flushes >= 1);  // the lost session took what it had promised with it
        }
        conn.close();
        writer.close();
      },
      90s);
}

}  // namespace

TEST_CASE("tracking cache: nothing stale after 5 s of writes under 4 readers",
          "[client][live][tracking]") {
  staleness_under_writes(disturbance::none);
}

TEST_CASE("tracking cache: nothing stale across a SIGKILL and restart under load",
          "[client][live][tracking][failure]") {
  staleness_under_writes(disturbance::restart);
}

TEST_CASE("tracking cache: nothing stale across a frozen server (SIGSTOP then SIGCONT)",
          "[client][live][tracking][failure]") {
  staleness_under_writes(disturbance::freeze);
}

TEST_CASE("tracking cache: FLUSHALL, the server's TTL, max_ttl and the byte bound",
          "[client][live][tracking]") {
  redis_server server;
  tracking_cache_config small;
  small.max_ttl = 400ms;
  with_cache(local_config(server.port()), small,
             [&](tracking_cache& cache, connection& other) -> awaitable<void> {
               for (int i = 0; i < 10; ++i)
                 co_await run(other, cmd::set(key_of(i), "v"));
               for (int i = 0; i < 10; ++i)
                 co_await cached_get(cache, key_of(i));
               CHECK(cache.stats().entries == 10);

               // FLUSHALL: the server invalidates everything at once (a null key list).
               co_await run(other, redcoro::command<std::string>("FLUSHALL"));
               co_await drain(cache);
               CHECK(cache.stats().entries == 0);
               CHECK(cache.stats().flushes >= 1);

               // A key that expires on the server in 150 ms is not served locally after that, even
               // if the server's own invalidation were late.
               co_await run(other, cmd::set("short", "v", {.ttl = 150ms}));
               co_await cached_get(cache, "short");
               CHECK(held_get(cache, "short").has_value());
               // One without a TTL is kept at most max_ttl (400 ms).
               co_await run(other, cmd::set("long", "v"));
               co_await cached_get(cache, "long");
               co_await sleep_for(250ms);
               CHECK_FALSE(held_get(cache, "short").has_value());
               CHECK(held_get(cache, "long").has_value());
               co_await sleep_for(250ms);
               CHECK_FALSE(held_get(cache, "long").has_value());
               CHECK(cache.stats().expirations >= 1);
             });
}

TEST_CASE("tracking cache: the byte bound drops the least recently used first",
          "[client][live][tracking]") {
  redis_server server;
  asio::io_context ioc;
  connection measure_conn(ioc, local_config(server.port()));
  connection conn(ioc, local_config(server.port()));
  std::optional<tracking_cache> measure(std::in_place, measure_conn);
  std::optional<tracking_cache> cache;
  run_bounded(ioc, [&]() -> awaitable<void> {
    measure_conn.async_run(asio::detached);
    conn.async_run(asio::detached);
    co_await drain(*measure);
    for (int i = 0; i < 5; ++i)
      co_await run(measure_conn, cmd::set(key_of(i), std::string(100, 'x')));
    // What one entry takes: all five are the same size.
    co_await cached_get(*measure, key_of(0));
    const std::size_t one = measure->stats().bytes;
    REQUIRE(one > 100);
    measure.reset();
    tracking_cache_config cfg;
    cfg.max_bytes = 3 * one + one / 2;  // room for three
    cache.emplace(conn, cfg);
    co_await cached_get(*cache, key_of(0));
    co_await cached_get(*cache, key_of(1));
    co_await cached_get(*cache, key_of(2));
    co_await cached_get(*cache, key_of(0));  // a hit: 0 is now the most recent
    co_await cached_get(*cache, key_of(3));  // no room: 1, the least recent, goes
    CHECK(cache->stats().entries == 3);
    CHECK(cache->stats().evictions == 1);
    CHECK(held_get(*cache, key_of(0)).has_value());
    CHECK_FALSE(held_get(*cache, key_of(1)).has_value());
    CHECK(held_get(*cache, key_of(2)).has_value());
    CHECK(held_get(*cache, key_of(3)).has_value());
    CHECK(cache->stats().bytes <= cfg.max_bytes);
    cache.reset();
    conn.close();
    measure_conn.close();
  });
}

TEST_CASE("tracking cache: keys the server evicts (maxmemory, allkeys-lru) are dropped",
          "[client][live][tracking]") {
  redis_server server({"--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"});
  with_cache(local_config(server.port()), {},
             [&](tracking_cache& cache, connection& other) -> awaitable<void> {
               for (int i = 0; i < 100; ++i)
                 co_await run(other, cmd::set(key_of(i), std::string(1000, 'v')));
               for (int i = 0; i < 100; ++i)
                 co_await cached_get(cache, key_of(i));
               // Fill the server past maxmemory: it evicts the least recently used keys.
               for (int i = 0; i < 4000; ++i)
                 co_await run(other, cmd::set(std::string("filler:") + std::to_string(i),
                                              std::string(1000, 'f')));
               std::vector<std::string> names;
               for (int i = 0; i < 100; ++i)
                 names.push_back(key_of(i));
               const auto truth = co_await run(other, cmd::mget(names));
               // Drained after the MGET: the server still over its limit may evict one more
               // key before running it, and that key's invalidation must be in too.
               co_await drain(cache);
               int evicted = 0, stale = 0;
               for (int i = 0; i < 100; ++i) {
                 const auto local = held_get(cache, key_of(i));
                 if (!truth[static_cast<std::size_t>(i)]) ++evicted;
                 if (local && *local != truth[static_cast<std::size_t>(i)]) ++stale;
               }
               INFO("evicted by the server: " << evicted);
               REQUIRE(evicted > 0);  // else the test proves nothing
               CHECK(stale == 0);
               CHECK(cache.stats().invalidations >= static_cast<std::uint64_t>(evicted));
             });
}

TEST_CASE("tracking cache: broadcast prefixes and opt-in", "[client][live][tracking]") {
  redis_server server;
  asio::io_context ioc;
  connection bconn(ioc, local_config(server.port()));
  connection oconn(ioc, local_config(server.port()));
  connection other(ioc, local_config(server.port()));
  tracking_cache_config bcfg;
  bcfg.mode = tracking_mode::broadcast;
  bcfg.prefixes = {"user:"};
  tracking_cache broadcast(bconn, bcfg);
  tracking_cache_config ocfg;
  ocfg.mode = tracking_mode::opt_in;
  tracking_cache optin(oconn, ocfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    bconn.async_run(asio::detached);
    oconn.async_run(asio::detached);
    other.async_run(asio::detached);
    co_await drain(broadcast);
    co_await drain(optin);
    co_await run(other, cmd::set("user:1", "a"));
    co_await run(other, cmd::set("other:1", "a"));

    // Broadcast: keys under the prefix are cached; others pass through, never kept (the
    // server would not report their changes).
    co_await cached_get(broadcast, "user:1");
    co_await cached_get(broadcast, "user:1");
    co_await cached_get(broadcast, "other:1");
    co_await cached_get(broadcast, "other:1");
    auto s = broadcast.stats();
    CHECK(s.hits == 1);
    CHECK(s.uncached == 2);
    co_await run(other, cmd::set("user:1", "b"));
    co_await drain(broadcast);
    const auto changed = co_await cached_get(broadcast, "user:1");
    CHECK(changed == "b");

    // Opt-in: only what the caller asks for is cached.
    co_await cached_get(optin, "user:1");
    co_await cached_get(optin, "user:1");
    CHECK(optin.stats().hits == 0);
    auto v = co_await optin.async_exec_cached(cmd::get("user:1"), use_awaitable);
    v = co_await optin.async_exec_cached(cmd::get("user:1"), use_awaitable);
    CHECK(v.value() == "b");
    CHECK(optin.stats().hits == 1);
    co_await run(other, cmd::set("user:1", "c"));
    co_await drain(optin);
    CHECK_FALSE(held_get(optin, "user:1").has_value());
    v = co_await optin.async_exec_cached(cmd::get("user:1"), use_awaitable);
    CHECK(v.value() == "c");
    bconn.close();
    oconn.close();
    other.close();
  });
}

TEST_CASE("tracking cache: NOLOOP drops what a write through it names, a key prefix is honoured",
          "[client][live][tracking]") {
  redis_server server;
  auto prefixed = local_config(server.port());
  prefixed.key_prefix = "app:";
  tracking_cache_config noloop;
  noloop.noloop = true;
  with_cache(prefixed, noloop, [&](tracking_cache& cache, connection& other) -> awaitable<void> {
    co_await cache.async_exec(cmd::set("k", "1"), use_awaitable);
    const auto first = co_await cached_get(cache, "k");
    CHECK(first == "1");
    // Its own write: NOLOOP means no invalidation comes back; the cache drops it itself.
    co_await cache.async_exec(cmd::set("k", "2"), use_awaitable);
    const auto second = co_await cached_get(cache, "k");
    CHECK(second == "2");
    // Another client's write to the key as the server names it ("app:k").
    co_await run(other, cmd::set("app:k", "3"));
    co_await drain(cache);
    CHECK_FALSE(held_get(cache, "k").has_value());
    const auto third = co_await cached_get(cache, "k");
    CHECK(third == "3");
  });
}

TEST_CASE("tracking cache: made on a running connection, and off on RESP2",
          "[client][live][tracking]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  auto cfg2 = local_config(server.port());
  cfg2.protocol = 2;
  connection resp2(ioc, cfg2);
  connection other(ioc, local_config(server.port()));
  std::optional<tracking_cache> cache;
  tracking_cache off(resp2);
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    resp2.async_run(asio::detached);
    other.async_run(asio::detached);
    co_await run(conn, redcoro::command<std::string>("PING"));
    cache.emplace(conn);
    co_await drain(*cache);  // CLIENT TRACKING ON was answered before PING
    CHECK(cache->available());
    co_await run(other, cmd::set("a", "1"));
    co_await cached_get(*cache, "a");
    co_await run(other, cmd::set("a", "2"));
    co_await drain(*cache);
    const auto fresh = co_await cached_get(*cache, "a");
    CHECK(fresh == "2");

    // RESP2 has no invalidation pushes on the same connection: nothing is served locally.
    co_await run(resp2, redcoro::command<std::string>("PING"));
    CHECK(resp2.protocol() == 2);
    CHECK_FALSE(off.available());
    co_await cached_get(off, "a");
    const auto again = co_await cached_get(off, "a");
    CHECK(again == "2");
    CHECK(off.stats().hits == 0);
    CHECK(off.stats().uncached == 2);
    cache.reset();
    conn.close();
    resp2.close();
    other.close();
  });
}

TEST_CASE("tracking cache: a Sentinel failover drops what the old primary promised",
          "[sentinel][live][tracking][failure]") {
  redcoro::test::redis_sentinel d;
  asio::io_context ioc;
  redcoro::sentinel_client sc(ioc, redcoro::test::config_for(d));
  tracking_cache cache(sc.next_layer().next_layer());
  const std::uint16_t replica = d.server(1).port();
  run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        sc.async_run(asio::detached);
        co_await sc.async_exec(cmd::set("k", "before"), use_awaitable);
        co_await sc.async_exec(redcoro::command<std::int64_t>("WAIT", 1, 2000), use_awaitable);
        const auto first = co_await cached_get(cache, "k");
        CHECK(first == "before");
        CHECK(held_get(cache, "k").has_value());

        const std::string ok = d.sentinel_cli(1, {"SENTINEL", "FAILOVER", d.name()});
        REQUIRE(ok == "OK\n");
        const bool moved = co_await eventually(
            [&] { return sc.current_address() && sc.current_address()->port == replica; }, 50s);
        REQUIRE(moved);
        // The session with the old primary is gone, and with it what it promised. The client
        // names the new address as it asks the old connection to close, so the session's end
        // (and the flush it brings) may come a moment later: waited for, within a bound.
        const bool flushed = co_await eventually([&] { return cache.stats().flushes >= 1; }, 10s);
        CHECK(flushed);
        CHECK_FALSE(held_get(cache, "k").has_value());
        // A write on the new primary is what the cache serves now.
        for (int attempt = 0; attempt < 50; ++attempt) {
          redcoro::error_code ec;
          co_await sc.async_exec(cmd::set("k", "after"), asio::redirect_error(use_awaitable, ec));
          if (!ec) break;
          co_await sleep_for(100ms);
        }
        const auto now = co_await cached_get(cache, "k");
        CHECK(now == "after");
        const auto again = co_await cached_get(cache, "k");
        CHECK(again == "after");
        sc.close();
      },
      90s);
}
