#include <redcoro/client/detail/spawn.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/proto/key_slot.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <tuple>

namespace redcoro {
namespace detail {

namespace {

using asio::awaitable;
using names = std::vector<std::string>;

auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

constexpr int channels = 0, patterns = 1, shard = 2;

// Runs every task at once; completes when all have, with the first error among them.
awaitable<error_code> gather(const asio::any_io_executor& ex,
                             std::vector<awaitable<error_code>> tasks) {
  struct state {
    explicit state(const asio::any_io_executor& e) : done(e, clock::time_point::max()) {}
    std::size_t left = 0;
    error_code first;
    asio::steady_timer done;
  };
  auto s = std::make_shared<state>(ex);
  s->left = tasks.size();
  for (auto& t : tasks)
    asio::co_spawn(ex, std::move(t), [s](std::exception_ptr e, error_code ec) {
      if (e) ec = asio::error::operation_aborted;
      if (ec && !s->first) s->first = ec;
      if (--s->left == 0) s->done.cancel();
    });
  if (s->left != 0) {
    error_code ignored;
    co_await s->done.async_wait(use_ec(ignored));
  }
  co_return s->first;
}

}  // namespace

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

  node_sub& node(const node_address& a) {
    if (auto it = nodes.find(a); it != nodes.end()) return *it->second;
    connection_config c = cfg.node;
    c.host = a.host;
    c.port = a.port;
    c.unix_socket.clear();
    // The shared queue applies the user's policy; a node's own buffer only waits for it.
    subscriber_config o = opts;
    o.overflow = overflow_policy::wait;
    auto entry = std::make_unique<node_sub>(ex);
    node_sub* n = entry.get();
    n->address = a;
    n->sub = std::make_unique<subscriber>(ex, std::move(c), o);
    n->sub->async_run([this, n](error_code) {
      n->run_done = true;
      poke();
    });
    asio::co_spawn(ex, pump(*n), [this, n](std::exception_ptr) {
      n->pump_done = true;
      poke();
    });
    if (closed) n->sub->close();
    return *nodes.emplace(a, std::move(entry)).first->second;
  }

  // Moves a node's messages into the shared queue, holding back while it is full under the
  // `wait` policy (the node's subscriber then stops reading its socket).
  awaitable<void> pump(node_sub& n) {
    for (;;) {
      error_code ec;
      pubsub_message m = co_await n.sub->async_receive(use_ec(ec));
      if (ec) co_return;
      take(n, std::move(m));
      while (!queue.paused()) {
        auto more = n.sub->try_receive();
        if (!more) break;
        take(n, std::move(*more));
      }
      while (queue.paused() && !queue.ended()) {
        n.room.expires_at(clock::time_point::max());
        co_await n.room.async_wait(use_ec(ec));
      }
    }
  }

  void take(node_sub& n, pubsub_message m) {
    if (!m.is_message()) {
      if (own.erase({n.address, m.what, m.channel}) != 0) {
        m.resubscribed = true;
      } else if (m.what == proto::pubsub_kind::sunsubscribe && wanted[shard].count(m.channel)) {
        // The node dropped a shard channel we want: its slot moved away (the node's
        // subscriber no longer holds it). It is subscribed on the new owner as soon as the
        // topology (read again now) or a MOVED says where.
        log->info("cluster subscriber: {} dropped shard channel {}", n.address.to_string(),
                  m.channel);
        cl.refresh();
        poke();
      }
    }
    if (!queue.offer(std::move(m))) n.sub->next_layer().reconnect();
  }

