#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/config.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/metrics.hpp>
#include <redcoro/client/url.hpp>
#include <redcoro/cluster/topology.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace redcoro {

/// Which nodes serve read-only commands (those the server flags `readonly`: GET, MGET,
/// HGETALL, ZRANGE...). Everything else always goes to the slot's primary.
enum class read_from : std::uint8_t {
  primary,         ///< the primary only (default): reads see every acknowledged write
  prefer_replica,  ///< a connected, healthy replica of the slot's shard; the primary if none
  replica,         ///< replicas only: reads wait (up to their timeout) while a shard has none
  any              ///< primary and replicas in turn: spreads reads over the whole shard
};

/// What a cluster_client needs to know.
struct cluster_config {
  /// Nodes to ask for the topology, tried in order. Any node of the cluster will do; list a
  /// few so that one being down does not stop the client from starting.
  std::vector<node_address> seeds;
  /// Settings of every node connection: credentials, TLS, timeouts, reconnect policy,
  /// logger, key prefix. Its host, port and unix_socket are ignored.
  connection_config node;
  read_from reads = read_from::primary;
  /// Redirections (MOVED, ASK) and retries (TRYAGAIN, CLUSTERDOWN) one command may go
  /// through; the next one ends it with a TOOMANYREDIRECTS error reply naming the last.
  std::size_t max_redirects = 16;
  /// The topology is read again this often, and also at once (at most every
  /// `min_refresh_gap`) after a MOVED or a node that cannot be reached. 0: only then.
  std::chrono::milliseconds refresh_interval{30000};
  std::chrono::milliseconds min_refresh_gap{100};
  /// Wait before sending again after TRYAGAIN, CLUSTERDOWN or an unreachable node; it
  /// doubles on each retry of the same request, up to one second.
  std::chrono::milliseconds retry_delay{20};
};

/// The cluster_config a `redis+cluster://` URL describes (parse_cluster_url, client/url.hpp):
/// its seeds, node settings, and the options it sets; the rest keeps cluster_config's
/// defaults.
cluster_config make_cluster_config(const cluster_url& url);

/// Counters of what the cluster layer did, for logs, tests and dashboards.
struct cluster_stats {
  std::size_t moved = 0;      ///< MOVED replies followed
  std::size_t ask = 0;        ///< ASK replies followed
  std::size_t retries = 0;    ///< sent again after TRYAGAIN, CLUSTERDOWN or no connection
  std::size_t refreshes = 0;  ///< topology reads that succeeded
  std::size_t split = 0;      ///< requests sent as several parts (several nodes or slots)
};

/// What a cluster client did (cluster_client::metrics()).
struct cluster_metrics {
  /// One entry per node it has a connection to ("primary" or "replica").
  std::vector<node_metrics> nodes;
  cluster_stats counters;
  /// Slots with an owner in the current topology (16384 when the cluster is whole).
  std::uint64_t slots_covered = 0;
};

class cluster_client;
namespace detail {
struct cluster_impl;
}

/// A SCAN of the whole cluster: every primary in turn, each until it returns cursor 0. Keys
/// that move between nodes while it runs may be seen twice or not at all, as with SCAN on
/// one server during a rehash; keys that stay where they are are seen exactly once.
/// \code
///   redcoro::cluster_scan scan({.match = "user:*"});
///   while (!scan.done())
///     for (auto& key : co_await cl.async_scan(scan, asio::use_awaitable)) use(key);
/// \endcode
class cluster_scan {
 public:
  cluster_scan() = default;
  explicit cluster_scan(const cmd::scan_options& o)
      : match_(o.match), type_(o.type), count_(o.count) {}
  /// True once every primary has been scanned to its end.
  bool done() const noexcept { return started_ && next_node_ >= nodes_.size(); }

 private:
  friend class cluster_client;
  friend struct detail::cluster_impl;
  std::string match_, type_;
  std::int64_t count_ = 0;
  std::vector<node_address> nodes_;  // the primaries when the scan started
  std::size_t next_node_ = 0;
  std::uint64_t cursor_ = 0;
  bool started_ = false;
};

