#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/config.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/dedicated.hpp>
#include <redcoro/client/detail/operation.hpp>
#include <redcoro/client/lease.hpp>
#include <redcoro/client/metrics.hpp>
#include <redcoro/client/sentinel_config.hpp>
#include <redcoro/client/url.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace redcoro {

class client;
class sentinel_client;
namespace detail {
struct scan_access;
}

/// What a handle talks to.
enum class deployment : std::uint8_t {
  single,   ///< one multiplexed connection (connection_config::pool_size == 0)
  pooled,   ///< a redcoro::client: shared connection plus a pool of dedicated ones
  cluster,  ///< a cluster_client
  sentinel  ///< a Sentinel-managed primary (or replica)
};
std::string_view to_string(deployment d) noexcept;

/// One server of a health report.
struct node_health {
  std::string address;  ///< "host:port"
  bool reachable = false;
  std::string role;  ///< what ROLE said: "master", "slave"; empty when unreachable
  std::chrono::microseconds round_trip{0};
  std::string error;  ///< why it is not reachable
};

/// What a handle's engine did (handle::metrics()): a snapshot, read on the handle's executor.
struct deployment_metrics {
  deployment kind = deployment::single;
  /// One entry per connection or node (a cluster: one per node it has a connection to).
  std::vector<node_metrics> nodes;
  /// Pooled client (and the dedicated connections of a cluster's): connections open, leased
  /// now, callers waiting for one.
  std::uint64_t pool_open = 0, pool_leased = 0, pool_waiting = 0;
  /// Cluster only: redirects followed, topology refreshes, and slots with an owner.
  std::uint64_t moved = 0, ask = 0, retries = 0, refreshes = 0;
  std::uint64_t slots_covered = 0;
  /// Every node's metrics summed.
  connection_metrics total() const;
};

/// What a readiness probe needs to know (handle::async_health).
struct health_report {
  deployment kind = deployment::single;
  /// Up and serving: the server answered; on a cluster, every node answered,
  /// `cluster_state` is "ok" and every slot has an owner.
  bool healthy = false;
  /// Why not, in words, when not healthy.
  std::string reason;
  /// The server's (the first primary's on a cluster): role, version, address, the round
  /// trip of a PING.
  std::string role;
  std::string server_version;
  std::string address;
  std::chrono::microseconds round_trip{0};
  /// Cluster only: `cluster_state` of CLUSTER INFO, whether all 16384 slots have an owner in
  /// the topology, and every node of the topology.
  std::string cluster_state;
  bool all_slots_covered = false;
  std::vector<node_health> nodes;
};

/// A cursor over every key of the deployment (handle::async_scan): one server's SCAN, or each
/// primary of a cluster in turn. Keys come back without the key prefix.
class scan_cursor {
 public:
  scan_cursor() = default;
  explicit scan_cursor(cmd::scan_options o) : options_(std::move(o)) {}
  /// True once the whole keyspace has been walked.
  bool done() const noexcept { return done_; }

 private:
  friend struct detail::scan_access;
  cmd::scan_options options_;
  std::uint64_t cursor_ = 0;
  bool done_ = false;
  std::optional<cluster_scan> cluster_;
};

/// What a handle is made from: settings of one server (pooled client, or a single
/// connection with pool_size 0), of a cluster, or of a Sentinel-managed deployment.
using handle_config = std::variant<connection_config, cluster_config, sentinel_config>;

/// handle_config from a URL (see client/README.md, "Connection URLs"); throws bad_url.
/// Settings the URL does not mention come from `defaults`.
handle_config make_handle_config(std::string_view url, const connection_config& defaults = {});

class handle;

namespace detail {
class handle_backend;

struct handle_entry;

// A handle_entry run on a cluster: the cluster's own entry, pointing back to it.
struct handle_cluster_entry : cluster_exec {
  handle_cluster_entry(handle_entry& e, complete_fn f);
  handle_entry* owner;
};

// One async_exec on a handle: the operation layer's entry (client/detail/operation.hpp). It
// is a connection's entry too, so that over one server the handle queues it on the
// connection itself; on a cluster it carries the cluster's entry and starts that. Either
// way: no second operation, no second allocation.
struct handle_entry : exec_entry {
  using complete_fn = void (*)(handle_entry& self, error_code ec);
  handle_entry(const proto::request& r, proto::any_adapter a, complete_fn f)
      : exec_entry(r, a, &from_engine), done(f) {}
  static void from_engine(exec_entry& e, error_code ec);

