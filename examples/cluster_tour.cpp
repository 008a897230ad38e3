// Redis Cluster with redcoro: one client for the whole cluster, keys routed to their nodes,
// requests that span nodes split and answered in order; then pub/sub on shard channels.
//   cluster_tour [port]       (any node of a cluster on 127.0.0.1, port 7000 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using example::expect;
using redcoro::command;

asio::awaitable<void> session(redcoro::cluster_client& cl) {
  // A clean start: DEL over keys of several slots is split per slot, the counts added.
  const std::vector<std::string> mine = {"user:42:name", "{user:42}:visits", "{user:42}:logins",
                                         "item:0",       "item:1",           "item:2",
                                         "item:3",       "item:4",           "item:5"};
  co_await cl.async_exec(cmd::del(mine), asio::use_awaitable);

  // One command: it goes straight to the node that serves its key's slot.
  co_await cl.async_exec(cmd::set("user:42:name", "ada"), asio::use_awaitable);
  auto name = co_await cl.async_exec(cmd::get("user:42:name"), asio::use_awaitable);
  std::printf("user:42:name = %s\n", name.value().value_or("(nil)").c_str());
  expect(name.value() == "ada", "GET reads what SET wrote");

  // Keys with the same {hash tag} share a slot, so a transaction can use them together.
  auto tx = co_await cl.async_exec(
      redcoro::transaction(cmd::incr("{user:42}:visits"), cmd::incr("{user:42}:logins")),
      asio::use_awaitable);
  expect(tx.has_value() && tx.value().has_value(), "the hash-tagged transaction ran");
  auto& [visits, logins] = **tx;
  std::printf("visits %lld, logins %lld\n", static_cast<long long>(visits.value()),
              static_cast<long long>(logins.value()));
  expect(visits.value() == 1 && logins.value() == 1, "both counters were incremented");

  // Keys on every node: MSET and MGET are split per slot, the values come back in order.
  std::vector<std::string> pairs, keys;
  for (int i = 0; i < 6; ++i) {
    keys.push_back("item:" + std::to_string(i));
    pairs.push_back(keys.back());
    pairs.push_back("value " + std::to_string(i));
  }
  co_await cl.async_exec(cmd::mset(pairs), asio::use_awaitable);
  auto values = co_await cl.async_exec(cmd::mget(keys), asio::use_awaitable);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::printf("%s = %s\n", keys[i].c_str(), values.value()[i].value_or("(nil)").c_str());
    expect(values.value()[i] == "value " + std::to_string(i), "MGET gives the values in order");
  }

  // A pipeline over several nodes: sent in parallel, replies in the order written.
  auto [a, b, n] = co_await cl.async_exec(
      redcoro::pipeline(cmd::get("item:0"), cmd::get("item:5"), cmd::dbsize()),
      asio::use_awaitable);
  std::printf("item:0 %s, item:5 %s, keys in the whole cluster: %lld\n",
              a.value().value_or("-").c_str(), b.value().value_or("-").c_str(),
              static_cast<long long>(n.value()));
  expect(a.value() == "value 0" && b.value() == "value 5" && n.value() >= 9,
         "the pipeline's replies, in order, and DBSIZE summed over the primaries");

  // What cannot span slots is refused before anything is sent.
  auto refused = co_await cl.async_exec(command<std::int64_t>("MSETNX", "a", "1", "b", "2"),
                                        asio::use_awaitable);
  expect(refused.has_error(), "MSETNX over two slots is refused");
  std::printf("MSETNX a b: %s\n", refused.error().message.c_str());

  const auto& st = cl.stats();
  std::printf("%zu primaries; %zu requests split, %zu MOVED followed\n", cl.primaries().size(),
              st.split, st.moved);
}

asio::awaitable<void> shard_pubsub(redcoro::cluster_subscriber& sub) {
  // Each shard channel is subscribed on the primary that owns its slot (and follows the slot
  // if it moves).
  const std::vector<std::string> orders = {"orders:{eu}", "orders:{us}", "orders:{asia}"};
  co_await sub.async_ssubscribe(orders, asio::use_awaitable);
  for (const auto& ch : orders) {
    const auto node = sub.node_of(ch);
    expect(node.has_value(), "a subscribed shard channel has a node");
    std::printf("%s is subscribed on %s\n", ch.c_str(), node->to_string().c_str());
  }
  // SPUBLISH goes through the cluster client to the channel's slot.
  for (const auto& ch : orders) {
    auto receivers = co_await sub.next_layer().async_exec(cmd::spublish(ch, "order for " + ch),
                                                          asio::use_awaitable);
    expect(receivers.value() == 1, "one subscriber receives each SPUBLISH");
  }
  for (int got = 0; got < 3;) {
    auto m = co_await sub.async_receive(asio::use_awaitable);
    if (!m.is_message()) continue;  // the confirmations come first
    ++got;
    std::printf("%s: %s\n", m.channel.c_str(), m.payload.c_str());
    expect(
        m.what == redcoro::pubsub_message::kind::smessage && m.payload == "order for " + m.channel,
        "each shard message arrives with its channel");
  }
}

asio::awaitable<void> tour(redcoro::cluster_client& cl, redcoro::cluster_subscriber& sub) {
  co_await session(cl);
  co_await shard_pubsub(sub);
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::cluster_config cfg;
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 7000);
  cfg.seeds = {{"127.0.0.1", port}};  // list a few in production
  redcoro::cluster_client cl(ioc, cfg);
  cl.async_run(asio::detached);  // reads the topology, keeps it fresh until close()
  redcoro::cluster_subscriber sub(ioc, cfg);
  sub.async_run(asio::detached);
  return example::run("cluster_tour", ioc, tour(cl, sub), [&] {
    cl.close();
    sub.close();
  });
}
