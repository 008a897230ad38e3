#include "cluster_impl.hpp"
#include <redcoro/proto/key_slot.hpp>

namespace redcoro::detail {

void cluster_impl::retire_unwanted() {
  for (auto it = nodes.begin(); it != nodes.end();) {
    if (wanted(it->first) || it->second->pinned) {
      ++it;
      continue;
    }
    log->info("cluster: leaving {}", it->first.to_string());
    retired.push_back(std::move(it->second));
    it = nodes.erase(it);
  }
  close_drained();
}

void cluster_impl::close_drained() {
  for (auto& e : retired)
    if (!e->run_done && e->conn->pending_requests() == 0) e->conn->close();
  std::erase_if(retired, [](const auto& e) { return e->run_done; });
}

awaitable<void> cluster_impl::wait_change(clock::time_point deadline) {
  asio::steady_timer t(ex, deadline);
  waiting_timers.push_back(&t);
  error_code ignored;
  co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
  std::erase(waiting_timers, &t);
}

void cluster_impl::apply(cluster_topology t) {
  // A node that has not heard of a failover yet describes the cluster as it was: a slot a
  // MOVED reply placed elsewhere since the last refresh keeps that place, and the topology
  // is read again (from the next node), a bounded number of times.
  bool stale = false;
  for (const redirect& m : recent_moves) {
    const std::size_t s = t.shard_of(m.slot);
    if (s != cluster_topology::no_shard && t.nodes()[t.shards()[s].primary].address == m.target)
      continue;
    t.move_slot(m.slot, m.target);
    stale = true;
  }
  if (stale && stale_reads < max_stale_reads) {
    ++stale_reads;
    request_refresh();
  } else {
    recent_moves.clear();
    stale_reads = 0;
  }
  if (!ready()) log->info("cluster topology read: {} shards", t.shards().size());
  if (on_slots_moved && ready()) {
    const auto owner = [](const cluster_topology& of, std::uint16_t slot) -> const node_address* {
      const std::size_t s = of.shard_of(slot);
      return s == cluster_topology::no_shard ? nullptr
                                             : &of.nodes()[of.shards()[s].primary].address;
    };
    for (std::uint16_t slot = 0; slot < proto::slot_count; ++slot) {
      const node_address *was = owner(topo, slot), *now = owner(t, slot);
      if (!was || !now || *was != *now) {
        on_slots_moved();
        break;
      }
    }
  }
  drop_demoted(t);
  topo = std::move(t);
  node_conns.assign(topo.nodes().size(), nullptr);
  for (const cluster_node& n : topo.nodes())
    if (wanted(n.address)) node(n.address);
  retire_unwanted();
  ++stats.refreshes;
  wake_all();
  if (on_change) on_change();
}

void cluster_impl::drop_demoted(const cluster_topology& next) {
  for (const auto& s : topo.shards()) {
    const node_address& was = topo.nodes()[s.primary].address;
    const bool still_primary =
        std::any_of(next.shards().begin(), next.shards().end(),
                    [&](const cluster_shard& n) { return next.nodes()[n.primary].address == was; });
    if (still_primary) continue;
    auto it = nodes.find(was);
    if (it == nodes.end()) continue;
    connection& c = *it->second->conn;
    if (c.pending_requests() == 0) continue;
    if (c.is_connected() && c.unanswered_for() < stalled_after) continue;
    log->warn(
        "cluster: {} is no longer a primary and does not answer; dropping its "
        "connection",
        was.to_string());
    c.reconnect();
  }
}

awaitable<bool> cluster_impl::read_topology(connection& conn, bool wait_for_connection) {
  const std::string& host = conn.get_config().host;
  proto::request req;
  req.get_config().cancel_if_not_connected = !wait_for_connection;
  // A connected node answers at once or is frozen; a refresh waiting on a frozen node for a
  // whole request timeout would leave every other node's news unread meanwhile.
  req.get_config().timeout = wait_for_connection
                                 ? cfg.node.connect_timeout + cfg.node.request_timeout
                                 : std::min(cfg.node.request_timeout, refresh_read_timeout);
  req.push("CLUSTER", "SHARDS");
  const bool need_table = !table.loaded();
  if (need_table) req.push("COMMAND");
  proto::generic_response resp;
  error_code ec;
  co_await conn.async_exec(req, resp, asio::redirect_error(use_awaitable, ec));
  if (ec || resp.size() < 1) co_return false;
  cluster_topology t;
  std::error_code parsed = proto::error::type_mismatch;
  if (!resp[0].has_error()) {
    parsed = cluster_topology::from_shards(resp[0].value(), t, cfg.node.tls.enabled, host);
  } else {
    // Servers older than 7.0.
    proto::request slots;
    slots.get_config() = req.get_config();
    slots.push("CLUSTER", "SLOTS");
    proto::response<proto::value> r;
    co_await conn.async_exec(slots, r, asio::redirect_error(use_awaitable, ec));
    if (ec || std::get<0>(r).has_error()) {
      log->warn("cluster: no topology from a node: {}",
                ec ? ec.message() : std::get<0>(r).error().message);
      co_return false;
    }
    parsed = cluster_topology::from_slots(std::get<0>(r).value(), t, host);
  }
  if (parsed || t.shards().empty()) co_return false;
  if (need_table) {
    if (resp.size() < 2 || resp[1].has_error() || table.load(resp[1].value())) co_return false;
  }
  apply(std::move(t));
  co_return true;
}

awaitable<bool> cluster_impl::refresh_once() {
  std::vector<node_address> connected;
  for (const auto& [a, e] : nodes)
    if (e->conn->is_connected() && e->conn->unanswered_for() < stalled_after)
      connected.push_back(a);
  if (!connected.empty())
    std::rotate(connected.begin(),
                connected.begin() + static_cast<std::ptrdiff_t>(refresh_turn++ % connected.size()),
                connected.end());
  for (const node_address& a : connected) {
    if (closed) co_return false;
    auto it = nodes.find(a);  // (an earlier answer may have retired it)
    if (it == nodes.end() || !it->second->conn->is_connected()) continue;
    if (co_await read_topology(*it->second->conn, false)) co_return true;
  }
  // Nothing connected answered: wait for the seeds' connections.
  for (const node_address& a : cfg.seeds) {
    if (closed) co_return false;
    if (co_await read_topology(node(a), true)) co_return true;
  }
  co_return false;
}

awaitable<error_code> cluster_impl::run() {
  if (cfg.seeds.empty()) co_return error_code(asio::error::invalid_argument);
  backoff wait(cfg.node.reconnect);
  asio::steady_timer sleep(ex);
  while (!ready()) {
    if (closed) break;
    if (co_await refresh_once()) break;
    const auto delay = wait.next();
    if (!delay) {
      co_await shut_down();
      co_return error_code(error::no_seed_reachable);
    }
    log->warn("cluster: no seed answered; retrying in {} ms", delay->count());
    sleep.expires_after(*delay);
    error_code ignored;
    co_await sleep.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  // Refreshes on demand at most every min_refresh_gap, and every refresh_interval anyway,
  // both counted from the last attempt, so that a cluster that cannot answer is not asked
  // in a loop.
  last_attempt = clock::now();
  const bool periodic = cfg.refresh_interval.count() > 0;
  while (!closed) {
    const auto now = clock::now();
    // A primary that stopped answering may be replaced by its replica any moment, with no
    // MOVED or error to say so until requests time out: while one is, look every
    // degraded_gap.
    const bool degraded = primary_unreachable();
    const auto gap = degraded ? std::max(cfg.min_refresh_gap, degraded_gap) : cfg.min_refresh_gap;
    const auto since = now - last_attempt;
    if (((refresh_wanted || degraded) && since >= gap) ||
        (periodic && since >= cfg.refresh_interval)) {
      refresh_wanted = false;
      last_attempt = now;
      if (!co_await refresh_once()) log->warn("cluster: topology refresh failed");
      continue;
    }
    auto next = clock::time_point::max();
    if (refresh_wanted || degraded) next = last_attempt + gap;
    if (periodic) next = std::min(next, last_attempt + cfg.refresh_interval);
    // Woken this often anyway, to see whether a primary stopped answering.
    next = std::min(next, now + health_watch);
    refresh_timer.expires_at(next);
    error_code ignored;
    co_await refresh_timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  co_await shut_down();
  co_return error_code(error::closed);
}

bool cluster_impl::primary_unreachable() const {
  for (const auto& sh : topo.shards()) {
    auto it = nodes.find(topo.nodes()[sh.primary].address);
    if (it == nodes.end()) continue;
    const connection& c = *it->second->conn;
    if (!c.is_connected() || c.unanswered_for() >= stalled_after) return true;
  }
  return false;
}

awaitable<void> cluster_impl::shut_down() {
  closed = true;
  for (auto& [a, e] : nodes)
    e->conn->close();
  for (auto& e : retired)
    e->conn->close();
  const auto running = [](const auto& e) { return !e->run_done; };
  while (std::any_of(retired.begin(), retired.end(), running) ||
         std::any_of(nodes.begin(), nodes.end(), [&](const auto& n) { return running(n.second); }))
    co_await wait_change(clock::time_point::max());
  wake_all();
}

}  // namespace redcoro::detail
