// Sessions over a real server (with a connection key prefix, so that the keys the scripts
// build from the index key are shown to carry it) and a 3-primary cluster: the whole life of
// a session, sliding expiry and the absolute cap with short TTLs, and "log out everywhere".
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/recipes/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/describe.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
namespace rr = redcoro::recipes;
using asio::as_tuple;
using asio::use_awaitable;

namespace session_test {

struct cart {
  std::string owner;
  std::vector<std::string> items;
  std::int64_t total = 0;
  bool operator==(const cart&) const = default;
};
BOOST_DESCRIBE_STRUCT(cart, (), (owner, items, total))

cart sample(std::string owner) {
  cart c;
  c.owner = std::move(owner);
  c.items.push_back("book");
  c.items.push_back("pen");
  c.total = 1250;
  return c;
}

// On a single server (pooled, with a key prefix) and on a cluster of 3 primaries.
void on_both(const std::function<asio::awaitable<void>(handle&)>& body) {
  {
    INFO("single server");
    redis_server server;
    auto cfg = local_config(server.port());
    cfg.key_prefix = "svc:";
    with_handle(cfg, body);
  }
  {
    INFO("cluster");
    redis_cluster cluster(3, 0);
    REQUIRE(cluster.wait_healthy());
    with_handle(config_for(cluster), body);
  }
}

error_code not_found() {
  return error_code(rr::make_error_code(rr::error::session_not_found));
}

asio::awaitable<std::string> create(rr::session_store& s, std::string user, const cart& c) {
  auto [ec, id] = co_await s.async_create(user, c, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec);
  co_return id;
}

asio::awaitable<error_code> get_error(rr::session_store& s, std::string id) {
  auto [ec, c] = co_await s.async_get<cart>(id, as_tuple(use_awaitable));
  co_return ec;
}

asio::awaitable<void> whole_life(handle& h) {
  rr::session_store s(
      h, {.prefix = "sess:", .idle_timeout = 60s, .max_lifetime = 1h, .touch_on_get = true});
  const cart a = sample("alice");
  const std::string id = co_await create(s, "alice", a);
  CHECK(id.size() == 32 + 1 + 5);
  CHECK(id.substr(32) == ".alice");

  auto [ec1, got] = co_await s.async_get<cart>(id, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec1);
  CHECK(got == a);

  cart b = a;
  b.items.push_back("lamp");
  b.total = 4000;
  auto [ec2, left] = co_await s.async_update(id, b, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec2);
  CHECK(left > 59s);
  CHECK(left <= 60s);
  auto [ec3, got2] = co_await s.async_get<cart>(id, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec3);
  CHECK(got2 == b);

  auto [ec4, left2] = co_await s.async_touch(id, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec4);
  CHECK(left2 > 59s);

  // Two ids never repeat, and each names its own session.
  const std::string id2 = co_await create(s, "alice", sample("alice-2"));
  CHECK(id2 != id);
  auto [ec5, other] = co_await s.async_get<cart>(id2, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec5);
  CHECK(other.owner == "alice-2");

  auto [ec6, existed] = co_await s.async_destroy(id, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec6);
  CHECK(existed);
  const error_code gone = co_await get_error(s, id);
  CHECK(gone == not_found());
  auto [ec7, again] = co_await s.async_destroy(id, as_tuple(use_awaitable));
  REQUIRE_FALSE(ec7);
  CHECK_FALSE(again);
  auto [ec8, touched] = co_await s.async_touch(id, as_tuple(use_awaitable));
  CHECK(ec8 == not_found());
  auto [ec9, updated] = co_await s.async_update(id, b, as_tuple(use_awaitable));
  CHECK(ec9 == not_found());

  // The index forgot the destroyed one.
  auto [ec10, listed] = co_await s.async_list("alice", as_tuple(use_awaitable));
  REQUIRE_FALSE(ec10);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].id == id2);
  CHECK(listed[0].expires_in > 59s);

  // Forged and malformed ids are "not found", never another user's session.
  std::string forged = id2;
  forged[0] = forged[0] == 'A' ? 'B' : 'A';
  const error_code e1 = co_await get_error(s, forged);
  CHECK(e1 == not_found());
  const std::string other_user = id2.substr(0, 32) + ".bob";
  const error_code e2 = co_await get_error(s, other_user);
  CHECK(e2 == not_found());
  const error_code e3 = co_await get_error(s, "short.alice");
  CHECK(e3 == not_found());
  const error_code e4 = co_await get_error(s, id2.substr(0, 32) + ".{x}");
  CHECK(e4 == not_found());
  const error_code e5 = co_await get_error(s, "");
  CHECK(e5 == not_found());

  // Users that would break the hash tag are refused.
  auto [ec11, bad] = co_await s.async_create("a{b}", a, as_tuple(use_awaitable));
  CHECK(ec11 == error_code(rr::make_error_code(rr::error::invalid_argument)));
  auto [ec12, empty] = co_await s.async_create("", a, as_tuple(use_awaitable));
  CHECK(ec12 == error_code(rr::make_error_code(rr::error::invalid_argument)));
}

TEST_CASE("sessions: create, get, update, touch, destroy, list, on one server and a cluster",
          "[recipes][session]") {
  on_both(whole_life);
}

// Polls `get` until the session is gone, at most `bound`: how long it took.
asio::awaitable<std::chrono::milliseconds> wait_gone(rr::session_store& s, std::string id,
                                                     std::chrono::milliseconds bound) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < bound) {
    const error_code ec = co_await get_error(s, id);
    if (ec == not_found()) break;
    REQUIRE_FALSE(ec);
    co_await sleep_for(20ms);
  }
  co_return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
}

