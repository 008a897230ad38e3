#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::pubsub_message;
using redcoro::subscriber;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run_bounded;
using redcoro::test::sleep_for;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;
using kind = pubsub_message::kind;
using strings = std::vector<std::string>;

namespace {

// The next message, skipping confirmations.
awaitable<pubsub_message> next_message(subscriber& sub) {
  for (;;) {
    auto m = co_await sub.async_receive(use_awaitable);
    if (m.is_message()) co_return m;
  }
}

// Waits (bounded) until `ready()` holds.
awaitable<bool> eventually(const std::function<bool()>& ready) {
  for (int i = 0; i < 1000; ++i) {
    if (ready()) co_return true;
    co_await sleep_for(10ms);
  }
  co_return ready();
}

// After a restart: publishes until one subscriber received it (the publisher reconnects
// too), a bounded number of times.
awaitable<bool> publish_to_one(connection& pub, std::string_view channel,
                               std::string_view payload) {
  for (int i = 0; i < 500; ++i) {
    redcoro::error_code ec;
    auto n = co_await pub.async_exec(cmd::publish(channel, payload),
                                     asio::redirect_error(use_awaitable, ec));
    if (!ec && n.has_value() && n.value() == 1) co_return true;
    co_await sleep_for(10ms);
  }
  co_return false;
}

}  // namespace

TEST_CASE("channels and patterns: order, content, receiver counts, unsubscribe", "[pubsub][live]") {
  redis_server server;
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  connection pub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    pub.async_run(asio::detached);
    const strings channels{"a", "b"}, patterns{"news.*"};
    co_await sub.async_subscribe(channels, use_awaitable);
    co_await sub.async_psubscribe(patterns, use_awaitable);
    // The confirmations come first, in order.
    auto c1 = co_await sub.async_receive(use_awaitable);
    auto c2 = co_await sub.async_receive(use_awaitable);
    auto c3 = co_await sub.async_receive(use_awaitable);
    CHECK(c1.what == kind::subscribe);
    CHECK(c1.channel == "a");
    CHECK(c2.channel == "b");
    CHECK(c2.count == 2);
    CHECK(c3.what == kind::psubscribe);
    CHECK(c3.count == 3);
    CHECK_FALSE(c1.resubscribed);

    for (int i = 0; i < 100; ++i) {
      const std::string channel = i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "news.sport";
      auto receivers =
          co_await pub.async_exec(cmd::publish(channel, "m" + std::to_string(i)), use_awaitable);
      CHECK(receivers.value() == 1);
    }
    for (int i = 0; i < 100; ++i) {
      auto m = co_await sub.async_receive(use_awaitable);
      REQUIRE(m.is_message());
      CHECK(m.payload == "m" + std::to_string(i));
      if (i % 3 == 2) {
        CHECK(m.what == kind::pmessage);
        CHECK(m.pattern == "news.*");
        CHECK(m.channel == "news.sport");
      } else {
        CHECK(m.what == kind::message);
        CHECK(m.channel == (i % 3 == 0 ? "a" : "b"));
      }
    }

    const strings only_a{"a"};
    co_await sub.async_unsubscribe(only_a, use_awaitable);
    CHECK(sub.channels() == std::set<std::string, std::less<>>{"b"});
    auto nobody = co_await pub.async_exec(cmd::publish("a", "lost"), use_awaitable);
    CHECK(nobody.value() == 0);
    auto numsub = co_await pub.async_exec(cmd::pubsub_numsub(channels), use_awaitable);
    CHECK(numsub.value() == std::vector<std::pair<std::string, std::int64_t>>{{"a", 0}, {"b", 1}});
    co_await pub.async_exec(cmd::publish("b", "still here"), use_awaitable);
    auto m = co_await next_message(sub);
    CHECK(m.payload == "still here");
    sub.close();
    pub.close();
  });
}

TEST_CASE("shard channels, and commands beside messages on one connection", "[pubsub][live]") {
  redis_server server;
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    const strings shards{"orders"};
    co_await sub.async_ssubscribe(shards, use_awaitable);
    auto& conn = sub.next_layer();
    // The subscriber's own connection publishes, reads and writes between the messages.
    for (int i = 0; i < 20; ++i) {
      auto [n, set, get] = co_await conn.async_exec(
          redcoro::pipeline(cmd::spublish("orders", std::to_string(i)),
                            cmd::set("k", std::to_string(i)), cmd::get("k")),
          use_awaitable);
      CHECK(n.value() == 1);
      CHECK(get.value() == std::to_string(i));
    }
    for (int i = 0; i < 20; ++i) {
      auto m = co_await next_message(sub);
      CHECK(m.what == kind::smessage);
      CHECK(m.channel == "orders");
      CHECK(m.payload == std::to_string(i));
    }
    auto shard_list = co_await conn.async_exec(cmd::pubsub_shardchannels(), use_awaitable);
    CHECK(shard_list.value() == strings{"orders"});
    sub.close();
  });
}