  complete_fn done;
  handle_backend* backend = nullptr;               // while it runs
  std::optional<handle_cluster_entry> on_cluster;  // made when first started on a cluster
};

inline handle_cluster_entry::handle_cluster_entry(handle_entry& e, complete_fn f)
    : cluster_exec(*e.req, e.adapter, f), owner(&e) {}

void* allocate_op(handle_backend& b, std::size_t size);
void deallocate_op(handle_backend& b, void* p, std::size_t size) noexcept;
const asio::any_io_executor& executor_of(const handle_backend& b) noexcept;
bool initiating(const handle_backend& b) noexcept;
void start_exec(handle_backend& b, handle_entry& e);
void cancel_exec(handle_backend& b, handle_entry& e, asio::cancellation_type type);

// The coroutines behind the handle's other operations; each keeps the engine alive.
asio::awaitable<std::pair<error_code, lease>> acquire_for(std::shared_ptr<handle_backend> b,
                                                          proto::request routing);
asio::awaitable<std::pair<error_code, health_report>> health_of(std::shared_ptr<handle_backend> b,
                                                                std::chrono::milliseconds bound);
asio::awaitable<std::pair<error_code, bool>> wait_ready(std::shared_ptr<handle_backend> b,
                                                        std::chrono::milliseconds bound);
asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan_step(
    std::shared_ptr<handle_backend> b, scan_cursor& cursor);
const std::shared_ptr<spdlog::logger>& logger_of(const handle_backend& b) noexcept;
struct handle_owner;
}  // namespace detail

/// One handle for every deployment: a single server, a pooled client, a cluster or a
/// Sentinel-managed primary, behind one non-template interface, so that service code written
/// against it runs unchanged on each (and it satisfies `executes_requests`).
///
/// \code
///   auto redis = redcoro::handle(ioc.get_executor(), "redis+cluster://10.0.0.1,10.0.0.2");
///   auto n = co_await redis.async_exec(cmd::incr("visits"), asio::use_awaitable);
///   auto report = co_await redis.async_health(asio::use_awaitable);
/// \endcode
///
/// A handle is a small value: copies share one engine, which runs (connects, reconnects,
/// follows the topology) from the moment the handle is made. When the last copy goes, the
/// engine closes once the requests in flight through it are answered. Use a handle from its
/// executor, as a connection.
///
/// What differs between deployments is refused, not done wrongly: a database other than 0 on
/// a cluster is refused when the handle is made (std::system_error, error::invalid_config);
/// SCAN through async_exec on a cluster is answered with an error reply (use async_scan);
/// dedicated connections on a single connection fail with error::unsupported.
class handle {
 public:
  using executor_type = asio::any_io_executor;

  /// Makes the engine the config describes and starts it. Throws std::system_error
  /// (error::invalid_config) for a config that cannot work.
  handle(executor_type ex, handle_config cfg);
  /// From a URL; throws bad_url or std::system_error.
  handle(executor_type ex, std::string_view url, const connection_config& defaults = {});
  template <execution_context Context>
  handle(Context& ctx, handle_config cfg)
      : handle(executor_type(ctx.get_executor()), std::move(cfg)) {}
  template <execution_context Context>
  handle(Context& ctx, std::string_view url, const connection_config& defaults = {})
      : handle(executor_type(ctx.get_executor()), url, defaults) {}

  executor_type get_executor() const noexcept;
  deployment kind() const noexcept;

