#include "cluster_subscriber_impl.hpp"

namespace redcoro {
namespace detail {

cluster_subscriber_impl::node_sub& cluster_subscriber_impl::node(const node_address& a) {
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

awaitable<void> cluster_subscriber_impl::pump(node_sub& n) {
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

void cluster_subscriber_impl::take(node_sub& n, pubsub_message m) {
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

awaitable<void> cluster_subscriber_impl::sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(ex, d);
  error_code ignored;
  co_await t.async_wait(use_ec(ignored));
}

awaitable<std::pair<error_code, std::optional<node_address>>> cluster_subscriber_impl::place(
    names list, std::uint16_t slot, bool moving) {
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
    std::string refusal;  // this call's own: others may be refused meanwhile
    co_await n.sub->async_change(proto::pubsub_kind::ssubscribe, list, &refusal, use_ec(ec));
    if (!ec) {
      if (moving) stats.shard_moves += list.size();
      co_return out{error_code(), at};
    }
    if (moving)
      for (const auto& c : list)
        own.erase({at, proto::pubsub_kind::ssubscribe, c});
    target.reset();
    if (ec == proto::error::server_error) {
      const auto r = detail::redirect::parse(refusal, at);
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

awaitable<error_code> cluster_subscriber_impl::change(int family, bool adding, names list) {
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
  co_await n.sub->async_change(proto::subscribe_kind(family), list, nullptr, use_ec(ec));
  if (ec == proto::error::server_error) {
    const auto& held = family == channels ? n.sub->channels() : n.sub->patterns();
    for (const auto& c : list)
      if (!held.count(c)) want.erase(c);
  }
  co_return ec;
}

awaitable<error_code> cluster_subscriber_impl::place_for_user(names group, std::uint16_t slot) {
  auto [ec, at] = co_await place(group, slot, false);
  if (ec == proto::error::server_error)  // refused: not wanted any more
    for (const auto& c : group)
      wanted[shard].erase(c);
  co_return ec;
}

awaitable<error_code> cluster_subscriber_impl::call_on(node_sub& n, proto::pubsub_kind k,
                                                       names list) {
  error_code ec;
  co_await n.sub->async_change(k, std::move(list), nullptr, use_ec(ec));
  co_return ec;
}

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
subscriber_stats cluster_subscriber::message_stats() const noexcept {
  return impl_->queue.stats();
}
std::shared_ptr<const subscriber_stats> shared_stats(const cluster_subscriber& s) noexcept {
  return s.impl_->queue.shared_stats();
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