TEST_CASE("after a server restart the subscriber re-subscribes before new messages",
          "[pubsub][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  connection pub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    pub.async_run(asio::detached);
    const strings channels{"events"}, patterns{"game.*"};
    co_await sub.async_subscribe(channels, use_awaitable);
    co_await sub.async_psubscribe(patterns, use_awaitable);
    co_await sub.async_receive(use_awaitable);  // the two confirmations
    co_await sub.async_receive(use_awaitable);

    server.kill();
    server.restart();
    // Both subscriptions come back on their own, marked as such.
    auto r1 = co_await sub.async_receive(use_awaitable);
    auto r2 = co_await sub.async_receive(use_awaitable);
    CHECK(r1.what == kind::subscribe);
    CHECK(r1.resubscribed);
    CHECK(r2.what == kind::psubscribe);
    CHECK(r2.resubscribed);
    const bool sent = co_await publish_to_one(pub, "events", "after");
    REQUIRE(sent);
    co_await pub.async_exec(cmd::publish("game.1", "also after"), use_awaitable);
    auto m1 = co_await next_message(sub);
    auto m2 = co_await next_message(sub);
    CHECK(m1.payload == "after");
    CHECK(m2.payload == "also after");
    CHECK(m2.pattern == "game.*");
    sub.close();
    pub.close();
  });
}

TEST_CASE("a slow consumer under each overflow policy", "[pubsub][live][backpressure]") {
  redis_server server;
  asio::io_context ioc;
  const strings channels{"firehose"};

  SECTION("drop_oldest keeps the newest, and counts exactly what it dropped") {
    redcoro::subscriber_config opts;
    opts.capacity = 10;
    opts.overflow = redcoro::overflow_policy::drop_oldest;
    subscriber sub(ioc, local_config(server.port()), opts);
    connection pub(ioc, local_config(server.port()));
    run_bounded(ioc, [&]() -> awaitable<void> {
      sub.async_run(asio::detached);
      pub.async_run(asio::detached);
      co_await sub.async_subscribe(channels, use_awaitable);
      co_await sub.async_receive(use_awaitable);  // the confirmation
      for (int i = 0; i < 100; ++i)
        co_await pub.async_exec(cmd::publish("firehose", std::to_string(i)), use_awaitable);
      const bool all_seen =
          co_await eventually([&] { return sub.dropped() + sub.buffered() == 100; });
      REQUIRE(all_seen);
      CHECK(sub.dropped() == 90);
      const auto full = sub.message_stats();
      CHECK(full.messages == 100);
      CHECK(full.dropped == 90);
      CHECK(full.buffered == 10);
      CHECK(full.overflow_disconnects == 0);
      for (int i = 90; i < 100; ++i) {
        auto m = co_await sub.async_receive(use_awaitable);
        CHECK(m.payload == std::to_string(i));
      }
      CHECK(sub.message_stats().buffered == 0);
      sub.close();
      pub.close();
    });
  }

  SECTION("wait drops nothing: the server holds what the client does not read") {
    redcoro::subscriber_config opts;
    opts.capacity = 10;
    subscriber sub(ioc, local_config(server.port()), opts);
    connection pub(ioc, local_config(server.port()));
    run_bounded(ioc, [&]() -> awaitable<void> {
      sub.async_run(asio::detached);
      pub.async_run(asio::detached);
      co_await sub.async_subscribe(channels, use_awaitable);
      co_await sub.async_receive(use_awaitable);
      for (int i = 0; i < 1000; ++i)
        co_await pub.async_exec(cmd::publish("firehose", std::to_string(i)), use_awaitable);
      co_await sleep_for(50ms);
      // Full, and it stopped reading (after the read that filled it): the server holds the rest.
      CHECK(sub.buffered() >= 10);
      CHECK(sub.buffered() < 1000);
      for (int i = 0; i < 1000; ++i) {
        auto m = co_await sub.async_receive(use_awaitable);
        CHECK(m.payload == std::to_string(i));
      }
      CHECK(sub.dropped() == 0);
      sub.close();
      pub.close();
    });
  }

  SECTION("disconnect drops the connection, then re-subscribes") {
    redcoro::subscriber_config opts;
    opts.capacity = 10;
    opts.overflow = redcoro::overflow_policy::disconnect;
    subscriber sub(ioc, local_config(server.port()), opts);
    connection pub(ioc, local_config(server.port()));
    run_bounded(ioc, [&]() -> awaitable<void> {
      sub.async_run(asio::detached);
      pub.async_run(asio::detached);
      co_await sub.async_subscribe(channels, use_awaitable);
      co_await sub.async_receive(use_awaitable);
      for (int i = 0; i < 11; ++i)
        co_await pub.async_exec(cmd::publish("firehose", std::to_string(i)), use_awaitable);
      const bool overflowed = co_await eventually([&] { return sub.overflow_disconnects() == 1; });
      REQUIRE(overflowed);
      CHECK(sub.dropped() == 1);
      CHECK(sub.message_stats().messages == 11);
      CHECK(sub.message_stats().overflow_disconnects == 1);
      for (int i = 0; i < 10; ++i) {  // what was buffered stays
        auto m = co_await sub.async_receive(use_awaitable);
        CHECK(m.payload == std::to_string(i));
      }
      auto again = co_await sub.async_receive(use_awaitable);
      CHECK(again.what == kind::subscribe);
      CHECK(again.resubscribed);
      sub.close();
      pub.close();
    });
  }
}

