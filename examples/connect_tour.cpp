// One service, any deployment: the same code runs on a single server and on a cluster; only
// the URL differs. The handle connects by itself; health and SCAN work on both.
//
//   connect_tour [redis|redis+cluster] PORT
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using namespace std::chrono_literals;

// A lock released only by its holder.
const redcoro::script unlock(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
    "else return 0 end");

asio::awaitable<void> service(redcoro::handle& redis) {
  const bool ready = co_await redis.async_wait_ready(10s, asio::use_awaitable);
  example::expect(ready, "the deployment answers");

  // A JSON value with a TTL, read back.
  co_await redis.async_exec(cmd::set("user:42", R"({"name":"Ada"})", {.ttl = 5min}),
                            asio::use_awaitable);
  auto user = co_await redis.async_exec(cmd::get("user:42"), asio::use_awaitable);
  example::expect(user.value() == std::optional<std::string>(R"({"name":"Ada"})"), "read back");

  // A counter in a hash.
  auto logins =
      co_await redis.async_exec(cmd::hincrby("user:42:stats", "logins", 1), asio::use_awaitable);
  example::expect(logins.value() == 1, "first login");

  // A lock: SET NX PX, released by a script (resent with its source after NOSCRIPT).
  auto got = co_await redis.async_exec(
      cmd::set("lock:report", "me", {.ttl = 10s, .condition = cmd::set_if::absent}),
      asio::use_awaitable);
  example::expect(got.value().has_value(), "lock taken");
  auto released = co_await redis.async_exec(unlock.call<std::int64_t>("lock:report", "me"),
                                            asio::use_awaitable);
  example::expect(released.value() == 1, "lock released by its holder");

  // Invalidate by pattern: SCAN over the whole keyspace (every primary of a cluster).
  for (int i = 0; i < 20; ++i)
    co_await redis.async_exec(cmd::set("product:" + std::to_string(i), "x"), asio::use_awaitable);
  redcoro::scan_cursor scan(cmd::scan_options{.match = "product:*", .count = 100, .type = {}});
  std::int64_t deleted = 0;
  while (!scan.done())
    for (auto& key : co_await redis.async_scan(scan, asio::use_awaitable))
      deleted += (co_await redis.async_exec(cmd::unlink(key), asio::use_awaitable)).value();
  example::expect(deleted == 20, "every product key deleted");

  // A readiness probe's view.
  auto health = co_await redis.async_health(asio::use_awaitable);
  example::expect(health.healthy, "healthy");
  std::printf("%s: healthy, %zu node(s), redis %s, PING %lld us\n",
              std::string(to_string(redis.kind())).c_str(), health.nodes.size(),
              health.server_version.c_str(), static_cast<long long>(health.round_trip.count()));
}

int main(int argc, char** argv) {
  const std::string scheme = argc > 2 ? argv[1] : "redis";
  const std::string port = argc > 1 ? argv[argc - 1] : "6379";
  asio::io_context ioc;
  redcoro::connection_config defaults;
  defaults.key_prefix = "tour:";  // every key of this service, on any deployment
  redcoro::handle redis(ioc, scheme + "://127.0.0.1:" + port, defaults);
  return example::run("connect_tour", ioc, service(redis), [&] { redis.close(); });
}
