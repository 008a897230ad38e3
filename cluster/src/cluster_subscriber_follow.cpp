#include "cluster_subscriber_impl.hpp"

namespace redcoro::detail {

awaitable<void> cluster_subscriber_impl::reconcile() {
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
    if (!held.count(c) && !placing.count(c)) moves[{proto::key_slot(c), std::nullopt}].push_back(c);
  std::vector<awaitable<error_code>> tasks;
  for (auto& [where, list] : moves)
    tasks.push_back(move_shard(std::move(list), where.first, where.second));
  if (!tasks.empty()) co_await gather(ex, std::move(tasks));
  retire_idle();
}

awaitable<error_code> cluster_subscriber_impl::move_shard(names list, std::uint16_t slot,
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

awaitable<void> cluster_subscriber_impl::move_home() {
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

awaitable<error_code> cluster_subscriber_impl::resubscribe_on(node_sub& n, int family, names list) {
  for (const auto& c : list)
    own.insert({n.address, proto::subscribe_kind(family), c});
  error_code ec;
  co_await n.sub->async_change(proto::subscribe_kind(family), std::move(list), nullptr, use_ec(ec));
  co_return ec;
}

void cluster_subscriber_impl::retire_idle() {
  for (auto it = nodes.begin(); it != nodes.end();) {
    subscriber& s = *it->second->sub;
    const bool idle = s.shard_channels().empty() && s.channels().empty() && s.patterns().empty() &&
                      it->first != home;
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

awaitable<error_code> cluster_subscriber_impl::run() {
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

}  // namespace redcoro::detail