TEST_CASE("keyspace notifications through the channel helpers", "[pubsub][live]") {
  redis_server server({"--notify-keyspace-events", "KEA"});
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    const strings patterns{redcoro::keyspace_channel(0, "user:*")};
    const strings events{redcoro::keyevent_channel(0, "del")};
    co_await sub.async_psubscribe(patterns, use_awaitable);
    co_await sub.async_subscribe(events, use_awaitable);
    co_await sub.next_layer().async_exec(cmd::set("user:1", "x"), use_awaitable);
    co_await sub.next_layer().async_exec(cmd::del("user:1"), use_awaitable);
    auto set = co_await next_message(sub);
    CHECK(set.channel == "__keyspace@0__:user:1");
    CHECK(set.payload == "set");
    auto del_space = co_await next_message(sub);
    auto del_event = co_await next_message(sub);
    CHECK(del_space.payload == "del");
    CHECK(del_event.channel == "__keyevent@0__:del");
    CHECK(del_event.payload == "user:1");
    sub.close();
  });
}

TEST_CASE("RESP2: a server without HELLO gets a dedicated pub/sub connection",
          "[pubsub][live][resp2]") {
  redis_server server({"--rename-command", "HELLO", ""});
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  connection pub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    pub.async_run(asio::detached);
    const strings channels{"legacy"}, patterns{"old.*"};
    co_await sub.async_subscribe(channels, use_awaitable);
    co_await sub.async_psubscribe(patterns, use_awaitable);
    CHECK(sub.next_layer().protocol() == 2);
    // Exactly one confirmation each: the refused HELLO ran nothing else.
    auto c1 = co_await sub.async_receive(use_awaitable);
    auto c2 = co_await sub.async_receive(use_awaitable);
    CHECK(c1.what == kind::subscribe);
    CHECK_FALSE(c1.resubscribed);
    CHECK(c2.what == kind::psubscribe);
    CHECK_FALSE(c2.resubscribed);
    co_await pub.async_exec(cmd::publish("legacy", "one"), use_awaitable);
    co_await pub.async_exec(cmd::publish("old.news", "two"), use_awaitable);
    auto m1 = co_await next_message(sub);
    auto m2 = co_await next_message(sub);
    CHECK(m1.what == kind::message);
    CHECK(m1.payload == "one");
    CHECK(m2.what == kind::pmessage);
    CHECK(m2.pattern == "old.*");
    CHECK(m2.payload == "two");

    // A restart: re-subscribed inside the RESP2 handshake too.
    server.kill();
    server.restart();
    auto r1 = co_await sub.async_receive(use_awaitable);
    auto r2 = co_await sub.async_receive(use_awaitable);
    CHECK(r1.what == kind::subscribe);
    CHECK(r1.resubscribed);
    CHECK(r2.what == kind::psubscribe);
    CHECK(r2.resubscribed);
    const bool sent = co_await publish_to_one(pub, "legacy", "after");
    REQUIRE(sent);
    // The next thing is the message: no second round of confirmations.
    auto m3 = co_await sub.async_receive(use_awaitable);
    CHECK(m3.what == kind::message);
    CHECK(m3.payload == "after");
    sub.close();
    pub.close();
  });
}

