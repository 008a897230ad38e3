// cluster_subscriber against real clusters on loopback (3 primaries, 3 replicas): shard
// channels on their owners, and following them across a slot move, a failover and a
// primary killed.

#include "support/cluster_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <exception>
#include <functional>
#include <set>
#include <string>
#include <vector>

using namespace redcoro;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
using kind = pubsub_message::kind;
using strings = std::vector<std::string>;
using test::sleep_for;

namespace {

cluster_config subscribing_cluster_config(const test::redis_cluster& c) {
  auto cfg = test::config_for(c);
  cfg.node.request_timeout = 5s;
  return cfg;
}

void with_subscriber(const cluster_config& cfg,
                     const std::function<awaitable<void>(cluster_subscriber&)>& body,
                     std::chrono::seconds limit = 60s) {
  test::with_running<cluster_subscriber>(cfg, body, limit);
}

// Everything received so far, without waiting.
std::vector<pubsub_message> drain(cluster_subscriber& sub) {
  std::vector<pubsub_message> out;
  while (auto m = sub.try_receive())
    out.push_back(std::move(*m));
  return out;
}

// Publishes `payload` on `channel` (SPUBLISH when `shard`) until the subscriber receives it:
// at most `limit`. Everything it received on the way is appended to `seen`.
awaitable<bool> publish_until_received(cluster_subscriber& sub, const std::string& channel,
                                       const std::string& payload, bool shard,
                                       std::vector<pubsub_message>& seen,
                                       std::chrono::seconds limit = 30s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    error_code ec;
    auto command = shard ? cmd::spublish(channel, payload) : cmd::publish(channel, payload);
    co_await sub.next_layer().async_exec(std::move(command),
                                         asio::redirect_error(use_awaitable, ec));
    co_await sleep_for(50ms);
    for (auto& m : drain(sub)) {
      const bool hit = m.is_message() && m.channel == channel && m.payload == payload;
      seen.push_back(std::move(m));
      if (hit) co_return true;
    }
  }
  co_return false;
}

// A key name whose slot the primary on `port` serves.
std::string channel_on(const test::redis_cluster& c, std::uint16_t port, std::string_view stem) {
  for (int i = 0;; ++i) {
    std::string name = std::string(stem) + std::to_string(i);
    if (c.owner_of(proto::key_slot(name)) == port) return name;
  }
}

std::uint16_t port_of(const std::optional<node_address>& a) {
  return a ? a->port : 0;
}

}  // namespace

TEST_CASE("cluster subscriber: shard channels on their owners, channels and patterns on one node",
          "[pubsub][cluster]") {
  test::redis_cluster c;
  with_subscriber(subscribing_cluster_config(c), [&](cluster_subscriber& sub) -> awaitable<void> {
    strings shard;
    for (int i = 0; i < 12; ++i)
      shard.push_back("orders:" + std::to_string(i));
    co_await sub.async_ssubscribe(shard, use_awaitable);
    std::set<std::uint16_t> nodes;
    for (const auto& ch : shard) {
      CHECK(port_of(sub.node_of(ch)) == c.owner_of(proto::key_slot(ch)));
      nodes.insert(port_of(sub.node_of(ch)));
    }
    CHECK(nodes.size() == 3);  // 12 channels over 3 primaries

    const strings plain{"news"}, pattern{"ev.*"};
    co_await sub.async_subscribe(plain, use_awaitable);
    co_await sub.async_psubscribe(pattern, use_awaitable);
    REQUIRE(sub.home());

    // Every message, once, whatever node it came through.
    for (const auto& ch : shard) {
      auto n = co_await sub.next_layer().async_exec(cmd::spublish(ch, "m:" + ch), use_awaitable);
      CHECK(n.value() == 1);
    }
    co_await sub.next_layer().async_exec(cmd::publish("news", "hello"), use_awaitable);
    co_await sub.next_layer().async_exec(cmd::publish("ev.1", "event"), use_awaitable);
    std::multiset<std::string> payloads;
    int confirmations = 0;
    for (int got = 0; got < 14;) {
      auto m = co_await sub.async_receive(use_awaitable);
      if (!m.is_message()) {
        ++confirmations;
        CHECK_FALSE(m.resubscribed);
        continue;
      }
      ++got;
      payloads.insert(m.payload);
      if (m.what == kind::smessage) CHECK(m.payload == "m:" + m.channel);
      if (m.what == kind::pmessage) CHECK(m.pattern == "ev.*");
    }
    CHECK(confirmations == 14);
    CHECK(payloads.size() == 14);
    CHECK(payloads.count("hello") == 1);
    CHECK(payloads.count("event") == 1);

    // Every node drops its subscribers: each node subscriber reconnects and subscribes again
    // to its channels, one SSUBSCRIBE per slot (a node refuses one that spans slots).
    for (std::uint16_t p : nodes)
      c.server_on(p).cli({"CLIENT", "KILL", "TYPE", "pubsub"});
    std::vector<pubsub_message> seen;
    for (const auto& ch : shard)
      CHECK(co_await publish_until_received(sub, ch, "again:" + ch, true, seen));

    // Unsubscribed: nobody receives it any more.
    const strings one{shard[0]};
    co_await sub.async_sunsubscribe(one, use_awaitable);
    CHECK_FALSE(sub.node_of(shard[0]));
    auto n = co_await sub.next_layer().async_exec(cmd::spublish(shard[0], "x"), use_awaitable);
    CHECK(n.value() == 0);
    CHECK(sub.shard_channels().size() == 11);
  });
}

