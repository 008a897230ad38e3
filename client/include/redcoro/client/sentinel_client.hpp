#pragma once

#include <redcoro/client/client.hpp>
#include <redcoro/client/command.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/endpoint.hpp>
#include <redcoro/client/sentinel_config.hpp>
#include <redcoro/proto/request.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace redcoro {

namespace detail {
struct sentinel_impl;
}

/// A client of a Sentinel-managed deployment: it asks the sentinels where the primary (or a
/// replica) is, talks to it through a redcoro::client (one multiplexed connection plus a pool
/// of dedicated ones), and follows failovers.
///
/// \code
///   auto cfg = redcoro::parse_sentinel_url("redis+sentinel://s1:26379,s2:26379/mymaster");
///   redcoro::sentinel_client redis(ioc, cfg);
///   redis.async_run(asio::detached);
///   auto n = co_await redis.async_exec(redcoro::cmd::incr("visits"), asio::use_awaitable);
/// \endcode
///
/// - **Where to connect.** Every connect of a data connection asks the sentinels in order,
///   the last one that answered first, each through a short-lived connection with
///   sentinel_config::sentinel's settings (its own credentials and TLS) and at most its
///   connect_timeout: `SENTINEL GET-MASTER-ADDR-BY-NAME` (role primary), or `SENTINEL
///   REPLICAS`, of which a healthy replica is taken, in turn (role replica). The data
///   connections check the server's `ROLE` ("master" / "slave") in their handshake, so a
///   demoted primary is never written to. `SENTINEL SENTINELS` adds the sentinels the
///   others know.
/// - **Failover.** One sentinel connection stays subscribed to `+switch-master` (moved to
///   another sentinel when it drops); on a switch of this primary every data connection,
///   pooled ones included, reconnects at once. After each (re)subscription, and every
///   sentinel_config::refresh_interval, the sentinels are asked again, which catches a switch
///   missed while no subscription was up.
/// - **Errors.** No sentinel reachable: the data connection's attempt fails with
///   error::no_sentinel_reachable (requests waiting for it fail with it at once) and is
///   retried with its backoff. Before the name was ever found, sentinels that answer but do
///   not know it end async_run with error::unknown_primary_name (a configuration error);
///   later (the sentinels were reconfigured) that is logged and retried like an unreachable
///   sentinel. Role replica without a healthy replica: error::no_healthy_replica, retried.
///
/// Threads and lifetime as for client: use it from its executor; destroy it only after
/// async_run has completed (call close() and wait for it).
class sentinel_client {
 public:
  using executor_type = asio::any_io_executor;
  template <class T>
  using awaitable = asio::awaitable<T>;

  /// Throws std::invalid_argument when the config names no sentinel or no primary name.
  sentinel_client(executor_type ex, sentinel_config cfg);
  template <execution_context Context>
  sentinel_client(Context& ctx, sentinel_config cfg)
      : sentinel_client(executor_type(ctx.get_executor()), std::move(cfg)) {}
  ~sentinel_client();
  sentinel_client(const sentinel_client&) = delete;
  sentinel_client& operator=(const sentinel_client&) = delete;

  executor_type get_executor() const noexcept { return client_.get_executor(); }
  /// The client of the data connections (its connection_config is sentinel_config::node,
  /// plus the address provider and the expected role).
  client& next_layer() noexcept { return client_; }
  const sentinel_config& get_config() const noexcept;

  /// Runs the data client and the sentinel watch until close(). Completes with error::closed
  /// after close(), operation_aborted when cancelled, error::unknown_primary_name when no
  /// sentinel knows the name (see above), or the data connection's last error once its
  /// reconnect_policy::max_attempts failed in a row.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          run_impl(asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }
  /// Stops async_run: closes the data connections (queued requests fail with error::closed)
  /// and the sentinel connections.
  void close();

  /// On the shared connection: see connection::async_exec.
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return client_.async_exec(req, resp, std::forward<Token>(token));
  }
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return client_.async_exec(std::move(x), std::forward<Token>(token));
  }
  /// On a pooled connection: see client.
  template <owned_request X, class Token>
  auto async_exec_dedicated(X x, Token&& token) {
    return client_.async_exec_dedicated(std::move(x), std::forward<Token>(token));
  }
  template <class Token>
  auto async_acquire(Token&& token) {
    return client_.async_acquire(std::forward<Token>(token));
  }
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, int max_attempts, Token&& token) {
    return client_.async_optimistic(std::move(keys), std::move(make), max_attempts,
                                    std::forward<Token>(token));
  }
  template <class Make, class Token>
  auto async_optimistic(std::vector<std::string> keys, Make make, Token&& token) {
    return client_.async_optimistic(std::move(keys), std::move(make), std::forward<Token>(token));
  }

  /// The address last given to a data connection, or announced by +switch-master (role
  /// primary); nullopt before the first.
  std::optional<endpoint> current_address() const;
  /// The sentinels known, in the order they are asked.
  std::vector<endpoint> sentinels() const;

 private:
  void run_impl(asio::any_completion_handler<void(error_code)> handler);

  std::shared_ptr<detail::sentinel_impl> impl_;  // before client_: its config refers to it
  client client_;
};

}  // namespace redcoro
