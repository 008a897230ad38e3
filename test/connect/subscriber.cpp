// handle_subscriber on each deployment, under failure: a server SIGKILLed and restarted, a
// cluster primary restarted, a Sentinel failover. What must hold: the subscription comes back
// by itself, every message whose PUBLISH counted a receiver after that is received, and no
// call hangs (every wait is bounded).
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/redis_server.hpp"
#include "support/sentinel_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/redirect_error.hpp>

#include <set>
#include <string>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
using asio::use_awaitable;

namespace {

using strings = std::vector<std::string>;

// What a handle_subscriber delivered, and what the publishers were told was delivered.
struct ledger {
  std::set<std::string> received;
  std::set<std::string> counted;  // PUBLISH said at least one receiver had it

  void listen(handle_subscriber& sub) {
    sub.on_message([this](const pubsub_message& m) {
      if (m.is_message()) received.insert(m.channel + "/" + m.payload);
    });
  }

  // Publishes `payload` through the handle (SPUBLISH for a shard channel); true when the
  // server counted a receiver. Errors (the server down) count as not delivered.
  asio::awaitable<bool> publish(handle& h, const std::string& channel, const std::string& payload,
                                bool shard = false) {
    // A second at most: on loopback an answering server replies long before.
    auto c = shard ? cmd::spublish(channel, payload) : cmd::publish(channel, payload);
    c.request().get_config().timeout = 1s;
    error_code ec;
    auto r = co_await h.async_exec(std::move(c), asio::redirect_error(use_awaitable, ec));
    const bool delivered = !ec && r.has_value() && r.value() > 0;
    if (delivered) counted.insert(channel + "/" + payload);
    co_return delivered;
  }

  // Publishes numbered messages every 50 ms until one is counted (at most `bound`).
  asio::awaitable<bool> publish_until_counted(handle& h, const std::string& channel,
                                              const std::string& tag,
                                              std::chrono::milliseconds bound, bool shard = false) {
    const auto until = std::chrono::steady_clock::now() + bound;
    for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
      if (co_await publish(h, channel, tag + std::to_string(i), shard)) co_return true;
      co_await sleep_for(50ms);
    }
    co_return false;
  }

  // 20 more messages on `channel`, then every counted one must have been received.
  asio::awaitable<void> publish_more_and_check(handle& h, const std::string& channel) {
    for (int i = 0; i < 20; ++i)
      co_await publish(h, channel, "more-" + std::to_string(i));
    const auto lost = co_await missing();
    CAPTURE(lost);
    CHECK(lost.empty());
    CHECK(counted.size() >= 22);
  }

  // Waits (at most 5 s) until every counted message was received; the ones missing.
  asio::awaitable<std::vector<std::string>> missing() {
    std::vector<std::string> lost;
    for (int i = 0; i < 100; ++i) {
      lost.clear();
      for (const auto& m : counted)
        if (!received.count(m)) lost.push_back(m);
      if (lost.empty()) break;
      co_await sleep_for(50ms);
    }
    co_return lost;
  }
};

}  // namespace

TEST_CASE("handle_subscriber on a server: after SIGKILL and restart the subscription is back",
          "[handle][subscriber][failure]") {
  redis_server server;
  with_handle(local_config(server.port()), [&](handle& h) -> asio::awaitable<void> {
    handle_subscriber sub(h);
    ledger log;
    log.listen(sub);
    const strings channels{"events"};
    co_await sub.async_subscribe(channels, use_awaitable);
    CHECK(co_await log.publish_until_counted(h, "events", "before-", 5s));

    server.kill();
    // Down: a publish fails (counted as not delivered), nothing hangs.
    CHECK_FALSE(co_await log.publish(h, "events", "while-down"));
    server.restart();
    // Back by itself: a publish is counted within the reconnect backoff.
    CHECK(co_await log.publish_until_counted(h, "events", "after-", 10s));
    co_await log.publish_more_and_check(h, "events");
    sub.close();
  });
}

TEST_CASE("handle_subscriber on a cluster: shard channels follow their primary's restart",
          "[handle][subscriber][cluster][failure]") {
  redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  with_handle(config_for(cluster), [&](handle& h) -> asio::awaitable<void> {
    handle_subscriber sub(h);
    ledger log;
    log.listen(sub);
    // Shard channels spread over the three primaries, and one plain channel.
    const strings shard{"room:{a}", "room:{b}", "room:{c}", "room:{d}"}, plain{"news"};
    co_await sub.async_ssubscribe(shard, use_awaitable);
    co_await sub.async_subscribe(plain, use_awaitable);
    for (const auto& c : shard)
      CHECK(co_await log.publish_until_counted(h, c, "before-", 5s, true));
    CHECK(co_await log.publish_until_counted(h, "news", "before-", 5s));

    // The owner of room:{a} is killed and restarted (no replica: the cluster fails until it
    // is back, then it owns its slots again).
    const auto owner = cluster.owner_of(proto::key_slot("room:{a}"));
    cluster.server_on(owner).kill();
    CHECK_FALSE(co_await log.publish(h, "room:{a}", "while-down", true));
    cluster.server_on(owner).restart();
    REQUIRE(cluster.wait_healthy());
    for (const auto& c : shard)
      CHECK(co_await log.publish_until_counted(h, c, "after-", 15s, true));
    CHECK(co_await log.publish_until_counted(h, "news", "after-", 15s));
    const auto lost = co_await log.missing();
    CAPTURE(lost);
    CHECK(lost.empty());
    sub.close();
  });
}

TEST_CASE("handle_subscriber on a Sentinel-managed primary follows it through a failover",
          "[handle][subscriber][sentinel][failure]") {
  redis_sentinel d;
  REQUIRE(d.wait_ready(20s));
  auto cfg = config_for(d);
  cfg.node.connect_timeout = 2s;
  with_handle(
      cfg,
      [&](handle& h) -> asio::awaitable<void> {
        handle_subscriber sub(h);
        ledger log;
        log.listen(sub);
        const strings channels{"events"};
        co_await sub.async_subscribe(channels, use_awaitable);
        CHECK(co_await log.publish_until_counted(h, "events", "before-", 5s));

        const std::uint16_t old = d.agreed_primary();
        d.server_on(old).kill();
        const std::uint16_t promoted = d.wait_primary(20000ms, old);
        REQUIRE(promoted != 0);
        // The handle and the subscriber both reach the promoted primary: a publish there is
        // counted, and received.
        CHECK(co_await log.publish_until_counted(h, "events", "after-", 20s));
        co_await log.publish_more_and_check(h, "events");
        sub.close();
      },
      120s);
}