TEST_CASE("cluster subscriber: a shard channel follows its slot to another primary",
          "[pubsub][cluster]") {
  test::redis_cluster c;
  const std::string ch = "moving:channel";
  const int slot = proto::key_slot(ch);
  const std::uint16_t source = c.owner_of(slot);
  std::uint16_t target = 0;
  std::string target_id, source_id;
  std::vector<std::uint16_t> primaries;
  for (const auto& n : c.nodes()) {
    if (!n.primary) continue;
    primaries.push_back(n.port);
    if (n.port == source) source_id = n.id;
    if (n.port != source && !target) {
      target = n.port;
      target_id = n.id;
    }
  }
  with_subscriber(subscribing_cluster_config(c), [&](cluster_subscriber& sub) -> awaitable<void> {
    const strings list{ch};
    co_await sub.async_ssubscribe(list, use_awaitable);
    CHECK(port_of(sub.node_of(ch)) == source);
    std::vector<pubsub_message> seen;
    CHECK(co_await publish_until_received(sub, ch, "before", true, seen));

    // The slot (empty) moves by hand, as redis-cli --cluster reshard would move it.
    const std::string s = std::to_string(slot);
    c.server_on(target).cli({"CLUSTER", "SETSLOT", s, "IMPORTING", source_id});
    c.server_on(source).cli({"CLUSTER", "SETSLOT", s, "MIGRATING", target_id});
    c.server_on(target).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    for (std::uint16_t p : primaries)
      if (p != target) c.server_on(p).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    REQUIRE(c.owner_of(slot) == target);

    // Published after the move, it arrives: the subscriber followed the slot.
    CHECK(co_await publish_until_received(sub, ch, "after", true, seen));
    CHECK(port_of(sub.node_of(ch)) == target);
    CHECK(sub.stats().shard_moves >= 1);
    // The source said it dropped the channel; the new subscription is marked as the
    // subscriber's own doing.
    bool dropped = false, resubscribed = false;
    for (const auto& m : seen) {
      dropped = dropped || (m.what == kind::sunsubscribe && m.channel == ch && !m.resubscribed);
      resubscribed =
          resubscribed || (m.what == kind::ssubscribe && m.channel == ch && m.resubscribed);
    }
    CHECK(dropped);
    CHECK(resubscribed);
    CHECK(sub.shard_channels() == std::set<std::string, std::less<>>{ch});
  });
}

