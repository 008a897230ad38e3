#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/op_pool.hpp>
#include <redcoro/client/detail/spawn.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/cluster/detail/redirect_machine.hpp>
#include <redcoro/cluster/detail/router.hpp>
#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/parser.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <optional>

namespace redcoro {

namespace proto {

// The fast path's response: the caller's adapter, minus the replies that are redirects,
// which are held back for the retry.
template <>
class response_adapter<redcoro::detail::cluster_exec> {
 public:
  explicit response_adapter(redcoro::detail::cluster_exec& op) noexcept : op_(&op) {}
  void on_node(std::size_t index, const node& n);
  void prepare(std::size_t replies) { op_->adapter.prepare(replies); }
  std::size_t replies() const noexcept { return op_->adapter.replies(); }
  std::error_code error() const { return op_->adapter.error(); }

 private:
  redcoro::detail::cluster_exec* op_;
};

}  // namespace proto

namespace detail {
namespace {

using detail::any_slot;
using detail::merge;
using clock = std::chrono::steady_clock;
using asio::awaitable;
using asio::use_awaitable;

// Feeds a whole value to `a` as reply number `index`, as if it had just been read.
void replay(const proto::value& v, std::size_t index, const proto::any_adapter& a) {
  proto::for_each_node(v, [&](const proto::node& n) { a.on_node(index, n); });
}

proto::value value_of(proto::result<proto::value>& r) {
  if (r.has_error())
    return proto::value(proto::type::simple_error, std::move(r.error_storage().message));
  return std::move(r).value();
}

// One part of a request on its way: where it goes, what came back.
struct job {
  job(detail::part& p, const redirect_machine::policy& policy)
      : what(&p), machine(policy, p.readonly) {}
  detail::part* what;
  std::optional<node_address> pinned;  // fan-out: this primary
  redirect_machine machine;
  redirect_machine::action next;  // what the machine said after the last attempt
  bool done = false;
  bool launched = false;
  proto::request asking;  // ASKING and the part, after an ASK
  proto::generic_response replies;
  node_address sent_to;
  error_code ec;
  asio::cancellation_signal signal;  // the caller's cancellation, to this part's operation
};

// What cancelling a request on the slow path reaches: each part's operation, and the wait
// between rounds.
struct slow_state {
  std::deque<job>* jobs = nullptr;
  asio::steady_timer* timer = nullptr;
  void cancel(asio::cancellation_type type) {
    for (job& j : *jobs)
      j.signal.emit(type);
    if (timer) timer->cancel();
  }
};

}  // namespace

struct cluster_impl {
  struct node_entry {
    std::unique_ptr<connection> conn;
    bool run_done = false;
    bool pinned = false;  // handed out by cluster_client::node(): kept until close()
  };

  cluster_impl(asio::any_io_executor e, cluster_config c)
      : ex(std::move(e)),
        cfg(std::move(c)),
        router(table, cfg.node.key_prefix),
        refresh_timer(ex),
        log(cfg.node.logger ? cfg.node.logger : default_logger()) {}

  // --- nodes ------------------------------------------------------------------------------

  connection& node(const node_address& a) {
    auto it = nodes.find(a);
    if (it != nodes.end()) return *it->second->conn;
    connection_config c = cfg.node;
    c.host = a.host;
    c.port = a.port;
    c.unix_socket.clear();
    // What could not be written there is sent to whichever node serves the slot now.
    c.fail_waiting_on_disconnect = true;
    if (cfg.reads != read_from::primary) {
      c.on_handshake = [user = std::move(c.on_handshake)](proto::request& r) {
        r.push("READONLY");
        if (user) user(r);
      };
    }
    auto entry = std::make_unique<node_entry>();
    entry->conn = std::make_unique<connection>(ex, std::move(c));
    node_entry* e = entry.get();
    e->conn->async_run([this, e](error_code) {
      e->run_done = true;
      wake_all();
    });
    // After close() (a request still being routed, say): it fails its requests with
    // error::closed, and shut_down does not wait for it forever.
    if (closed) e->conn->close();
    return *nodes.emplace(a, std::move(entry)).first->second->conn;
  }

