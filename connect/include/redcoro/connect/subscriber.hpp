#pragma once

#include <redcoro/connect/handle.hpp>
#include <redcoro/pubsub/message.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace redcoro {

namespace detail {
struct handle_subscriber_impl;
}

/// Pub/sub for whatever a handle talks to, so that a service subscribes the same way on every
/// deployment: a `subscriber` on one server (or on the primary a Sentinel-managed handle
/// found; it follows the primary as the handle does), a `cluster_subscriber` on a cluster.
/// It runs by itself from construction until close() or destruction, and re-subscribes
/// after reconnects, as those do.
///
/// \code
///   redcoro::handle_subscriber events(redis);
///   events.on_message([](const redcoro::pubsub_message& m) { log(m.channel, m.payload); });
///   co_await events.async_subscribe({"user-events"}, asio::use_awaitable);
///   co_await redis.async_exec(cmd::publish("user-events", "login:42"), asio::use_awaitable);
/// \endcode
///
/// The handle must outlive it (a Sentinel-managed one lends it its address provider). Use it
/// from the handle's executor. Channels are not prefixed with the connection's key_prefix.
class handle_subscriber {
 public:
  explicit handle_subscriber(handle& redis, subscriber_config options = {});
  ~handle_subscriber();
  handle_subscriber(const handle_subscriber&) = delete;
  handle_subscriber& operator=(const handle_subscriber&) = delete;

  /// SUBSCRIBE and friends, as subscriber's and cluster_subscriber's: `void(error_code)`
  /// once the server confirmed every channel.
  template <class Token>
  auto async_subscribe(std::vector<std::string> channels, Token&& token) {
    return change(change_kind::subscribe, std::move(channels), std::forward<Token>(token));
  }
  template <class Token>
  auto async_psubscribe(std::vector<std::string> patterns, Token&& token) {
    return change(change_kind::psubscribe, std::move(patterns), std::forward<Token>(token));
  }
  template <class Token>
  auto async_ssubscribe(std::vector<std::string> channels, Token&& token) {
    return change(change_kind::ssubscribe, std::move(channels), std::forward<Token>(token));
  }
  template <class Token>
  auto async_unsubscribe(std::vector<std::string> channels, Token&& token) {
    return change(change_kind::unsubscribe, std::move(channels), std::forward<Token>(token));
  }
  template <class Token>
  auto async_punsubscribe(std::vector<std::string> patterns, Token&& token) {
    return change(change_kind::punsubscribe, std::move(patterns), std::forward<Token>(token));
  }
  template <class Token>
  auto async_sunsubscribe(std::vector<std::string> channels, Token&& token) {
    return change(change_kind::sunsubscribe, std::move(channels), std::forward<Token>(token));
  }

  /// The next message or confirmation: `void(error_code, pubsub_message)`.
  template <class Token>
  auto async_receive(Token&& token) {
    return asio::async_initiate<Token, void(error_code, pubsub_message)>(
        [this](auto handler) {
          receive(
              asio::any_completion_handler<void(error_code, pubsub_message)>(std::move(handler)));
        },
        token);
  }
  /// Messages to a callback instead (see subscriber::on_message).
  void on_message(std::function<void(const pubsub_message&)> callback);

  /// Unsubscribes from everything and stops.
  void close();

  /// The handle's executor, where the subscriber runs.
  asio::any_io_executor get_executor() const noexcept;
  /// Messages received and dropped, connections dropped for overflow, messages buffered (as
  /// subscriber::message_stats()).
  subscriber_stats message_stats() const noexcept;
  /// The same counters, shared, for a reader that may outlive the subscriber (the HTTP
  /// exporter); read them on the subscriber's executor.
  friend std::shared_ptr<const subscriber_stats> shared_stats(const handle_subscriber& s) noexcept;

 private:
  enum class change_kind : unsigned char {
    subscribe,
    psubscribe,
    ssubscribe,
    unsubscribe,
    punsubscribe,
    sunsubscribe
  };
  template <class Token>
  auto change(change_kind what, std::vector<std::string> names, Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this, what](auto handler, std::vector<std::string> n) {
          change_impl(what, std::move(n),
                      asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token, std::move(names));
  }
  void change_impl(change_kind what, std::vector<std::string> names,
                   asio::any_completion_handler<void(error_code)> handler);
  void receive(asio::any_completion_handler<void(error_code, pubsub_message)> handler);

  std::shared_ptr<detail::handle_subscriber_impl> impl_;
};

}  // namespace redcoro