TEST_CASE("calls at the same time each complete, and an empty SUBSCRIBE is refused",
          "[pubsub][live]") {
  redis_server server;
  asio::io_context ioc;
  subscriber sub(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    // Four calls waiting for confirmations together.
    int done = 0;
    redcoro::error_code failed;
    auto call = [&](auto start) {
      start([&](redcoro::error_code ec) {
        if (ec) failed = ec;
        ++done;
      });
    };
    const strings a{"a1", "a2"}, p{"p.*"}, s{"s1"}, a3{"a3"};
    call([&](auto h) { sub.async_subscribe(a, h); });
    call([&](auto h) { sub.async_psubscribe(p, h); });
    call([&](auto h) { sub.async_ssubscribe(s, h); });
    call([&](auto h) { sub.async_subscribe(a3, h); });
    for (int i = 0; i < 500 && done < 4; ++i)
      co_await sleep_for(10ms);
    CHECK(done == 4);
    CHECK_FALSE(failed);

    redcoro::error_code ec;
    const strings none, after{"after"};
    co_await sub.async_subscribe(none, asio::redirect_error(use_awaitable, ec));
    CHECK(ec == asio::error::invalid_argument);
    // The connection is still in order: one more subscription is confirmed.
    co_await sub.async_subscribe(after, use_awaitable);
    sub.close();
  });
}

TEST_CASE("close() ends a waiting receive even when the subscriber never ran", "[pubsub]") {
  asio::io_context ioc;
  subscriber sub(ioc, local_config(1));
  bool ended = false;
  redcoro::error_code got;
  sub.async_receive([&](redcoro::error_code ec, pubsub_message) {
    ended = true;
    got = ec;
  });
  sub.close();
  redcoro::test::run_until_idle(ioc, std::chrono::seconds(5));
  CHECK(ended);
  CHECK(got == redcoro::error::closed);
}

TEST_CASE("a SUBSCRIBE the server refuses fails with its reply and the connection stays usable",
          "[pubsub][live]") {
  redis_server server;
  asio::io_context ioc;
  connection admin(ioc, local_config(server.port()));
  auto cfg = local_config(server.port());
  cfg.username = "reader";
  cfg.password = "pw";
  subscriber sub(ioc, cfg);
  run_bounded(ioc, [&]() -> awaitable<void> {
    admin.async_run(asio::detached);
    // "reader" may use the channels "ok*" only, and not PSUBSCRIBE.
    redcoro::proto::request acl;
    acl.push("ACL", "SETUSER", "reader", "on", ">pw", "+@all", "-psubscribe", "~*", "resetchannels",
             "&ok*");
    redcoro::proto::generic_response r;
    co_await admin.async_exec(acl, r, use_awaitable);
    REQUIRE(r.at(0).has_value());
    sub.async_run(asio::detached);

    redcoro::error_code ec;
    const strings mixed{"ok1", "secret"}, fine{"ok2"};
    std::string refusal;
    co_await sub.async_subscribe(mixed, refusal, asio::redirect_error(use_awaitable, ec));
    CHECK(ec == redcoro::proto::error::server_error);
    CHECK(refusal.rfind("NOPERM", 0) == 0);
    CHECK(sub.channels().empty());  // neither is held, nor subscribed again on reconnect
    // Two calls refused at once, for different reasons: each gets its own reply.
    std::string refusal1, refusal2;
    redcoro::error_code ec1, ec2;
    int done = 0;
    const strings one{"secret1"}, two{"ok*"};
    sub.async_subscribe(one, refusal1, [&](redcoro::error_code e) {
      ec1 = e;
      ++done;
    });
    sub.async_psubscribe(two, refusal2, [&](redcoro::error_code e) {
      ec2 = e;
      ++done;
    });
    asio::steady_timer pause(ioc);
    for (int i = 0; i < 500 && done < 2; ++i) {
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(use_awaitable);
    }
    REQUIRE(done == 2);
    CHECK(ec1 == redcoro::proto::error::server_error);
    CHECK(ec2 == redcoro::proto::error::server_error);
    CHECK(refusal1.find("channel") != std::string::npos);     // "... access one of the channels"
    CHECK(refusal2.find("psubscribe") != std::string::npos);  // "... run the 'psubscribe' command"
    CHECK(refusal1 != refusal2);
    CHECK(sub.patterns().empty());
    // The connection is still in order: the next subscription, a command, and a message.
    co_await sub.async_subscribe(fine, use_awaitable);
    CHECK(sub.channels() == std::set<std::string, std::less<>>{"ok2"});
    auto pong = co_await sub.next_layer().async_exec(cmd::ping(), use_awaitable);
    CHECK(pong.value() == "PONG");
    co_await admin.async_exec(cmd::publish("ok2", "hi"), use_awaitable);
    auto m = co_await next_message(sub);
    CHECK(m.payload == "hi");
    sub.close();
    admin.close();
  });
}