  // A node subscriber's (un)subscribe call of kind `k` (subscribe ... sunsubscribe).
  template <class Token>
  static auto call(node_sub& n, proto::pubsub_kind k, names list, Token&& token) {
    using kind = proto::pubsub_kind;
    subscriber& s = *n.sub;
    switch (k) {
      case kind::subscribe:
        return s.async_subscribe(std::move(list), std::forward<Token>(token));
      case kind::psubscribe:
        return s.async_psubscribe(std::move(list), std::forward<Token>(token));
      case kind::ssubscribe:
        return s.async_ssubscribe(std::move(list), std::forward<Token>(token));
      case kind::unsubscribe:
        return s.async_unsubscribe(std::move(list), std::forward<Token>(token));
      case kind::punsubscribe:
        return s.async_punsubscribe(std::move(list), std::forward<Token>(token));
      default:
        return s.async_sunsubscribe(std::move(list), std::forward<Token>(token));
    }
  }

  // Unsubscribes `list` on a node, without waiting: it no longer holds them at once, and its
  // confirmations are marked as the subscriber's own.
  void leave(node_sub& n, int family, names list) {
    for (const auto& name : list)
      own.insert({n.address, proto::unsubscribe_kind(family), name});
    // Refused or not sent: no confirmations will come.
    call(n, proto::unsubscribe_kind(family), list,
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

  awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(ex, d);
    error_code ignored;
    co_await t.async_wait(use_ec(ignored));
  }

  // Subscribes shard channels of one slot on the slot's owner, following MOVED, and waiting
  // out TRYAGAIN, CLUSTERDOWN, ASK (a migration in progress) and nodes that cannot be
  // reached, up to max_redirects times. `moving`: the subscriber's own doing (confirmations
  // marked resubscribed). Channels unsubscribed meanwhile are left out.
  awaitable<std::pair<error_code, std::optional<node_address>>> place(names list,
                                                                      std::uint16_t slot,
                                                                      bool moving) {
    using out = std::pair<error_code, std::optional<node_address>>;
    std::optional<node_address> target;
    error_code ec;
    for (std::size_t attempt = 0; attempt <= cfg.max_redirects; ++attempt) {
      if (closed) co_return out{error::closed, std::nullopt};
      std::erase_if(list, [&](const std::string& c) { return !wanted[shard].count(c); });
      if (list.empty()) co_return out{};
      if (!target) target = owner(slot);
      if (!target) {
        ec = error::not_connected;
        cl.refresh();
        co_await sleep(cfg.retry_delay);
        continue;
      }
      const node_address at = *target;
      node_sub& n = node(at);
      if (moving)
        for (const auto& c : list)
          own.insert({at, proto::pubsub_kind::ssubscribe, c});
      ec = {};
      co_await call(n, proto::pubsub_kind::ssubscribe, list, use_ec(ec));
      if (!ec) {
        if (moving) stats.shard_moves += list.size();
        co_return out{error_code(), at};
      }
      if (moving)
        for (const auto& c : list)
          own.erase({at, proto::pubsub_kind::ssubscribe, c});
      target.reset();
      if (ec == proto::error::server_error) {
        const auto r = detail::redirect::parse(n.sub->last_refusal(), at);
        if (!r) co_return out{ec, std::nullopt};  // NOPERM, ...: final
        if (r->what == detail::redirect::kind::moved) {
          target = r->target;
          moved_to[slot] = r->target;
          cl.refresh();
          continue;
        }
      } else if (ec == error::closed && closed) {
        co_return out{ec, std::nullopt};
      } else {
        cl.refresh();  // timeout, or the node is gone
      }
      co_await sleep(cfg.retry_delay);
    }
    co_return out{ec, std::nullopt};
  }

  // --- keeping every wanted thing where it belongs ----------------------------------------

  awaitable<void> reconcile() {
    if (!cl.has_topology() || closed) co_return;
    // What MOVED replies said holds until the topology is read again.
    if (cl.stats().refreshes != refreshes_seen) {
      refreshes_seen = cl.stats().refreshes;
      moved_to.clear();
    }
    // Channels and patterns: onto another primary when their node failed or left.
    // (Until a call chose the first node, there is nothing to move.)
    const bool any_plain = !wanted[channels].empty() || !wanted[patterns].empty();
    if (any_plain && home && !usable(*home)) co_await move_home();

    // Shard channels held where they should not be, or nowhere; grouped by slot and by the
    // node that holds them now.
    std::map<std::pair<std::uint16_t, std::optional<node_address>>, names> moves;
    std::set<std::string, std::less<>> held;
    for (auto& [address, n] : nodes) {
      names unwanted;
      for (const auto& c : n->sub->shard_channels()) {
        if (!wanted[shard].count(c)) {
          unwanted.push_back(c);
          continue;
        }
        held.insert(c);
        if (placing.count(c)) continue;  // a call is subscribing to it now
        const std::uint16_t slot = proto::key_slot(c);
        const auto o = owner(slot);
        // (A MOVED put it where it is since the topology was read: the topology is behind.)
        const auto m = moved_to.find(slot);
        const bool behind = m != moved_to.end() && m->second == address;
        if (n->run_done || (o && *o != address && !behind)) moves[{slot, address}].push_back(c);
      }
      if (!unwanted.empty()) leave(*n, shard, std::move(unwanted));
    }
    for (const auto& c : wanted[shard])
      if (!held.count(c) && !placing.count(c))
        moves[{proto::key_slot(c), std::nullopt}].push_back(c);
    std::vector<awaitable<error_code>> tasks;
    for (auto& [where, list] : moves)
      tasks.push_back(move_shard(std::move(list), where.first, where.second));
    if (!tasks.empty()) co_await gather(ex, std::move(tasks));
    retire_idle();
  }

  // Subscribes on the new owner first, then leaves the old one: no gap where the channel is
  // nowhere, when the old node still delivers.
  awaitable<error_code> move_shard(names list, std::uint16_t slot,
                                   std::optional<node_address> from) {
    auto [ec, at] = co_await place(list, slot, true);
    if (ec) {
      log->warn("cluster subscriber: shard channel {} not placed yet: {}", list.front(),
                ec.message());
      co_return ec;
    }
    if (from && at != from)
      if (auto it = nodes.find(*from); it != nodes.end()) leave(*it->second, shard, list);
    co_return error_code();
  }

  awaitable<void> move_home() {
    const auto next = pick_home();
    if (!next) co_return;
    const std::optional<node_address> old = home;
    home = next;  // calls from now on subscribe there
    if (old) ++stats.home_moves;
    log->info("cluster subscriber: channels and patterns now on {}", next->to_string());
    node_sub& n = node(*next);
    const names c(wanted[channels].begin(), wanted[channels].end());
    const names p(wanted[patterns].begin(), wanted[patterns].end());
    std::vector<awaitable<error_code>> tasks;
    if (!c.empty()) tasks.push_back(resubscribe_on(n, channels, c));
    if (!p.empty()) tasks.push_back(resubscribe_on(n, patterns, p));
    const error_code ec = co_await gather(ex, std::move(tasks));
    if (ec) log->warn("cluster subscriber: moving channels failed: {}", ec.message());
    if (old && old != home)
      if (auto it = nodes.find(*old); it != nodes.end()) {
        const names oc(it->second->sub->channels().begin(), it->second->sub->channels().end());
        const names op(it->second->sub->patterns().begin(), it->second->sub->patterns().end());
        if (!oc.empty()) leave(*it->second, channels, oc);
        if (!op.empty()) leave(*it->second, patterns, op);
      }
  }

  awaitable<error_code> resubscribe_on(node_sub& n, int family, names list) {
    for (const auto& c : list)
      own.insert({n.address, proto::subscribe_kind(family), c});
    error_code ec;
    co_await call(n, proto::subscribe_kind(family), std::move(list), use_ec(ec));
    co_return ec;
  }

  // Node subscribers that hold nothing close; finished ones are destroyed.
  void retire_idle() {
    for (auto it = nodes.begin(); it != nodes.end();) {
      subscriber& s = *it->second->sub;
      const bool idle = s.shard_channels().empty() && s.channels().empty() &&
                        s.patterns().empty() && it->first != home;
      if (!idle && !it->second->run_done) {
        ++it;
        continue;
      }
      s.close();
      // Confirmations it will not send any more.
      std::erase_if(own, [&](const own_key& k) { return std::get<0>(k) == it->first; });
      retired.push_back(std::move(it->second));
      it = nodes.erase(it);
    }
    std::erase_if(retired, [](const auto& n) { return n->run_done && n->pump_done; });
  }

  // --- the user's calls -------------------------------------------------------------------

  awaitable<error_code> change(int family, bool adding, names list) {
    auto& want = wanted[family];
    if (adding && list.empty()) co_return error_code(asio::error::invalid_argument);
    if (!adding && list.empty()) list.assign(want.begin(), want.end());
    if (adding)
      want.insert(list.begin(), list.end());
    else
      for (const auto& c : list)
        want.erase(c);
    if (!adding) {
      // From every node that holds them.
      std::vector<awaitable<error_code>> tasks;
      for (auto& [address, n] : nodes) {
        const auto& held = family == channels   ? n->sub->channels()
                           : family == patterns ? n->sub->patterns()
                                                : n->sub->shard_channels();
        names here;
        for (const auto& c : list)
          if (held.count(c)) here.push_back(c);
        if (!here.empty())
          tasks.push_back(call_on(*n, proto::unsubscribe_kind(family), std::move(here)));
      }
      co_return co_await gather(ex, std::move(tasks));
    }

    if (family == shard) {
      // Until this call is done, the run loop leaves these channels to it.
      for (const auto& c : list)
        placing.insert(c);
      error_code ec;
      co_await cl.async_wait_topology(std::chrono::milliseconds(-1), use_ec(ec));
      if (!ec) {
        std::map<std::uint16_t, names> by_slot;
        for (const auto& c : list)
          by_slot[proto::key_slot(c)].push_back(c);
        std::vector<awaitable<error_code>> tasks;
        for (auto& [slot, group] : by_slot)
          tasks.push_back(place_for_user(std::move(group), slot));
        ec = co_await gather(ex, std::move(tasks));
      }
      for (const auto& c : list)
        placing.erase(placing.find(c));
      co_return ec;
    }
    error_code ec;
    co_await cl.async_wait_topology(std::chrono::milliseconds(-1), use_ec(ec));
    if (ec) co_return ec;
    if (!home) home = pick_home();
    if (!home) {  // no healthy primary
      for (const auto& c : list)
        want.erase(c);
      co_return error_code(error::not_connected);
    }
    node_sub& n = node(*home);
    co_await call(n, proto::subscribe_kind(family), list, use_ec(ec));
    if (ec == proto::error::server_error) {
      const auto& held = family == channels ? n.sub->channels() : n.sub->patterns();
      for (const auto& c : list)
        if (!held.count(c)) want.erase(c);
    }
    co_return ec;
  }

  awaitable<error_code> place_for_user(names group, std::uint16_t slot) {
    auto [ec, at] = co_await place(group, slot, false);
    if (ec == proto::error::server_error)  // refused: not wanted any more
      for (const auto& c : group)
        wanted[shard].erase(c);
    co_return ec;
  }

  awaitable<error_code> call_on(node_sub& n, proto::pubsub_kind k, names list) {
    error_code ec;
    co_await call(n, k, std::move(list), use_ec(ec));
    co_return ec;
  }

  // --- running ----------------------------------------------------------------------------

  void poke() { wake.cancel(); }
  void wake_pumps() {
    for (auto& [a, n] : nodes)
      n->room.cancel();
    for (auto& n : retired)
      n->room.cancel();
  }

  awaitable<error_code> run() {
    error_code cluster_ec;
    bool cluster_done = false;
    cl.async_run([&, this](error_code ec) {
      cluster_ec = ec;
      cluster_done = true;
      poke();
    });
    // Topology changes and dropped channels poke this loop; it also looks on its own every
    // min_refresh_gap, for a node subscriber that lost its connection (a failing node: the
    // topology is read again) and for channels not placed yet.
    const auto tick = std::max(cfg.min_refresh_gap, std::chrono::milliseconds(50));
    while (!closed && !cluster_done) {
      co_await reconcile();
      for (auto& [address, n] : nodes)
        if (!n->sub->next_layer().is_connected()) cl.refresh();
      wake.expires_after(tick);
      error_code ignored;
      co_await wake.async_wait(use_ec(ignored));
    }
    close();
    // Until everything that could still touch this object has ended; each of them pokes.
    for (;;) {
      retire_idle();
      if (cluster_done && nodes.empty() && retired.empty() && calls == 0) break;
      wake.expires_at(clock::time_point::max());
      error_code ignored;
      co_await wake.async_wait(use_ec(ignored));
    }
    co_return closed_by_user ? error_code(error::closed) : cluster_ec;
  }

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

}  // namespace detail

cluster_subscriber::cluster_subscriber(executor_type ex, cluster_config cfg, subscriber_config opts)
    : impl_(std::make_unique<detail::cluster_subscriber_impl>(ex, std::move(cfg), opts)) {}

cluster_subscriber::~cluster_subscriber() {
  close();
}

cluster_subscriber::executor_type cluster_subscriber::get_executor() const noexcept {
  return impl_->ex;
}

cluster_client& cluster_subscriber::next_layer() noexcept {
  return impl_->cl;
}

detail::message_queue& cluster_subscriber::queue() noexcept {
  return impl_->queue;
}

void cluster_subscriber::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  detail::start_run_once(c.ex, c.run_started, c.run(), std::move(handler));
}

void cluster_subscriber::change_impl(int family, bool adding, std::vector<std::string> names,
                                     asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  ++c.calls;  // async_run completes only after the calls
  detail::spawn_to_handler(c.ex, c.change(family, adding, std::move(names)),
                           asio::any_completion_handler<void(error_code)>(
                               [&c, h = std::move(handler)](error_code ec) mutable {
                                 --c.calls;
                                 c.poke();
                                 std::move(h)(ec);
                               }));
}

std::optional<pubsub_message> cluster_subscriber::try_receive() {
  return impl_->queue.try_pop();
}

void cluster_subscriber::on_message(std::function<void(const pubsub_message&)> callback) {
  impl_->queue.on_message(std::move(callback));
}

void cluster_subscriber::close() {
  impl_->closed_by_user = true;
  impl_->close();
}

const std::set<std::string, std::less<>>& cluster_subscriber::channels() const noexcept {
  return impl_->wanted[detail::channels];
}
const std::set<std::string, std::less<>>& cluster_subscriber::patterns() const noexcept {
  return impl_->wanted[detail::patterns];
}
const std::set<std::string, std::less<>>& cluster_subscriber::shard_channels() const noexcept {
  return impl_->wanted[detail::shard];
}

std::optional<node_address> cluster_subscriber::node_of(std::string_view shard_channel) const {
  for (const auto& [address, n] : impl_->nodes)
    if (n->sub->shard_channels().count(shard_channel)) return address;
  return std::nullopt;
}

std::optional<node_address> cluster_subscriber::home() const {
  return impl_->home;
}

std::uint64_t cluster_subscriber::dropped() const noexcept {
  return impl_->queue.dropped();
}
std::uint64_t cluster_subscriber::overflow_disconnects() const noexcept {
  return impl_->queue.overflow_disconnects();
}
std::size_t cluster_subscriber::buffered() const noexcept {
  return impl_->queue.size();
}
const cluster_subscriber_stats& cluster_subscriber::stats() const noexcept {
  return impl_->stats;
}

}  // namespace redcoro
