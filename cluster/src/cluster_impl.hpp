#pragma once

// The cluster client's engine, shared by its two source files: cluster_client.cpp (requests:
// the fast path, the redirect-driven slow path, SCAN, and the public members) and
// cluster_refresh.cpp (the topology: reading it, applying it, the refresh loop, shutting
// down). Private to the cluster module.

#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/log.hpp>
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

#include <algorithm>
#include <deque>
#include <map>
#include <optional>

namespace redcoro {

namespace detail {

using clock = std::chrono::steady_clock;
using asio::awaitable;
using asio::use_awaitable;

struct cluster_impl {
  struct job;  // one part of a routed request (cluster_client.cpp)

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
    if (on_node) on_node(*e->conn);  // before it runs: its first handshake is the cache's too
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
  void retire_unwanted();

  void close_drained();

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
  awaitable<void> wait_change(clock::time_point deadline);

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

  void apply(cluster_topology t);

  // A primary of the old topology that serves no slot in `next` (a replica was promoted in its
  // place, or it left) and that has stopped answering (a frozen or partitioned process) may
  // still execute what sits in its socket when it wakes up, answer OK, and then drop those
  // writes when it resyncs as a replica. Its connection is dropped now, so that such writes
  // fail with connection_lost instead of being acknowledged, and what waits on it goes to
  // the new owner. A demoted primary that answers (CLUSTER FAILOVER) keeps its connection:
  // it answers what it holds with MOVED, which is followed.
  void drop_demoted(const cluster_topology& next);

  // A node connection that owes a reply for this long is not asked for the topology, and is
  // dropped when its node is demoted (drop_demoted).
  static constexpr auto stalled_after = std::chrono::milliseconds(1000);

  // Asks `conn` for the topology (and the command table when there is none yet).
  awaitable<bool> read_topology(connection& conn, bool wait_for_connection);

  // One refresh: the nodes we are connected to first (starting from a different one each
  // time, so that one node behind the others does not answer every time), then the seeds.
  awaitable<bool> refresh_once();

  awaitable<error_code> run();

  bool primary_unreachable() const;

  awaitable<void> shut_down();

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
  void cancel(cluster_exec& op, asio::cancellation_type type);

  // The common case: all of it goes to one connected node.
  bool try_fast(cluster_exec& op) {
    if (!ready()) return false;
    const auto r = router.single(*op.req);
    if (!r) return false;
    const std::size_t target = pick(r->slot, r->readonly);
    if (target == no_node) return false;
    op.readonly = r->readonly;
    connection& conn = conn_at(target);
    if (!conn.is_connected()) return false;
    start_exec(impl_of(conn), op.fast.emplace(*this, op, conn));
    return true;
  }

  // The end of the fast path's entry on its node's connection.
  static void fast_entry_done(exec_entry& e, error_code ec) {
    auto& f = static_cast<cluster_node_exec&>(e);
    cluster_impl& c = *f.impl;
    cluster_exec& op = *f.op;
    const connection& from = *f.conn;
    const std::size_t n = f.bytes_read;
    op.fast.reset();  // cancellation no longer goes to it
    c.fast_done(op, from, ec, n);
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
    if (on_slots_moved) on_slots_moved();
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

  awaitable<void> run_slow(cluster_exec& op);

  // Until the topology is known, or the reason it will not be (`op`: a request that may be
  // cancelled meanwhile).
  awaitable<error_code> wait_ready(clock::time_point deadline, const cluster_exec* op = nullptr);

  awaitable<std::pair<error_code, std::vector<std::string>>> scan_step(cluster_scan& s);

  // What the machine's action asks of the client, besides sending: the topology, the stats.
  redirect_machine::action apply(redirect_machine::action a) {
    if (a.moved) follow_moved(*a.moved);
    if (a.asking) {
      ++stats.ask;
      if (on_slots_moved) on_slots_moved();  // a slot is migrating
    }
    if (a.retry) ++stats.retries;
    if (a.refresh || (a.what == redirect_machine::step::fail && node_trouble(a.ec)))
      request_refresh();
    return a;
  }

  // How an attempt of `j` went, for its machine.
  attempt_result outcome(job& j) const;

  // Plans the request (or, after the fast path, what it held back), sends the parts, and
  // does what each part's redirect_machine says with their replies, then feeds the replies
  // to the caller's adapter in order.
  awaitable<error_code> routed(cluster_exec& op);

  // --- routed()'s steps, none of which waits ---

  static bool wanted(const std::vector<std::size_t>& only, std::size_t i);

  // One job per part of `plan` that is owed (those in `only`, or all); a part for every
  // primary becomes a job per shard. When the fast path tried already, what held its replies
  // back is each job's first outcome: an error when a machine gives up on it at once.
  error_code make_jobs(const cluster_exec& op, detail::plan& plan,
                       const std::vector<std::size_t>& only, std::deque<job>& jobs);

  static std::chrono::milliseconds longest_delay(const std::deque<job>& jobs);

  // Where `j` goes now (where its machine says, or a node that serves its slot) and the
  // request that carries it there, with what is left of the deadline. No node: its machine
  // hears so, and nothing is to be sent.
  struct destination {
    connection* conn = nullptr;
    proto::request* req = nullptr;
  };
  destination prepare(job& j, const cluster_exec& op, clock::time_point deadline);

  // What came back for a sent job, through its machine: done, to be sent again, or the
  // error that ends the whole request.
  error_code settle(job& j);

  // Puts the replies back in the caller's order, merging what was split.
  static void deliver(cluster_exec& op, std::deque<job>& jobs, const detail::plan& plan,
                      std::size_t total, const std::vector<std::size_t>& only);

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
  // Told of every node connection made from now on, before it runs, and of every slot seen
  // moving (a MOVED or ASK followed, a refresh that placed a slot elsewhere): for
  // cluster_tracking_cache.
  std::function<void(connection&)> on_node;
  std::function<void()> on_slots_moved;
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

}  // namespace detail
}  // namespace redcoro