  // Whether a node is worth a connection: it is in the topology and serves, or may serve.
  bool wanted(const node_address& a) const {
    const cluster_node* n = topo.find(a);
    if (!n) return false;
    if (n->healthy) return n->role == node_role::primary || cfg.reads != read_from::primary;
    // A failed node keeps its connection only while it still owns slots.
    for (const auto& s : topo.shards())
      if (&topo.nodes()[s.primary] == n) return true;
    return false;
  }

  // Nodes that left the topology, failed or became replicas no read goes to: no new request
  // goes to them; each connection is closed once its requests are answered (a primary
  // demoted by a failover answers the ones it held with MOVED, which are followed), and
  // destroyed once its run ended.
  void retire_unwanted() {
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

  void close_drained() {
    for (auto& e : retired)
      if (!e->run_done && e->conn->pending_requests() == 0) e->conn->close();
    std::erase_if(retired, [](const auto& e) { return e->run_done; });
  }

  static constexpr std::size_t no_node = static_cast<std::size_t>(-1);

  // The node for a part (its index in topo.nodes()): the slot's primary, or a replica for
  // reads as cfg.reads says; no_node when no node will do.
  std::size_t pick(int slot, bool readonly) {
    const auto& shards = topo.shards();
    if (shards.empty()) return no_node;
    if (slot == any_slot) return shards[next_turn++ % shards.size()].primary;
    const std::size_t s = topo.shard_of(static_cast<std::uint16_t>(slot));
    if (s == cluster_topology::no_shard) return no_node;
    const cluster_shard& sh = shards[s];
    if (!readonly || cfg.reads == read_from::primary) return sh.primary;
    // Healthy replicas that are connected (or not tried yet).
    const std::size_t options = sh.replicas.size() + (cfg.reads == read_from::any ? 1 : 0);
    for (std::size_t tried = 0; tried < options; ++tried) {
      const std::size_t k = next_turn++ % options;
      if (k == sh.replicas.size()) return sh.primary;
      const std::size_t r = sh.replicas[k];
      if (!topo.nodes()[r].healthy) continue;
      if (!node_conns[r] || node_conns[r]->is_connected()) return r;
    }
    return cfg.reads == read_from::replica ? no_node : sh.primary;
  }

  // The connection to node `i` of the topology, through a cache indexed like topo.nodes()
  // (the hot path does no map lookup).
  connection& conn_at(std::size_t i) {
    if (node_conns.size() < topo.nodes().size()) node_conns.resize(topo.nodes().size(), nullptr);
    if (!node_conns[i]) node_conns[i] = &node(topo.nodes()[i].address);
    return *node_conns[i];
  }

  // --- state changes ----------------------------------------------------------------------

  // Waits for notify() or `deadline`.
  awaitable<void> wait_change(clock::time_point deadline) {
    asio::steady_timer t(ex, deadline);
    waiting_timers.push_back(&t);
    error_code ignored;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
    std::erase(waiting_timers, &t);
  }

  void wake_all() {
    for (asio::steady_timer* t : waiting_timers)
      t->cancel();
  }

  void request_refresh() {
    if (refresh_wanted) return;
    refresh_wanted = true;
    refresh_timer.cancel();
  }

  // --- topology ---------------------------------------------------------------------------

  void apply(cluster_topology t) {
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

  // A primary of the old topology that serves no slot in `next` (a replica was promoted in its
  // place, or it left) and that has stopped answering (a frozen or partitioned process) may
  // still execute what sits in its socket when it wakes up, answer OK, and then drop those
  // writes when it resyncs as a replica. Its connection is dropped now, so that such writes
  // fail with connection_lost instead of being acknowledged, and what waits on it goes to
  // the new owner. A demoted primary that answers (CLUSTER FAILOVER) keeps its connection:
  // it answers what it holds with MOVED, which is followed.
  void drop_demoted(const cluster_topology& next) {
    for (const auto& s : topo.shards()) {
      const node_address& was = topo.nodes()[s.primary].address;
      const bool still_primary = std::any_of(
          next.shards().begin(), next.shards().end(),
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

  // A node connection that owes a reply for this long is not asked for the topology, and is
  // dropped when its node is demoted (drop_demoted).
  static constexpr auto stalled_after = std::chrono::milliseconds(1000);

  // Asks `conn` for the topology (and the command table when there is none yet).
  awaitable<bool> read_topology(connection& conn, bool wait_for_connection) {
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

  // One refresh: the nodes we are connected to first (starting from a different one each
  // time, so that one node behind the others does not answer every time), then the seeds.
  awaitable<bool> refresh_once() {
    std::vector<node_address> connected;
    for (const auto& [a, e] : nodes)
      if (e->conn->is_connected() && e->conn->unanswered_for() < stalled_after)
        connected.push_back(a);
    if (!connected.empty())
      std::rotate(
          connected.begin(),
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

  awaitable<error_code> run() {
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

  bool primary_unreachable() const {
    for (const auto& sh : topo.shards()) {
      auto it = nodes.find(topo.nodes()[sh.primary].address);
      if (it == nodes.end()) continue;
      const connection& c = *it->second->conn;
      if (!c.is_connected() || c.unanswered_for() >= stalled_after) return true;
    }
    return false;
  }

  awaitable<void> shut_down() {
    closed = true;
    for (auto& [a, e] : nodes)
      e->conn->close();
    for (auto& e : retired)
      e->conn->close();
    const auto running = [](const auto& e) { return !e->run_done; };
    while (
        std::any_of(retired.begin(), retired.end(), running) ||
        std::any_of(nodes.begin(), nodes.end(), [&](const auto& n) { return running(n.second); }))
      co_await wait_change(clock::time_point::max());
    wake_all();
  }

  // --- requests ---------------------------------------------------------------------------

  void start(cluster_exec& op) {
    initiating_ = true;
    // (Started again with EVALs after NOSCRIPT: what the last attempt left goes.)
    op.held_back.clear();
    op.redirected.reset();
    op.lost = {};
    if (closed) {
      op.complete(op, error::closed);
    } else if (op.req->out_of_band_commands() != 0) {
      // SUBSCRIBE and friends: a subscriber's job.
      op.complete(op, error_code(asio::error::operation_not_supported));
    } else if (!try_fast(op)) {
      slow(op);
    }
    initiating_ = false;
  }

  // Per-operation cancellation: to the node connection's operation on the fast path, to each
  // part's on the slow path, and it wakes the slow path's waits.
  void cancel(cluster_exec& op, asio::cancellation_type type) {
    op.cancelled = type;
    op.signal.emit(type);
    if (op.slow) static_cast<slow_state*>(op.slow)->cancel(type);
    wake_all();
  }

  // The common case: all of it goes to one connected node.
  bool try_fast(cluster_exec& op) {
    if (!ready()) return false;
    const auto r = router.single(op.req->payload());
    if (!r) return false;
    const std::size_t target = pick(r->slot, r->readonly);
    if (target == no_node) return false;
    op.readonly = r->readonly;
    connection& conn = conn_at(target);
    if (!conn.is_connected()) return false;
    conn.async_exec(*op.req, op,
                    asio::bind_cancellation_slot(
                        op.signal.slot(), [this, &op, c = &conn](error_code ec, std::size_t n) {
                          fast_done(op, *c, ec, n);
                        }));
    return true;
  }

  void fast_done(cluster_exec& op, const connection& from, error_code ec, std::size_t n) {
    op.bytes_read += n;
    // "MOVED 3999 :6381": a node that does not know its own host means the one it is on.
    if (op.redirected && op.redirected->target.host.empty())
      op.redirected->target.host = from.get_config().host;
    if (!retired.empty()) close_drained();
    if (!ec && op.held_back.empty()) return op.complete(op, {});
    if (unsent(ec)) {
      // The node is gone or going: send it where the slot lives now.
      request_refresh();
      return slow(op);
    }
    if (ec) {
      // A read lost with its connection can go to another node; the slow path's machine
      // counts this attempt.
      if (op.readonly && ec == error::connection_lost) {
        op.lost = ec;
        return slow(op);
      }
      if (node_trouble(ec)) request_refresh();
      return op.complete(op, ec);
    }
    slow(op);  // only the held-back replies are left, with the redirect that held them back
  }

  // MOVED: the slot lives elsewhere now; the rest of the map is read again soon.
  void follow_moved(const redirect& r) {
    ++stats.moved;
    topo.move_slot(r.slot, r.target);
    std::erase_if(recent_moves, [&](const redirect& m) { return m.slot == r.slot; });
    recent_moves.push_back(r);
    request_refresh();
    if (on_change) on_change();
  }

  // A node connection's error that may mean its node is down, frozen or demoted: the
  // topology is read again (rate-limited, as after MOVED) so that a failover is followed
  // without waiting for the periodic refresh.
  static bool node_trouble(error_code ec) {
    return ec == error::timeout || ec == error::connection_lost ||
           ec == error::health_check_failed || ec == error::out_of_sync;
  }

  // A node connection's error that says the request was never written: it can go to the
  // node that serves the slot now.
  bool unsent(error_code ec) const {
    return ec == error::not_connected || (ec == error::closed && !closed);
  }

  void slow(cluster_exec& op) { asio::co_spawn(ex, run_slow(op), asio::detached); }

  awaitable<void> run_slow(cluster_exec& op) {
    error_code ec;
    try {
      ec = co_await routed(op);
    } catch (...) {
      // Whatever went wrong, the caller hears of it instead of waiting forever.
      ec = make_error_code(std::errc::not_enough_memory);
    }
    op.complete(op, ec);
  }

  // Until the topology is known, or the reason it will not be (`op`: a request that may be
  // cancelled meanwhile).
  awaitable<error_code> wait_ready(clock::time_point deadline, const cluster_exec* op = nullptr) {
    while (!ready()) {
      if (closed) co_return error_code(error::closed);
      if (op && op->cancelled != asio::cancellation_type::none)
        co_return error_code(asio::error::operation_aborted);
      if (clock::now() >= deadline) co_return error_code(error::timeout);
      co_await wait_change(deadline);
    }
    co_return error_code();
  }

  awaitable<std::pair<error_code, std::vector<std::string>>> scan_step(cluster_scan& s) {
    using out = std::pair<error_code, std::vector<std::string>>;
    const auto deadline = deadline_for(std::chrono::milliseconds(-1), cfg.node.request_timeout);
    if (error_code ec = co_await wait_ready(deadline)) co_return out{ec, {}};
    if (!s.started_) {
      s.nodes_ = topo.primaries();
      s.started_ = true;
    }
    if (s.done()) co_return out{};
    cmd::scan_options o;
    o.match = s.match_;
    o.type = s.type_;
    o.count = s.count_;
    error_code ec;
    auto page = co_await node(s.nodes_[s.next_node_])
                    .async_exec(cmd::scan(s.cursor_, o), asio::redirect_error(use_awaitable, ec));
    if (ec) co_return out{ec, {}};
    if (page.has_error()) co_return out{error_code(proto::error::server_error), {}};
    auto& [next, keys] = page.value();
    s.cursor_ = next;
    if (next == 0) ++s.next_node_;
    co_return out{error_code(), std::move(keys)};
  }

  // What the machine's action asks of the client, besides sending: the topology, the stats.
  redirect_machine::action apply(redirect_machine::action a) {
    if (a.moved) follow_moved(*a.moved);
    if (a.asking) ++stats.ask;
    if (a.retry) ++stats.retries;
    if (a.refresh || (a.what == redirect_machine::step::fail && node_trouble(a.ec)))
      request_refresh();
    return a;
  }

  // How an attempt of `j` went, for its machine.
  attempt_result outcome(job& j) const {
    attempt_result r;
    if (unsent(j.ec)) {
      r.what = attempt_result::kind::not_sent;
    } else if (j.ec == error::connection_lost) {
      r.what = attempt_result::kind::lost;
      r.ec = j.ec;
    } else if (j.ec) {
      r.what = attempt_result::kind::failed;
      r.ec = j.ec;
    } else {
      for (const auto& reply : j.replies) {
        if (reply.has_error() && (r.r = redirect::parse(reply.error().message, j.sent_to))) {
          r.what = attempt_result::kind::redirected;
          break;
        }
      }
    }
    return r;
  }

  // Plans the request (or, after the fast path, what it held back), sends the parts, and
  // does what each part's redirect_machine says with their replies, then feeds the replies
  // to the caller's adapter in order.
  awaitable<error_code> routed(cluster_exec& op) {
    const auto deadline = deadline_for(op.req->get_config().timeout, cfg.node.request_timeout);
    const std::size_t total = op.req->commands();
    const std::vector<std::size_t> only = std::move(op.held_back);
    if (only.empty() && op.adapter.replies() != proto::any_reply_count &&
        op.adapter.replies() < total)
      co_return error_code(error::response_too_short);
    if (error_code ec = co_await wait_ready(deadline, &op)) co_return ec;
    detail::plan plan = router.make_plan(op.req->payload(), total);
    auto wanted = [&](std::size_t i) {
      return only.empty() || std::find(only.begin(), only.end(), i) != only.end();
    };
    const redirect_machine::policy policy{cfg.max_redirects, cfg.retry_delay};
    std::deque<job> jobs;  // (each holds a signal, which does not move)
    slow_state state{&jobs};
    op.slow = &state;
    struct forget {
      cluster_exec& op;
      ~forget() { op.slow = nullptr; }
    } on_exit{op};
    const auto aborted = [&] { return op.cancelled != asio::cancellation_type::none; };
    for (auto& p : plan.parts) {
      if (!wanted(p.first)) continue;
      if (!p.every_primary) {
        jobs.emplace_back(p, policy);
        continue;
      }
      for (const auto& s : topo.shards())
        jobs.emplace_back(p, policy).pinned = topo.nodes()[s.primary].address;
    }
    if (jobs.size() > 1) ++stats.split;
    // The fast path's attempt counts: what held its replies back is each job's first outcome.
    if (op.redirected || op.lost) {
      attempt_result first;
      first.what = op.redirected ? attempt_result::kind::redirected : attempt_result::kind::lost;
      first.r = op.redirected;
      first.ec = op.lost;
      for (job& j : jobs) {
        j.next = apply(j.machine.next(first));
        if (j.next.what == redirect_machine::step::fail) co_return j.next.ec;
      }
    }

    asio::steady_timer all_back(ex);
    std::size_t pending = 0;
    for (;;) {
      // The parts still owed go out together, after the longest wait any of them asked for.
      std::chrono::milliseconds delay{0};
      for (const job& j : jobs)
        if (!j.done) delay = std::max(delay, j.next.delay);
      if (delay.count() > 0 && !aborted()) {
        asio::steady_timer t(ex, std::min(clock::now() + delay, deadline));
        state.timer = &t;
        error_code ignored;
        co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
        state.timer = nullptr;
      }
      if (aborted()) co_return error_code(asio::error::operation_aborted);
      if (closed) co_return error_code(error::closed);
      if (clock::now() >= deadline) co_return error_code(error::timeout);
      for (job& j : jobs) {
        j.launched = false;
        if (j.done) continue;
        connection* conn = nullptr;
        if (j.next.to || j.pinned) {
          j.sent_to = j.next.to ? *j.next.to : *j.pinned;
          conn = &node(j.sent_to);
        } else if (const std::size_t i = pick(j.what->slot, j.what->readonly); i != no_node) {
          j.sent_to = topo.nodes()[i].address;
          conn = &conn_at(i);
        } else {
          attempt_result none;
          none.what = attempt_result::kind::no_node;
          j.next = apply(j.machine.next(none));
          continue;
        }
        // The part goes as it is; after ASK, behind ASKING, in a request of the job's own.
        proto::request& sent = j.next.asking ? j.asking : j.what->req;
        if (j.next.asking) {
          j.asking.clear();
          j.asking.push("ASKING");
          j.asking.append(j.what->req);
        }
        auto& sent_cfg = sent.get_config();
        sent_cfg = op.req->get_config();
        sent_cfg.cancel_if_not_connected = true;
        if (deadline != clock::time_point::max())
          sent_cfg.timeout = std::max(
              std::chrono::milliseconds(1),
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
        j.replies.clear();
        j.launched = true;
        ++pending;
        conn->async_exec(sent, j.replies,
                         asio::bind_cancellation_slot(j.signal.slot(),
                                                      [&, jp = &j](error_code e, std::size_t n) {
                                                        jp->ec = e;
                                                        op.bytes_read += n;
                                                        if (--pending == 0) all_back.cancel();
                                                      }));
      }
      while (pending > 0) {
        all_back.expires_at(clock::time_point::max());
        error_code ignored;
        co_await all_back.async_wait(asio::redirect_error(use_awaitable, ignored));
      }
      if (!retired.empty()) close_drained();

      for (job& j : jobs) {
        if (!j.launched) continue;
        if (j.next.asking && !j.ec && !j.replies.empty())
          j.replies.erase(j.replies.begin());  // ASKING's +OK
        j.next = apply(j.machine.next(outcome(j)));
        switch (j.next.what) {
          case redirect_machine::step::send:
            break;
          case redirect_machine::step::done:
            j.done = true;
            break;
          case redirect_machine::step::fail:
            co_return j.next.ec;
          case redirect_machine::step::give_up:
            for (auto& reply : j.replies) {
              if (reply.has_error() && redirect::parse(reply.error().message, j.sent_to)) {
                std::string& message = reply.error_storage().message;
                message = redirect_machine::too_many_redirects(cfg.max_redirects, message);
                break;
              }
            }
            j.done = true;
            break;
        }
      }
      if (std::all_of(jobs.begin(), jobs.end(), [](const job& j) { return j.done; })) break;
    }

    // Put the replies back in the caller's order, merging what was split.
    reply_merge merged(total, plan.commands);
    for (job& j : jobs) {
      std::vector<proto::value> values;
      values.reserve(j.replies.size());
      for (auto& r : j.replies)
        values.push_back(value_of(r));
      merged.add(*j.what, std::move(values));
    }
    if (only.empty()) op.adapter.prepare(total);
    for (std::size_t i = 0; i < total; ++i)
      if (wanted(i) && merged.reply(i)) replay(*merged.reply(i), i, op.adapter);
    co_return error_code();
  }

  asio::any_io_executor ex;
  cluster_config cfg;
  proto::command_table table;
  detail::router router;
  cluster_topology topo;
  std::map<node_address, std::unique_ptr<node_entry>> nodes;
  std::vector<connection*> node_conns;  // by index in topo.nodes(); see conn_at
  std::vector<std::unique_ptr<node_entry>> retired;
  std::vector<asio::steady_timer*> waiting_timers;
  asio::steady_timer refresh_timer;
  // The topology has been read (a topology read never has no shard).
  bool ready() const noexcept { return !topo.shards().empty(); }
  bool closed = false;
  bool refresh_wanted = false;
  bool run_started = false;
  clock::time_point last_attempt{};  // of a topology refresh
  std::size_t next_turn = 0;
  cluster_stats stats;
  std::function<void()> on_change;  // cluster_client::on_topology_change
  // MOVED replies since the last refresh that agreed with them (see apply).
  std::vector<redirect> recent_moves;
  std::size_t stale_reads = 0;
  static constexpr std::size_t max_stale_reads = 10;
  static constexpr auto refresh_read_timeout = std::chrono::milliseconds(1000);
  // See run(): refreshes while a primary does not answer, and how often that is checked.
  static constexpr auto degraded_gap = std::chrono::milliseconds(250);
  static constexpr auto health_watch = std::chrono::milliseconds(250);
  std::size_t refresh_turn = 0;
  op_pool pool;
  bool initiating_ = false;
  std::shared_ptr<spdlog::logger> log;
};

void* allocate_op(cluster_impl& c, std::size_t size) {
  return c.pool.allocate(size);
}
void deallocate_op(cluster_impl& c, void* p, std::size_t size) noexcept {
  c.pool.deallocate(p, size);
}
const asio::any_io_executor& executor_of(const cluster_impl& c) noexcept {
  return c.ex;
}
bool initiating(const cluster_impl& c) noexcept {
  return c.initiating_;
}
void start_exec(cluster_impl& c, cluster_exec& e) {
  c.start(e);
}
void cancel_exec(cluster_impl& c, cluster_exec& e, asio::cancellation_type type) {
  c.cancel(e, type);
}
cluster_impl& impl_of(cluster_client& c) noexcept {
  return *c.impl_;
}

}  // namespace detail

void proto::response_adapter<detail::cluster_exec>::on_node(std::size_t index, const node& n) {
  if (n.depth == 0 && !n.in_attribute && n.data_type == type::simple_error) {
    if (auto r = redcoro::detail::redirect::parse(n.value)) {
      op_->held_back.push_back(index);
      // The slow path's machine takes it from here (MOVED recorded, ASK followed...).
      if (!op_->redirected) op_->redirected = r;
      return;
    }
  }
  op_->adapter.on_node(index, n);
}

cluster_client::cluster_client(executor_type ex, cluster_config cfg)
    : impl_(std::make_unique<detail::cluster_impl>(std::move(ex), std::move(cfg))) {}

cluster_client::~cluster_client() {
  // As the connection's: a client destroyed without close() still stops its node connections.
  if (impl_) close();
}

cluster_config make_cluster_config(const cluster_url& url) {
  cluster_config c;
  for (const auto& e : url.seeds)
    c.seeds.push_back(node_address{e.host, e.port});
  c.node = url.node;
  if (url.reads) c.reads = static_cast<read_from>(*url.reads);
  if (url.max_redirects) c.max_redirects = *url.max_redirects;
  if (url.refresh_interval) c.refresh_interval = *url.refresh_interval;
  return c;
}
static_assert(static_cast<int>(cluster_url::read_from::any) == static_cast<int>(read_from::any));

cluster_client::executor_type cluster_client::get_executor() const noexcept {
  return impl_->ex;
}

void cluster_client::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  detail::start_run_once(c.ex, c.run_started, c.run(), std::move(handler));
}

void cluster_client::scan_impl(
    cluster_scan& scan,
    asio::any_completion_handler<void(error_code, std::vector<std::string>)> handler) {
  asio::co_spawn(
      impl_->ex, impl_->scan_step(scan),
      [h = std::move(handler)](std::exception_ptr e,
                               std::pair<error_code, std::vector<std::string>> r) mutable {
        if (e) r.first = make_error_code(std::errc::not_enough_memory);
        std::move(h)(r.first, std::move(r.second));
      });
}

const cluster_config& cluster_client::get_config() const noexcept {
  return impl_->cfg;
}

void cluster_client::close() {
  auto& c = *impl_;
  if (c.closed) return;
  c.closed = true;
  c.refresh_timer.cancel();
  for (auto& [a, e] : c.nodes)
    e->conn->close();
  c.wake_all();
}

void cluster_client::refresh() {
  impl_->request_refresh();
}

const cluster_topology& cluster_client::current_topology() const noexcept {
  return impl_->topo;
}

connection& cluster_client::node(const node_address& address) {
  connection& conn = impl_->node(address);
  impl_->nodes.find(address)->second->pinned = true;
  return conn;
}

std::vector<node_address> cluster_client::primaries() const {
  return impl_->topo.primaries();
}

std::optional<node_address> cluster_client::primary_for(const proto::request& req) {
  auto& c = *impl_;
  if (!c.ready()) return std::nullopt;
  const auto r = c.router.single(req.payload());
  if (!r) return std::nullopt;
  if (r->slot == detail::any_slot) {
    auto all = c.topo.primaries();
    if (all.empty()) return std::nullopt;
    return all.front();
  }
  const auto shard = c.topo.shard_of(static_cast<std::uint16_t>(r->slot));
  if (shard == cluster_topology::no_shard) return std::nullopt;
  return c.topo.nodes()[c.topo.shards()[shard].primary].address;
}

void cluster_client::on_topology_change(std::function<void()> callback) {
  impl_->on_change = std::move(callback);
}

void cluster_client::wait_topology_impl(std::chrono::milliseconds timeout,
                                        asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  detail::spawn_to_handler(c.ex,
                           c.wait_ready(detail::deadline_for(timeout, c.cfg.node.request_timeout)),
                           std::move(handler));
}

bool cluster_client::has_topology() const noexcept {
  return impl_->ready();
}

const cluster_stats& cluster_client::stats() const noexcept {
  return impl_->stats;
}

cluster_metrics cluster_client::metrics() const {
  cluster_metrics m;
  m.counters = impl_->stats;
  const auto primaries = impl_->topo.primaries();
  for (const auto& [address, entry] : impl_->nodes) {
    const bool primary = std::find(primaries.begin(), primaries.end(), address) != primaries.end();
    m.nodes.push_back(
        {entry->conn->address(), primary ? "primary" : "replica", entry->conn->metrics()});
  }
  for (std::uint32_t slot = 0; slot < proto::slot_count; ++slot)
    m.slots_covered +=
        impl_->topo.shard_of(static_cast<std::uint16_t>(slot)) != cluster_topology::no_shard;
  return m;
}

static_assert(executes_requests<cluster_client>);

}  // namespace redcoro
