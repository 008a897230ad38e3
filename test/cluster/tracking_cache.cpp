// Client-side caching on a 3+3 cluster: what is served locally must never be older than the
// nodes' invalidations allow, through writes, a reshard and a failover.
#include "support/cluster_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/cluster/tracking_cache.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using redcoro::cluster_client;
using redcoro::cluster_tracking_cache;
using redcoro::test::config_for;
using redcoro::test::eventually;
using redcoro::test::held_get;
using redcoro::test::run;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace proto = redcoro::proto;
namespace test = redcoro::test;
using asio::awaitable;
using asio::use_awaitable;
using maybe = std::optional<std::string>;

static_assert(redcoro::executes_requests<cluster_tracking_cache>);

namespace {

std::string key_of(int i) {
  std::string k = "ck:";
  k += std::to_string(i);
  return k;
}

// One round trip on every primary's connection: the invalidations each sent before it are
// applied once it returns.
awaitable<void> drain(cluster_client& cl) {
  for (const auto& a : cl.primaries())
    co_await run(cl.node(a), redcoro::command<std::string>("PING"));
}

}  // namespace

TEST_CASE("cluster tracking cache: nothing stale after 5 s of writes with a 100-slot reshard",
          "[cluster][live][tracking][failure]") {
  test::redis_cluster c;
  std::string from, to;
  for (const auto& n : c.nodes()) {
    if (!n.primary) continue;
    if (from.empty())
      from = n.id;
    else if (to.empty())
      to = n.id;
  }
  asio::io_context ioc;
  cluster_client cl(ioc, config_for(c));
  cluster_client writer(ioc, config_for(c));
  std::optional<cluster_tracking_cache> cache(std::in_place, cl);
  constexpr int keys = 1000;
  test::run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        cl.async_run(asio::detached);
        writer.async_run(asio::detached);
        co_await run(cl, redcoro::command<std::string>("PING"));
        bool stop = false;
        int readers_done = 0;
        std::size_t reads = 0, read_errors = 0, writes = 0, write_errors = 0;
        for (int r = 0; r < 4; ++r)
          asio::co_spawn(
              ioc,
              [&, r]() -> awaitable<void> {
                std::minstd_rand rng(static_cast<unsigned>(r + 1));
                while (!stop) {
                  redcoro::error_code ec;
                  auto v =
                      co_await cache->async_exec(cmd::get(key_of(static_cast<int>(rng() % keys))),
                                                 asio::redirect_error(use_awaitable, ec));
                  ++reads;
                  if (ec || v.has_error()) {
                    ++read_errors;
                    co_await sleep_for(10ms);
                  }
                }
                ++readers_done;
              },
              asio::detached);
        std::minstd_rand rng(42);
        std::atomic<bool> resharded = false;
        std::string out;
        std::optional<std::jthread> reshard;
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < 5s) {
          if (!reshard && std::chrono::steady_clock::now() - start > 1s)
            reshard.emplace([&] {
              out = c.cli({"--cluster", "reshard", "127.0.0.1:" + std::to_string(c.ports()[0]),
                           "--cluster-from", from, "--cluster-to", to, "--cluster-slots", "100",
                           "--cluster-yes", "--cluster-pipeline", "100"});
              resharded = true;
            });
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
        // The reshard may outlast the writes; the readers go on until it is done.
        const bool moved = co_await eventually([&] { return resharded.load(); }, 60s);
        REQUIRE(moved);
        reshard->join();
        stop = true;
        const bool ended = co_await eventually([&] { return readers_done == 4; }, 20s);
        REQUIRE(ended);  // no reader hung
        std::vector<std::string> names;
        for (int i = 0; i < keys; ++i)
          names.push_back(key_of(i));
        // The cache's client learns that the slots moved (a MOVED to this read, if it has not
        // seen one yet): until then, a key that was absent on the old owner and was created on
        // the new one may still read as absent (client/README.md, "Client-side caching").
        co_await run(cl, cmd::mget(names));
        co_await drain(cl);

        const auto truth = co_await run(writer, cmd::mget(names));
        int held_now = 0, stale = 0;
        for (int i = 0; i < keys; ++i)
          if (const auto local = held_get(*cache, key_of(i))) {
            ++held_now;
            if (*local != truth[static_cast<std::size_t>(i)]) ++stale;
          }
        const auto s = cache->stats();
        INFO("reshard: " << out.substr(out.size() > 500 ? out.size() - 500 : 0));
        INFO("reads " << reads << " (" << read_errors << " failed), writes " << writes << " ("
                      << write_errors << " failed), hits " << s.hits << ", misses " << s.misses
                      << ", invalidations " << s.invalidations << ", not stored " << s.not_stored
                      << ", flushes " << s.flushes << ", held " << held_now);
        CHECK(stale == 0);
        CHECK(read_errors == 0);
        CHECK(write_errors == 0);
        CHECK(held_now > 0);
        CHECK(s.hits > 0);
        CHECK(s.invalidations > 0);
        INFO("redirects followed: " << cl.stats().moved + cl.stats().ask);
        CHECK(s.flushes >= 1);  // the slots that moved took what was read from them
        cache.reset();
        cl.close();
        writer.close();
      },
      120s);
}

TEST_CASE("cluster tracking cache: a failover drops what the old primary promised",
          "[cluster][live][tracking][failure]") {
  test::redis_cluster c;
  asio::io_context ioc;
  cluster_client cl(ioc, config_for(c));
  cluster_client writer(ioc, config_for(c));
  std::optional<cluster_tracking_cache> cache;
  test::run_bounded(
      ioc,
      [&]() -> awaitable<void> {
        cl.async_run(asio::detached);
        writer.async_run(asio::detached);
        // Made while the cluster client runs: its node connections ask for tracking then.
        co_await run(cl, redcoro::command<std::string>("PING"));
        cache.emplace(cl);
        co_await drain(cl);
        CHECK(cache->available());
        co_await run(writer, cmd::set("fk", "before"));
        auto v = co_await cache->async_exec(cmd::get("fk"), use_awaitable);
        CHECK(v.value() == "before");
        CHECK(held_get(*cache, "fk").has_value());

        // The owner's replica takes over; the old primary's session ends or changes.
        const auto slot =
            co_await run(writer, redcoro::command<std::int64_t>("CLUSTER", "KEYSLOT", "fk"));
        const std::uint16_t primary = c.owner_of(static_cast<int>(slot));
        REQUIRE(primary != 0);
        const std::uint16_t replica = c.replicas_of(primary).at(0);
        CHECK(c.server_on(replica).cli({"CLUSTER", "FAILOVER"}).find("OK") != std::string::npos);
        for (int attempt = 0; attempt < 100; ++attempt) {
          redcoro::error_code ec;
          co_await writer.async_exec(cmd::set("fk", "after"),
                                     asio::redirect_error(use_awaitable, ec));
          if (!ec) break;
          co_await sleep_for(100ms);
        }
        co_await drain(cl);
        // Whatever node answers now, the value served is the one written after the failover.
        const bool fresh = co_await eventually(
            [&] {
              return !held_get(*cache, "fk").has_value() || *held_get(*cache, "fk") == "after";
            },
            10s);
        CHECK(fresh);
        v = co_await cache->async_exec(cmd::get("fk"), use_awaitable);
        CHECK(v.value() == "after");
        cache.reset();
        cl.close();
        writer.close();
      },
      90s);
}
