// Client-side caching through a handle: the same code on a single server, a pooled client and
// a cluster.
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/connect/tracking_cache.hpp>

#include <boost/asio/this_coro.hpp>
#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace std::chrono_literals;
using redcoro::handle;
using redcoro::handle_config;
using redcoro::handle_tracking_cache;
using redcoro::test::local_config;
using redcoro::test::run;
using redcoro::test::with_handle;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace proto = redcoro::proto;
using asio::awaitable;
using asio::use_awaitable;
using maybe = std::optional<std::string>;

static_assert(redcoro::executes_requests<handle_tracking_cache>);

namespace {

bool held(handle_tracking_cache& cache, const std::string& key) {
  proto::request req;
  req.push("GET", key);
  proto::response<maybe> resp;
  return cache.try_get(req, resp);
}

awaitable<maybe> cached_get(handle_tracking_cache& cache, const std::string& key) {
  auto r = co_await cache.async_exec(cmd::get(key), use_awaitable);
  co_return std::move(r).value();
}

// Reads through a cache made from `h`, while another handle of the same deployment writes.
awaitable<void> service(handle& h, const handle_config& cfg) {
  handle writer(co_await asio::this_coro::executor, cfg);
  handle_tracking_cache cache(h);
  // A round trip to the key's node: every invalidation of it sent before is applied after.
  const auto drain = [&]() -> awaitable<void> {
    co_await cache.next_layer().async_exec(cmd::exists("tk"), use_awaitable);
  };
  co_await drain();
  // On a cluster, each node connection that was up before the cache asks for tracking on its
  // own; the cache keeps reads once all of them have it (bounded wait).
  for (int i = 0; i < 250 && !cache.available(); ++i)
    co_await redcoro::test::sleep_for(20ms);
  CHECK(cache.available());
  co_await run(writer, cmd::set("tk", "1"));
  // (drain() read the key: the server reports this write to it too, and a read in flight
  // when that report arrives is not kept.)
  co_await drain();
  const auto first = co_await cached_get(cache, "tk");
  CHECK(first == "1");
  const auto second = co_await cached_get(cache, "tk");
  CHECK(second == "1");
  CHECK(cache.stats().hits == 1);

  co_await run(writer, cmd::set("tk", "2"));
  co_await drain();
  CHECK_FALSE(held(cache, "tk"));
  const auto third = co_await cached_get(cache, "tk");
  CHECK(third == "2");

  co_await cache.async_exec(cmd::set("tk", "3"), use_awaitable);  // through the cache itself
  const auto fourth = co_await cached_get(cache, "tk");
  CHECK(fourth == "3");
  writer.close();
}

}  // namespace

TEST_CASE("handle tracking cache: one server, with and without a pool", "[handle][tracking]") {
  redcoro::test::redis_server server;
  for (std::size_t pool : {std::size_t{0}, std::size_t{4}}) {
    INFO("pool_size " << pool);
    auto cfg = local_config(server.port());
    cfg.pool_size = pool;
    with_handle(cfg, [&](handle& h) -> awaitable<void> { co_await service(h, cfg); });
  }
}

TEST_CASE("handle tracking cache: a cluster", "[handle][tracking][cluster]") {
  redcoro::test::redis_cluster c;
  const handle_config cfg = redcoro::test::config_for(c);
  with_handle(cfg, [&](handle& h) -> awaitable<void> { co_await service(h, cfg); });
}