namespace detail {
struct cluster_impl;
struct cluster_exec;

// The fast path's request on the one node's connection that serves all of it: an entry
// started on that connection's engine directly, with no operation, pooled block or
// cancellation slot of its own, and the filter its replies go through (the redirects held
// back for the slow path, the rest to the caller's adapter). Lives in its cluster_exec while
// it runs.
struct cluster_node_exec final : exec_entry {
  cluster_node_exec(cluster_impl& c, cluster_exec& o, connection& to) noexcept;
  // The response adapter (proto::any_adapter) the connection fills.
  void on_node(std::size_t index, const proto::node& n);
  void prepare(std::size_t replies) const;
  std::size_t replies() const noexcept;
  std::error_code error() const;

  cluster_impl* impl;
  cluster_exec* op;
  connection* conn;
};

// One async_exec on a cluster_client, the non-template part the operation layer
// (client/detail/operation.hpp) builds on: the caller's request and response adapter, and
// what happened on the fast path.
struct cluster_exec {
  using complete_fn = void (*)(cluster_exec& self, error_code ec);

  cluster_exec(const proto::request& r, proto::any_adapter a, complete_fn f)
      : req(&r), adapter(a), complete(f) {}

  const proto::request* req;
  proto::any_adapter adapter;
  complete_fn complete;
  std::size_t bytes_read = 0;
  std::vector<std::size_t> held_back;  // fast path: replies that were redirects, to redo
  std::optional<redirect> redirected;  // fast path: the first of those redirects
  error_code lost;                     // fast path: a read lost with its connection
  bool readonly = false;               // fast path: every command only reads
  // Cancellation reaches the fast path's entry directly, and the slow path's parts through
  // their own signals (see cluster_impl::cancel).
  std::optional<cluster_node_exec> fast;  // fast path: while it runs on a node's connection
  asio::cancellation_type cancelled = asio::cancellation_type::none;
  void* slow = nullptr;  // the slow path's state while it runs
};

void* allocate_op(cluster_impl& c, std::size_t size);
void deallocate_op(cluster_impl& c, void* p, std::size_t size) noexcept;
const asio::any_io_executor& executor_of(const cluster_impl& c) noexcept;
bool initiating(const cluster_impl& c) noexcept;
void start_exec(cluster_impl& c, cluster_exec& e);
void cancel_exec(cluster_impl& c, cluster_exec& e, asio::cancellation_type type);
// The implementation, for layers that start their own cluster_exec entries on it (the
// handle, connect/).
cluster_impl& impl_of(cluster_client& c) noexcept;

}  // namespace detail

/// A client of a Redis Cluster: it learns the topology from the seeds (`CLUSTER SHARDS`,
/// or `CLUSTER SLOTS` on older servers), keeps one multiplexed connection per node, and sends
/// each command to the node serving its keys' slot. Redirections, resharding and failovers
/// are followed without the caller noticing, and requests whose commands live on several
/// nodes are split, sent in parallel and answered in the caller's order.
///
/// \code
///   redcoro::cluster_config cfg;
///   cfg.seeds = {{"127.0.0.1", 7000}, {"127.0.0.1", 7001}};
///   redcoro::cluster_client cl(ioc, cfg);
///   cl.async_run(asio::detached);
///   auto v = co_await cl.async_exec(cmd::get("user:42"), asio::use_awaitable);
///   auto [a, b] = co_await cl.async_exec(
///       redcoro::pipeline(cmd::incr("{user:42}:visits"), cmd::get("other")), asio::use_awaitable);
/// \endcode
///
/// Threads and lifetime as for connection: use it from its executor; destroy it only after
/// async_run has completed (call close() and wait for it).
class cluster_client {
 public:
  using executor_type = asio::any_io_executor;

  cluster_client(executor_type ex, cluster_config cfg);
  template <execution_context Context>
  cluster_client(Context& ctx, cluster_config cfg)
      : cluster_client(ctx.get_executor(), std::move(cfg)) {}
  ~cluster_client();
  cluster_client(const cluster_client&) = delete;
  cluster_client& operator=(const cluster_client&) = delete;

  executor_type get_executor() const noexcept;

