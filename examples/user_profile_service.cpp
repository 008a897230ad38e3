// A user profile service: what a service does with Redis every day, on any deployment. The
// same code runs on a single server and on a cluster; only the URL differs.
//   user_profile_service [redis|redis+cluster] PORT
#include "example.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/recipes/limiter.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/describe.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace rc = redcoro::cache;
namespace rr = redcoro::recipes;
using asio::use_awaitable;
using example::expect;
using namespace std::chrono_literals;

struct user {
  std::string name;
  std::vector<std::string> roles;
};
BOOST_DESCRIBE_STRUCT(user, (), (name, roles))

user make_user(std::string name, std::string role) {
  return user{std::move(name), {std::move(role)}};
}
asio::awaitable<user> slow_lookup(std::string id) {  // stands for a database
  co_return make_user("user " + id, "reader");
}

asio::awaitable<void> service(redcoro::handle& redis) {
  rc::cache users(redis, {.prefix = "user:", .default_ttl = 10min});
  const user ada_in = make_user("Ada", "admin"), grace = make_user("Grace", "dev");
  co_await users.set("42", ada_in);         // JSON, with the default TTL: PX 600000
  co_await users.set("43", grace, 1500ms);  // PX 1500
  auto ada = co_await users.get<user>("42");
  expect(ada.value()->name == "Ada", "the profile reads back");

  auto logins = co_await redis.async_exec(cmd::hincrby("logins", "42", 1), use_awaitable);
  expect(logins.value() >= 1, "a login counted");

  auto load = [] { return slow_lookup("7"); };  // named: g++ 12 and temporaries in co_await
  auto seven = co_await users.get_or_load<user>("7", load);  // loaded once, then cached
  expect(seven.value()->name == "user 7", "cache-aside");

  auto gone = co_await users.invalidate_prefix("4");  // user:42 and user:43, on every node
  expect(gone.value() == 2, "a prefix invalidated");

  redcoro::handle_subscriber events(redis);
  int seen = 0;
  events.on_message([&](const redcoro::pubsub_message& m) { seen += m.payload == "login:42"; });
  std::vector<std::string> channels(1, "user-events");
  co_await events.async_subscribe(channels, use_awaitable);
  co_await redis.async_exec(cmd::publish("user-events", "login:42"), use_awaitable);
  asio::steady_timer t(redis.get_executor());
  for (int i = 0; i < 200 && seen == 0; ++i) {
    t.expires_after(10ms);
    co_await t.async_wait(use_awaitable);
  }
  expect(seen == 1, "the subscriber's callback saw the event");

  rr::rate_limiter per_user(redis, {.limit = 5, .window = 10s});
  int allowed = 0;
  for (int i = 0; i < 6; ++i)
    allowed += (co_await per_user.async_allow("user-42", use_awaitable)).allowed;
  expect(allowed == 5, "the sixth request of the window is refused");

  rr::lock report(redis, "nightly-report", {.lease = 5s});
  auto guard = co_await report.async_acquire(use_awaitable);
  std::printf("critical section, fencing token %lld\n", static_cast<long long>(guard.fence()));
  co_await guard.async_release(use_awaitable);

  auto health = co_await redis.async_health(use_awaitable);
  expect(health.healthy, "healthy");
  std::printf("%s: healthy, %zu node(s)\n", std::string(to_string(redis.kind())).c_str(),
              health.nodes.size());
  events.close();
}

int main(int argc, char** argv) {
  const std::string scheme = argc > 2 ? argv[1] : "redis";
  const std::string port = argc > 1 ? argv[argc - 1] : "6379";
  asio::io_context ioc;
  redcoro::connection_config defaults;
  defaults.key_prefix = "profiles:";  // every key of this service
  redcoro::handle redis(ioc, scheme + "://127.0.0.1:" + port, defaults);
  return example::run("user_profile_service", ioc, service(redis), [&] { redis.close(); });
}