TEST_CASE("on_message: messages in order on the subscriber's executor, across a restart",
          "[pubsub][live][failure]") {
  redis_server server;
  asio::io_context ioc;
  // The subscriber on a strand of its own: the callback must run inside it.
  auto strand = asio::make_strand(ioc);
  subscriber sub(strand, local_config(server.port()));
  connection pub(ioc, local_config(server.port()));
  std::vector<pubsub_message> got;
  std::size_t off_executor = 0;
  run_bounded(ioc, [&]() -> awaitable<void> {
    co_await asio::co_spawn(
        strand,
        [&]() -> awaitable<void> {
          sub.async_run(asio::detached);
          sub.on_message([&](const pubsub_message& m) {
            if (!strand.running_in_this_thread()) ++off_executor;
            got.push_back(m);
          });
          const strings channels{"ch"}, patterns{"pat.*"};
          co_await sub.async_subscribe(channels, use_awaitable);
          co_await sub.async_psubscribe(patterns, use_awaitable);
        },
        use_awaitable);
    pub.async_run(asio::detached);

    // 200 messages, on the channel and on the pattern in turn.
    const auto publish = [&](int from, int to) -> awaitable<void> {
      for (int i = from; i < to; ++i) {
        const auto receivers = co_await pub.async_exec(
            cmd::publish(i % 2 == 0 ? "ch" : "pat.x", "m" + std::to_string(i)), use_awaitable);
        CHECK(receivers.value() == 1);
      }
    };
    co_await publish(0, 200);
    const bool all = co_await eventually([&] { return got.size() >= 200; });
    REQUIRE(all);

    // A restart: the subscriber re-subscribes by itself; the callback goes on.
    server.kill();
    server.restart();
    const bool back = co_await publish_to_one(pub, "ch", "m200");
    REQUIRE(back);
    const bool pattern_back = co_await publish_to_one(pub, "pat.x", "m201");
    REQUIRE(pattern_back);
    co_await publish(202, 300);
    const bool rest = co_await eventually([&] { return got.size() >= 300; });
    REQUIRE(rest);

    // Only messages (no confirmation, first or re-subscribed), each once, in order.
    CHECK(got.size() == 300);
    CHECK(off_executor == 0);
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("message " << i);
      CHECK(got[i].is_message());
      CHECK(got[i].payload == "m" + std::to_string(i));
      CHECK(got[i].what == (i % 2 == 0 ? kind::message : kind::pmessage));
      CHECK(got[i].channel == (i % 2 == 0 ? "ch" : "pat.x"));
    }
    co_await asio::co_spawn(
        strand,
        [&]() -> awaitable<void> {
          sub.close();
          co_return;
        },
        use_awaitable);
    pub.close();
  });
}

TEST_CASE("keyspace notifications name keys without the connection's key prefix",
          "[pubsub][live][prefix]") {
  redis_server server({"--notify-keyspace-events", "KEA"});
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "svc:";
  subscriber sub(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    sub.async_run(asio::detached);
    raw.async_run(asio::detached);
    // Channels never get the prefix: the subscriptions name the server's key names.
    const strings patterns{redcoro::keyspace_channel(0, "svc:user:*")};
    const strings events{redcoro::keyevent_channel(0, "del")};
    co_await sub.async_psubscribe(patterns, use_awaitable);
    co_await sub.async_subscribe(events, use_awaitable);
    co_await sub.next_layer().async_exec(cmd::set("user:1", "x"), use_awaitable);
    co_await sub.next_layer().async_exec(cmd::del("user:1"), use_awaitable);
    co_await raw.async_exec(cmd::set("other:1", "x"), use_awaitable);
    co_await raw.async_exec(cmd::del("other:1"), use_awaitable);  // not under the prefix
    auto set = co_await next_message(sub);
    CHECK(set.channel == "__keyspace@0__:user:1");
    CHECK(set.pattern == "__keyspace@0__:svc:user:*");
    CHECK(set.payload == "set");
    auto del_space = co_await next_message(sub);
    CHECK(del_space.channel == "__keyspace@0__:user:1");
    auto del_event = co_await next_message(sub);
    CHECK(del_event.channel == "__keyevent@0__:del");
    CHECK(del_event.payload == "user:1");
    auto other = co_await next_message(sub);
    CHECK(other.channel == "__keyevent@0__:del");
    CHECK(other.payload == "other:1");
    sub.close();
    raw.close();
  });
}