  /// Reads the topology from the seeds (retrying them with the node config's reconnect
  /// policy), connects to the nodes, then keeps the topology fresh until close(). Completes
  /// with error::closed after close(), or with the last error once
  /// reconnect_policy::max_attempts rounds over the seeds failed. Requests made before the
  /// topology is known wait for it, up to their timeout.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          run_impl(asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }

  /// As connection::async_exec, routed: every command goes to the node serving its keys.
  /// Per-operation cancellation reaches the node connections (as on a connection: total
  /// cancellation only before the request was written).
  /// Completes with an error code only when the request as a whole failed (timeout, a
  /// connection lost after the request was written, closed); a command refused here (keys
  /// in several slots where that cannot work) or by the server has its error reply in its
  /// own slot of the response.
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return detail::initiate_exec<detail::cluster_exec>(*impl_, req, resp,
                                                       std::forward<Token>(token));
  }

  /// Runs a command, pipeline or transaction that carries its reply types (command.hpp).
  /// A transaction must keep its keys in one slot (use hash tags). A script the node does
  /// not know (NOSCRIPT) is sent again with its source, as on a connection.
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return detail::initiate_exec<detail::cluster_exec>(*impl_, std::move(x),
                                                       std::forward<Token>(token));
  }

  /// The next keys of a cluster-wide SCAN (see cluster_scan); an empty batch is possible
  /// before the end. Completes with the node's error (a connection error, or
  /// proto::error::server_error when it refused SCAN) without moving the scan on: call again.
  template <class Token>
  auto async_scan(cluster_scan& scan, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::vector<std::string>)>(
        [this](auto handler, cluster_scan* s) {
          scan_impl(*s, asio::any_completion_handler<void(error_code, std::vector<std::string>)>(
                            std::move(handler)));
        },
        token, &scan);
  }

  /// The settings it was made with.
  const cluster_config& get_config() const noexcept;

  /// Stops async_run: closes every node connection; queued requests fail with
  /// error::closed.
  void close();
  /// Reads the topology again soon (coalesced with any refresh already asked for).
  void refresh();

  /// The topology as last read (and corrected by MOVED replies since).
  const cluster_topology& current_topology() const noexcept;
  /// The connection to one node (made if there is none yet), for commands meant for that
  /// node only (INFO, CLUSTER INFO, SCAN of one node). Kept, and valid, until close(), even
  /// if the node leaves the topology.
  connection& node(const node_address& address);
  /// Addresses of the primaries, one per shard that serves slots.
  std::vector<node_address> primaries() const;
  /// The primary that serves all of `req` as the topology stands: the owner of its keys'
  /// slot, or the first primary when it has no key. nullopt before the topology is read, when
  /// its keys span slots, or when their slot has no owner. (What the handle uses to put a
  /// dedicated connection or a WATCH on the node that owns the keys.)
  std::optional<node_address> primary_for(const proto::request& req);
  const cluster_stats& stats() const noexcept;
  /// Every node connection's metrics, the counters, the slot coverage (on its executor).
  cluster_metrics metrics() const;
  /// True once the topology has been read.
  bool has_topology() const noexcept;
  /// Completes once the topology has been read (at once when it has), with error::timeout
  /// after `timeout` (the node config's request_timeout when negative, no limit when 0), or
  /// with error::closed after close().
  template <class Token>
  auto async_wait_topology(std::chrono::milliseconds timeout, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this, timeout](auto handler) {
          wait_topology_impl(timeout,
                             asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }
  /// Calls `callback` on the client's executor after every topology read and every slot a
  /// MOVED reply moved (cluster_subscriber follows shard channels this way). One callback;
  /// a new one replaces the last.
  void on_topology_change(std::function<void()> callback);

 private:
  void run_impl(asio::any_completion_handler<void(error_code)> handler);
  void wait_topology_impl(std::chrono::milliseconds timeout,
                          asio::any_completion_handler<void(error_code)> handler);
  void scan_impl(cluster_scan& scan,
                 asio::any_completion_handler<void(error_code, std::vector<std::string>)> handler);
  friend detail::cluster_impl& detail::impl_of(cluster_client& c) noexcept;
  std::unique_ptr<detail::cluster_impl> impl_;
};

}  // namespace redcoro
