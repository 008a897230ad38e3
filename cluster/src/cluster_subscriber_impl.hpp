#pragma once

// The cluster subscriber's engine, shared by its two source files: cluster_subscriber.cpp
// (the user's (un)subscribe calls: placing shard channels on their owners, messages, and the
// public members) and cluster_subscriber_follow.cpp (following the cluster: the run loop,
// moving subscriptions when slots or the home node move, retiring idle node subscribers).
// Private to the cluster module.

#include <redcoro/client/detail/log.hpp>
#include <redcoro/client/detail/spawn.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/proto/key_slot.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <map>
#include <tuple>

namespace redcoro::detail {

using asio::awaitable;
using names = std::vector<std::string>;

inline auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

inline constexpr int channels = 0, patterns = 1, shard = 2;

struct cluster_subscriber_impl {
  struct node_sub {
    explicit node_sub(const asio::any_io_executor& ex) : room(ex) {}
    node_address address;
    std::unique_ptr<subscriber> sub;
    asio::steady_timer room;  // its pump waits here while the shared queue is full
    bool run_done = false, pump_done = false;
  };
  // A confirmation this layer asked for itself: (node, kind of confirmation, name).
  using own_key = std::tuple<node_address, proto::pubsub_kind, std::string>;

  cluster_subscriber_impl(asio::any_io_executor e, cluster_config c, subscriber_config o)
      : ex(e),
        cfg(std::move(c)),
        opts(o),
        cl(e, cfg),
        queue(e, o),
        wake(e),
        log(cfg.node.logger ? cfg.node.logger : default_logger()) {
    queue.on_room = [this] { wake_pumps(); };
    cl.on_topology_change([this] { poke(); });
  }

  // --- node subscribers -------------------------------------------------------------------

  node_sub& node(const node_address& a);

  // Moves a node's messages into the shared queue, holding back while it is full under the
  // `wait` policy (the node's subscriber then stops reading its socket).
  awaitable<void> pump(node_sub& n);

  void take(node_sub& n, pubsub_message m);

  // Unsubscribes `list` on a node, without waiting: it no longer holds them at once, and its
  // confirmations are marked as the subscriber's own.
  void leave(node_sub& n, int family, names list) {
    for (const auto& name : list)
      own.insert({n.address, proto::unsubscribe_kind(family), name});
    // Refused or not sent: no confirmations will come.
    n.sub->async_change(proto::unsubscribe_kind(family), list, nullptr,
                        [this, address = n.address, family, list](error_code ec) {
                          if (ec)
                            for (const auto& name : list)
                              own.erase({address, proto::unsubscribe_kind(family), name});
                        });
  }

  // --- where things go --------------------------------------------------------------------

  std::optional<node_address> owner(std::uint16_t slot) const {
    const cluster_topology& t = cl.current_topology();
    const std::size_t s = t.shard_of(slot);
    if (s == cluster_topology::no_shard) return std::nullopt;
    return t.nodes()[t.shards()[s].primary].address;
  }

  // A node channels and patterns can stay on: known to the topology, and not failed.
  bool usable(const node_address& a) const {
    const cluster_node* n = cl.current_topology().find(a);
    auto it = nodes.find(a);
    return n && n->healthy && it != nodes.end() && !it->second->run_done;
  }

  std::optional<node_address> pick_home() const {
    const cluster_topology& t = cl.current_topology();
    for (const auto& s : t.shards()) {
      const cluster_node& n = t.nodes()[s.primary];
      if (n.healthy && (!home || n.address != *home)) return n.address;
    }
    return std::nullopt;
  }

  awaitable<void> sleep(std::chrono::milliseconds d);

  // Subscribes shard channels of one slot on the slot's owner, following MOVED, and waiting
  // out TRYAGAIN, CLUSTERDOWN, ASK (a migration in progress) and nodes that cannot be
  // reached, up to max_redirects times. `moving`: the subscriber's own doing (confirmations
  // marked resubscribed). Channels unsubscribed meanwhile are left out.
  awaitable<std::pair<error_code, std::optional<node_address>>> place(names list,
                                                                      std::uint16_t slot,
                                                                      bool moving);

  // --- keeping every wanted thing where it belongs ----------------------------------------

  awaitable<void> reconcile();

  // Subscribes on the new owner first, then leaves the old one: no gap where the channel is
  // nowhere, when the old node still delivers.
  awaitable<error_code> move_shard(names list, std::uint16_t slot,
                                   std::optional<node_address> from);

  awaitable<void> move_home();

  awaitable<error_code> resubscribe_on(node_sub& n, int family, names list);

  // Node subscribers that hold nothing close; finished ones are destroyed.
  void retire_idle();

  // --- the user's calls -------------------------------------------------------------------

  awaitable<error_code> change(int family, bool adding, names list);

  awaitable<error_code> place_for_user(names group, std::uint16_t slot);

  awaitable<error_code> call_on(node_sub& n, proto::pubsub_kind k, names list);

  // --- running ----------------------------------------------------------------------------

  void poke() { wake.cancel(); }
  void wake_pumps() {
    for (auto& [a, n] : nodes)
      n->room.cancel();
    for (auto& n : retired)
      n->room.cancel();
  }

  awaitable<error_code> run();

  void close() {
    if (closed) return;
    closed = true;
    cl.close();
    for (auto& [a, n] : nodes)
      n->sub->close();
    queue.end();
    wake_pumps();
    poke();
  }

  asio::any_io_executor ex;
  cluster_config cfg;
  subscriber_config opts;
  cluster_client cl;
  message_queue queue;
  std::set<std::string, std::less<>> wanted[3];  // channels, patterns, shard channels
  std::map<node_address, std::unique_ptr<node_sub>> nodes;
  std::vector<std::unique_ptr<node_sub>> retired;  // closed; destroyed once finished
  std::optional<node_address> home;                // where channels and patterns are
  std::set<own_key> own;
  std::multiset<std::string, std::less<>> placing;  // shard channels a call subscribes now
  // Slots a MOVED placed elsewhere than the topology says, until the next topology read.
  std::map<std::uint16_t, node_address> moved_to;
  std::size_t refreshes_seen = 0;
  std::size_t calls = 0;    // the user's (un)subscribe calls running
  asio::steady_timer wake;  // the run loop waits here; poke() wakes it
  cluster_subscriber_stats stats;
  bool closed = false, closed_by_user = false, run_started = false;
  std::shared_ptr<spdlog::logger> log;
};

}  // namespace redcoro::detail