asio::awaitable<void> expiry(handle& h) {
  // Reads do not slide here, so that polling does not keep the session alive.
  rr::session_store idle(
      h, {.prefix = "exp:", .idle_timeout = 300ms, .max_lifetime = 1h, .touch_on_get = false});
  {
    // Left alone, a session lasts its idle timeout and then is gone.
    const std::string id = co_await create(idle, "carol", sample("carol"));
    const error_code there = co_await get_error(idle, id);
    CHECK_FALSE(there);
    const auto took = co_await wait_gone(idle, id, 5000ms);
    CHECK(took < 5000ms);
    auto [ec, listed] = co_await idle.async_list("carol", as_tuple(use_awaitable));
    REQUIRE_FALSE(ec);
    CHECK(listed.empty());
  }
  {
    // Touched every 100 ms, a session with a 300 ms idle timeout outlives it many times
    // over, until the absolute cap (1200 ms) ends it however often it is touched.
    rr::session_store capped(
        h,
        {.prefix = "cap:", .idle_timeout = 300ms, .max_lifetime = 1200ms, .touch_on_get = false});
    const std::string id = co_await create(capped, "dave", sample("dave"));
    const auto start = std::chrono::steady_clock::now();
    int touches = 0;
    bool capped_below_idle = false;
    error_code last;
    while (std::chrono::steady_clock::now() - start < 5s) {
      auto [ec, left] = co_await capped.async_touch(id, as_tuple(use_awaitable));
      if (ec) {
        last = ec;
        break;
      }
      ++touches;
      CHECK(left <= 300ms);
      // Near the cap, a touch gives less than the idle timeout: the cap is the deadline.
      if (left < 250ms) capped_below_idle = true;
      co_await sleep_for(100ms);
    }
    CHECK(last == not_found());
    const auto lived = std::chrono::steady_clock::now() - start;
    // It was touched past several idle timeouts (sliding), and it did end (the cap).
    CHECK(touches >= 6);
    CHECK(lived >= 900ms);
    CHECK(capped_below_idle);
    const error_code after = co_await get_error(capped, id);
    CHECK(after == not_found());
  }
  {
    // touch_on_get: reading is activity.
    rr::session_store reading(
        h, {.prefix = "read:", .idle_timeout = 300ms, .max_lifetime = 1h, .touch_on_get = true});
    const std::string id = co_await create(reading, "erin", sample("erin"));
    for (int i = 0; i < 8; ++i) {  // 8 x 100 ms: past two idle timeouts
      const error_code ec = co_await get_error(reading, id);
      REQUIRE_FALSE(ec);
      co_await sleep_for(100ms);
    }
    rr::session_store still(
        h, {.prefix = "read:", .idle_timeout = 300ms, .max_lifetime = 1h, .touch_on_get = false});
    const auto took = co_await wait_gone(still, id, 5000ms);
    CHECK(took < 5000ms);
  }
}

TEST_CASE("sessions: sliding expiry and the absolute cap, on one server and a cluster",
          "[recipes][session]") {
  on_both(expiry);
}

asio::awaitable<void> destroy_all(handle& h) {
  rr::session_store s(
      h, {.prefix = "all:", .idle_timeout = 60s, .max_lifetime = 1h, .touch_on_get = true});
  std::set<std::string> mine;
  for (int i = 0; i < 5; ++i) {
    const std::string id = co_await create(s, "frank", sample("frank"));
    mine.insert(id);
  }
  const std::string bobs = co_await create(s, "grace", sample("grace"));

  auto [ec1, listed] = co_await s.async_list("frank", as_tuple(use_awaitable));
  REQUIRE_FALSE(ec1);
  std::set<std::string> seen;
  for (const auto& i : listed)
    seen.insert(i.id);
  CHECK(seen == mine);

  auto [ec2, ended] = co_await s.async_destroy_all("frank", as_tuple(use_awaitable));
  REQUIRE_FALSE(ec2);
  CHECK(ended == 5);
  for (const std::string& id : mine) {
    const error_code ec = co_await get_error(s, id);
    CHECK(ec == not_found());
  }
  auto [ec3, after] = co_await s.async_list("frank", as_tuple(use_awaitable));
  REQUIRE_FALSE(ec3);
  CHECK(after.empty());
  auto [ec4, none] = co_await s.async_destroy_all("frank", as_tuple(use_awaitable));
  REQUIRE_FALSE(ec4);
  CHECK(none == 0);

  // Another user's session is untouched.
  const error_code other = co_await get_error(s, bobs);
  CHECK_FALSE(other);
}

TEST_CASE("sessions: destroy all of one user, on one server and a cluster", "[recipes][session]") {
  on_both(destroy_all);
}

TEST_CASE("sessions: settings that cannot work are refused", "[recipes][session]") {
  asio::io_context ioc;
  connection_config cfg = local_config(free_port());
  handle h(ioc, cfg);
  CHECK_THROWS_AS(
      rr::session_store(
          h, {.prefix = "s:", .idle_timeout = 0ms, .max_lifetime = 1h, .touch_on_get = true}),
      std::system_error);
  CHECK_THROWS_AS(
      rr::session_store(
          h, {.prefix = "{s}:", .idle_timeout = 1s, .max_lifetime = 1h, .touch_on_get = true}),
      std::system_error);
  h.close();
  redcoro::test::run_until_idle(ioc, 1s);
}

}  // namespace session_test
