#pragma once

#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/pubsub/message.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro {

/// What the cluster subscriber did on its own.
struct cluster_subscriber_stats {
  /// Shard channels subscribed on a new owner after their slot moved (resharding, failover).
  std::size_t shard_moves = 0;
  /// Times the channels and patterns moved to another node (theirs failed or left).
  std::size_t home_moves = 0;
};

namespace detail {
struct cluster_subscriber_impl;
}

/// Pub/sub on a Redis Cluster. Shard channels (SSUBSCRIBE) live on the primary that owns
/// their slot: each is subscribed there, through one redcoro::subscriber per such node, and
/// follows its slot when it moves (the node sends `sunsubscribe`, or the topology says so)
/// or its owner fails over. Channels and patterns (SUBSCRIBE, PSUBSCRIBE), which every node
/// of a cluster delivers, are subscribed on one primary and move when that node fails or
/// leaves. Messages from every node arrive through one async_receive, with one buffer and
/// one overflow policy.
///
/// \code
///   redcoro::cluster_subscriber sub(ioc, cluster_cfg);
///   sub.async_run(asio::detached);
///   co_await sub.async_ssubscribe({"orders:{eu}", "orders:{us}"}, asio::use_awaitable);
///   co_await sub.next_layer().async_exec(cmd::spublish("orders:{eu}", "42"),
///   asio::use_awaitable); auto m = co_await sub.async_receive(asio::use_awaitable);  //
///   confirmations, then smessage
/// \endcode
///
/// Confirmations the subscriber asked for by itself (re-subscribing after a reconnect, or on
/// a shard channel's new owner; unsubscribing from the old one) have `resubscribed` set.
/// Threads and lifetime as for cluster_client: use it from its executor; destroy it only
/// after async_run has completed (call close() and wait for it).
class cluster_subscriber {
 public:
  using executor_type = asio::any_io_executor;

  cluster_subscriber(executor_type ex, cluster_config cfg, subscriber_config opts = {});
  template <execution_context Context>
  cluster_subscriber(Context& ctx, cluster_config cfg, subscriber_config opts = {})
      : cluster_subscriber(ctx.get_executor(), std::move(cfg), opts) {}
  ~cluster_subscriber();
  cluster_subscriber(const cluster_subscriber&) = delete;
  cluster_subscriber& operator=(const cluster_subscriber&) = delete;

  executor_type get_executor() const noexcept;
  /// The cluster client underneath (it keeps the topology): for PUBLISH, SPUBLISH (routed
  /// to the channel's slot) and any other command.
  cluster_client& next_layer() noexcept;

  /// Runs the cluster client and the node subscribers; completes with error::closed after
  /// close(), or with the cluster client's error when it gave up.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          run_impl(asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }

  /// As subscriber's calls: each completes once the server confirmed every name, with
  /// proto::error::server_error when a node refused it (NOPERM), error::timeout after the
  /// node config's request_timeout, error::closed after close(). Shard channels in several
  /// slots are subscribed slot by slot, in parallel, each on its owner (MOVED followed).
  template <class Token>
  auto async_subscribe(std::vector<std::string> channels, Token&& token) {
    return change(0, true, std::move(channels), std::forward<Token>(token));
  }
  template <class Token>
  auto async_psubscribe(std::vector<std::string> patterns, Token&& token) {
    return change(1, true, std::move(patterns), std::forward<Token>(token));
  }
  template <class Token>
  auto async_ssubscribe(std::vector<std::string> channels, Token&& token) {
    return change(2, true, std::move(channels), std::forward<Token>(token));
  }
  /// Unsubscribes from these, or from all of their kind when empty.
  template <class Token>
  auto async_unsubscribe(std::vector<std::string> channels, Token&& token) {
    return change(0, false, std::move(channels), std::forward<Token>(token));
  }
  template <class Token>
  auto async_punsubscribe(std::vector<std::string> patterns, Token&& token) {
    return change(1, false, std::move(patterns), std::forward<Token>(token));
  }
  template <class Token>
  auto async_sunsubscribe(std::vector<std::string> channels, Token&& token) {
    return change(2, false, std::move(channels), std::forward<Token>(token));
  }

  /// The next message or confirmation, from any node. As subscriber::async_receive.
  template <class Token>
  auto async_receive(Token&& token) {
    return queue().async_receive(std::forward<Token>(token));
  }
  std::optional<pubsub_message> try_receive();
  void on_message(std::function<void(const pubsub_message&)> callback);

  void close();

  /// What is wanted, whether or not confirmed yet.
  const std::set<std::string, std::less<>>& channels() const noexcept;
  const std::set<std::string, std::less<>>& patterns() const noexcept;
  const std::set<std::string, std::less<>>& shard_channels() const noexcept;
  /// The node a shard channel is subscribed on now, if any.
  std::optional<node_address> node_of(std::string_view shard_channel) const;
  /// The node the channels and patterns are subscribed on, if any.
  std::optional<node_address> home() const;
  std::uint64_t dropped() const noexcept;
  std::uint64_t overflow_disconnects() const noexcept;
  /// Messages received and dropped, connections dropped for overflow, messages buffered.
  subscriber_stats message_stats() const noexcept;
  /// The same counters, shared, for a reader that may outlive the subscriber (the HTTP
  /// exporter); read them on the subscriber's executor.
  friend std::shared_ptr<const subscriber_stats> shared_stats(const cluster_subscriber& s) noexcept;
  std::size_t buffered() const noexcept;
  const cluster_subscriber_stats& stats() const noexcept;

 private:
  template <class Token>
  auto change(int family, bool adding, std::vector<std::string> names, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this, family, adding](auto handler, std::vector<std::string> n) {
          change_impl(family, adding, std::move(n),
                      asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token, std::move(names));
  }
  void run_impl(asio::any_completion_handler<void(error_code)> handler);
  void change_impl(int family, bool adding, std::vector<std::string> names,
                   asio::any_completion_handler<void(error_code)> handler);
  detail::message_queue& queue() noexcept;

  std::unique_ptr<detail::cluster_subscriber_impl> impl_;
};

}  // namespace redcoro