TEST_CASE("cluster subscriber: a shard channel follows a failover", "[pubsub][cluster]") {
  test::redis_cluster c;
  const std::string ch = "failover:channel";
  const std::uint16_t old_primary = c.owner_of(proto::key_slot(ch));
  const std::uint16_t promoted = c.replicas_of(old_primary).at(0);
  with_subscriber(
      subscribing_cluster_config(c),
      [&](cluster_subscriber& sub) -> awaitable<void> {
        const strings list{ch};
        co_await sub.async_ssubscribe(list, use_awaitable);
        std::vector<pubsub_message> seen;
        CHECK(co_await publish_until_received(sub, ch, "before", true, seen));
        CHECK(c.server_on(promoted).cli({"CLUSTER", "FAILOVER"}).find("OK") != std::string::npos);
        for (int i = 0; i < 100 && c.owner_of(proto::key_slot(ch)) != promoted; ++i)
          co_await sleep_for(100ms);
        REQUIRE(c.owner_of(proto::key_slot(ch)) == promoted);

        // Published on the new primary, it arrives: through the old one, now its replica,
        // until the subscriber moved.
        connection& direct = sub.next_layer().node({"127.0.0.1", promoted});
        bool received = false;
        for (int i = 0; i < 200 && !received; ++i) {
          co_await direct.async_exec(cmd::spublish(ch, "after"), use_awaitable);
          co_await sleep_for(50ms);
          for (const auto& m : drain(sub))
            received = received || (m.is_message() && m.payload == "after");
        }
        CHECK(received);
        const auto at = port_of(sub.node_of(ch));
        CHECK((at == promoted || at == old_primary));

        // Once the cluster_topology is read again, it is on the new primary.
        for (int i = 0; i < 100 && port_of(sub.node_of(ch)) != promoted; ++i) {
          sub.next_layer().refresh();
          co_await sleep_for(100ms);
        }
        CHECK(port_of(sub.node_of(ch)) == promoted);
        CHECK(co_await publish_until_received(sub, ch, "moved", true, seen));
      },
      90s);
}

TEST_CASE("cluster subscriber: SIGKILL of the node that holds everything", "[pubsub][cluster]") {
  test::redis_cluster c;
  auto cfg = subscribing_cluster_config(c);
  cfg.node.request_timeout = 2s;
  with_subscriber(
      cfg,
      [&](cluster_subscriber& sub) -> awaitable<void> {
        const strings plain{"news"};
        co_await sub.async_subscribe(plain, use_awaitable);
        REQUIRE(sub.home());
        const std::uint16_t victim = sub.home()->port;
        // A shard channel on the same node.
        const std::string ch = channel_on(c, victim, "killed:");
        const strings list{ch};
        co_await sub.async_ssubscribe(list, use_awaitable);
        REQUIRE(port_of(sub.node_of(ch)) == victim);
        std::vector<pubsub_message> seen;
        CHECK(co_await publish_until_received(sub, ch, "before", true, seen));

        c.kill(victim);
        // Both come back on live nodes once the cluster failed over: published after that,
        // they arrive.
        CHECK(co_await publish_until_received(sub, ch, "after", true, seen, 40s));
        CHECK(co_await publish_until_received(sub, "news", "after", false, seen, 20s));
        CHECK(port_of(sub.node_of(ch)) == c.owner_of(proto::key_slot(ch)));
        CHECK(port_of(sub.home()) != victim);
        CHECK(sub.stats().home_moves == 1);
        CHECK(sub.stats().shard_moves >= 1);
      },
      100s);
}

TEST_CASE("cluster subscriber: keyspace notifications without the key prefix",
          "[pubsub][cluster]") {
  test::redis_cluster c(3, 0);
  for (std::uint16_t p : c.ports())
    c.server_on(p).cli({"CONFIG", "SET", "notify-keyspace-events", "KEA"});
  auto cfg = subscribing_cluster_config(c);
  cfg.node.key_prefix = "app:";
  with_subscriber(cfg, [&](cluster_subscriber& sub) -> awaitable<void> {
    // Channels never get the prefix: the pattern names the server's key names.
    const strings space{"__keyspace@0__:app:*"}, event{"__keyevent@0__:set"};
    co_await sub.async_psubscribe(space, use_awaitable);
    co_await sub.async_subscribe(event, use_awaitable);
    REQUIRE(sub.home());
    // A node only notifies about its own keys: one whose prefixed name lives on the
    // subscriber's node.
    std::string key;
    for (int i = 0; key.empty(); ++i) {
      const std::string k = "user:" + std::to_string(i);
      if (c.owner_of(proto::key_slot("app:" + k)) == port_of(sub.home())) key = k;
    }
    co_await sub.next_layer().async_exec(cmd::set(key, "x"), use_awaitable);
    std::vector<pubsub_message> got;
    for (int i = 0; i < 200 && got.size() < 2; ++i) {
      for (auto& m : drain(sub))
        if (m.is_message()) got.push_back(std::move(m));
      if (got.size() < 2) co_await sleep_for(10ms);
    }
    REQUIRE(got.size() == 2);
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& m : got)
      seen.emplace(m.channel, m.payload);
    std::set<std::pair<std::string, std::string>> want;
    want.emplace("__keyspace@0__:" + key, "set");
    want.emplace("__keyevent@0__:set", key);
    CHECK(seen == want);
  });
}