  /// As connection::async_exec: routed to the node that owns the keys on a cluster, to the
  /// current primary under Sentinel; per-operation cancellation reaches the engine.
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return detail::initiate_exec<detail::handle_entry>(*backend_, req, resp,
                                                       std::forward<Token>(token));
  }
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return detail::initiate_exec<detail::handle_entry>(*backend_, std::move(x),
                                                       std::forward<Token>(token));
  }

  /// Runs a command (a blocking one: BLPOP, XREAD BLOCK...) on a dedicated connection to the
  /// server that owns its keys, then gives the connection back. Completes with
  /// error::unsupported on a single connection, error::cross_slot on a cluster when its keys
  /// span slots.
  template <owned_request X, class Token>
  auto async_exec_dedicated(X x, Token&& token) {
    using value = typename X::value_type;
    auto acquiring = detail::acquire_for(shared_backend(), x.request());
    return detail::run_coroutine<void(error_code, value)>(
        get_executor(), detail::exec_dedicated(std::move(acquiring), std::move(x)),
        std::forward<Token>(token));
  }

  /// An optimistic transaction (see client::async_optimistic) on a dedicated connection to
  /// the server that owns `keys` (which must share a slot on a cluster).
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, int max_attempts, Token&& token) {
    using value = detail::optimistic_value<Make>;
    proto::request routing;
    routing.push_range("EXISTS", keys);
    auto acquiring = detail::acquire_for(shared_backend(), std::move(routing));
    return detail::run_coroutine<void(error_code, value)>(
        get_executor(),
        detail::optimistic(std::move(acquiring), std::move(keys), std::move(make), max_attempts,
                           detail::logger_of(*backend_)),
        std::forward<Token>(token));
  }
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, Token&& token) {
    return async_optimistic(std::move(keys), std::move(make), 16, std::forward<Token>(token));
  }

  /// The next keys of a walk over the whole keyspace: `void(error_code, std::vector<std::string>)`.
  /// \code
  ///   redcoro::scan_cursor scan({.match = "user:*"});
  ///   while (!scan.done())
  ///     for (auto& key : co_await redis.async_scan(scan, asio::use_awaitable)) use(key);
  /// \endcode
  template <class Token>
  auto async_scan(scan_cursor& cursor, Token&& token) {
    return detail::run_coroutine<void(error_code, std::vector<std::string>)>(
        get_executor(), detail::scan_step(shared_backend(), cursor), std::forward<Token>(token));
  }

  /// Asks every server of the deployment how it is (PING, ROLE, INFO server; CLUSTER INFO on a
  /// cluster), each bounded by `bound`: `void(error_code, health_report)`. The error code is
  /// set only when the report could not be made (closed); an unreachable server is in the
  /// report.
  template <class Token>
  auto async_health(std::chrono::milliseconds bound, Token&& token) {
    return detail::run_coroutine<void(error_code, health_report)>(
        get_executor(), detail::health_of(shared_backend(), bound), std::forward<Token>(token));
  }
  template <class Token>
  auto async_health(Token&& token) {
    return async_health(std::chrono::milliseconds(1000), std::forward<Token>(token));
  }

  /// What the engine did so far (see deployment_metrics); call it on the handle's executor.
  deployment_metrics metrics() const;

  /// Completes when the deployment answers (on a cluster: its topology is read and a PING to
  /// the first primary is answered), or with error::timeout after `bound`.
  template <class Token>
  auto async_wait_ready(std::chrono::milliseconds bound, Token&& token) {
    return detail::run_coroutine<void(error_code, bool)>(
        get_executor(), detail::wait_ready(shared_backend(), bound), std::forward<Token>(token));
  }

  /// Closes the engine now, for every copy: queued requests fail with error::closed.
  void close();
  /// Requests sent through this handle's engine and not yet answered.
  std::size_t in_flight() const noexcept;
  /// The connection's key_prefix, put before every key a request names (empty: none). What
  /// lands in a hash slot is this prefix followed by the key.
  std::string_view key_prefix() const noexcept;

  /// The engine underneath, for what only it has (nullptr when it is another kind).
  client* as_client() const noexcept;
  connection* as_connection() const noexcept;
  cluster_client* as_cluster() const noexcept;
  sentinel_client* as_sentinel() const noexcept;

 private:
  std::shared_ptr<detail::handle_backend> shared_backend() const;
  std::shared_ptr<detail::handle_owner> owner_;
  detail::handle_backend* backend_ = nullptr;
};

}  // namespace redcoro
