#pragma once

#include <redcoro/client/connection.hpp>
#include <redcoro/pubsub/message.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro {

namespace detail {
struct subscriber_impl;
}

/// Pub/sub on one RESP3 connection: channels, patterns and shard channels, with ordinary
/// commands (PUBLISH included) on the same connection.
///
/// \code
///   redcoro::subscriber sub(ioc, cfg);
///   sub.async_run(asio::detached);
///   co_await sub.async_subscribe({"news", "alerts"}, asio::use_awaitable);  // confirmed
///   co_await sub.async_psubscribe({"user:*"}, asio::use_awaitable);
///   for (;;) {
///     auto m = co_await sub.async_receive(asio::use_awaitable);
///     if (m.is_message()) handle(m.channel, m.payload);
///   }
/// \endcode
///
/// It remembers what it is subscribed to and subscribes again on every reconnect, inside
/// the connection's handshake, so nothing published after the new subscription is missed
/// before it, and every new message comes after the confirmations (delivered with
/// `resubscribed` set). Threads: like connection, it belongs to its executor.
class subscriber {
 public:
  using executor_type = asio::any_io_executor;
  using receive_signature = detail::message_queue::receive_signature;

  subscriber(executor_type ex, connection_config cfg = {}, subscriber_config opts = {});
  template <execution_context Context>
  subscriber(Context& ctx, connection_config cfg = {}, subscriber_config opts = {})
      : subscriber(ctx.get_executor(), std::move(cfg), opts) {}
  ~subscriber();
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  executor_type get_executor() const noexcept;
  /// The connection underneath, for ordinary commands (PUBLISH, PUBSUB NUMSUB, ...).
  connection& next_layer() noexcept;

  /// Runs the connection and the loop that sorts its push messages; completes when closed.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          run_impl(asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }

  /// SUBSCRIBE; completes when the server has confirmed every channel (or with the error
  /// that stopped it: timeout after connection_config::request_timeout, closed, ...). An empty list
  /// completes with invalid_argument and sends nothing. When the server refuses the command
  /// (NOPERM...) it completes with proto::error::server_error, and the subscriber does not
  /// hold those channels; the forms with `refusal` store the server's reply there ("NOPERM
  /// ...", or for shard channels "MOVED ..." or "CROSSSLOT ..."), each call in its own string.
  template <class Token>
  auto async_subscribe(std::vector<std::string> channels, Token&& token) {
    return async_change(kind::subscribe, std::move(channels), nullptr, std::forward<Token>(token));
  }
  template <class Token>
  auto async_subscribe(std::vector<std::string> channels, std::string& refusal, Token&& token) {
    return async_change(kind::subscribe, std::move(channels), &refusal, std::forward<Token>(token));
  }
  template <class Token>
  auto async_psubscribe(std::vector<std::string> patterns, Token&& token) {
    return async_change(kind::psubscribe, std::move(patterns), nullptr, std::forward<Token>(token));
  }
  template <class Token>
  auto async_psubscribe(std::vector<std::string> patterns, std::string& refusal, Token&& token) {
    return async_change(kind::psubscribe, std::move(patterns), &refusal,
                        std::forward<Token>(token));
  }
  template <class Token>
  auto async_ssubscribe(std::vector<std::string> channels, Token&& token) {
    return async_change(kind::ssubscribe, std::move(channels), nullptr, std::forward<Token>(token));
  }
  template <class Token>
  auto async_ssubscribe(std::vector<std::string> channels, std::string& refusal, Token&& token) {
    return async_change(kind::ssubscribe, std::move(channels), &refusal,
                        std::forward<Token>(token));
  }
  /// UNSUBSCRIBE of these channels, or of all of them when empty; completes when confirmed.
  template <class Token>
  auto async_unsubscribe(std::vector<std::string> channels, Token&& token) {
    return async_change(kind::unsubscribe, std::move(channels), nullptr,
                        std::forward<Token>(token));
  }
  template <class Token>
  auto async_punsubscribe(std::vector<std::string> patterns, Token&& token) {
    return async_change(kind::punsubscribe, std::move(patterns), nullptr,
                        std::forward<Token>(token));
  }
  template <class Token>
  auto async_sunsubscribe(std::vector<std::string> channels, Token&& token) {
    return async_change(kind::sunsubscribe, std::move(channels), nullptr,
                        std::forward<Token>(token));
  }

  /// Any of the six above by its kind (proto::pubsub_kind::subscribe ... sunsubscribe): for
  /// code that forwards a kind. `refusal`: null, or where the server's reply goes when it
  /// refuses the call (left empty otherwise); it must outlive the call.
  template <class Token>
  auto async_change(proto::pubsub_kind k, std::vector<std::string> names, std::string* refusal,
                    Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this, k, refusal](auto handler, std::vector<std::string> n) {
          change_impl(k, std::move(n), refusal,
                      asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token, std::move(names));
  }

  /// The next message or confirmation, in the order the server sent them. One receive at a
  /// time; completes with error::closed once the subscriber is closed and drained.
  template <class Token>
  auto async_receive(Token&& token) {
    return queue().async_receive(std::forward<Token>(token));
  }

  /// The next buffered message or confirmation without waiting, or nullopt. After an
  /// async_receive, draining with try_receive takes a burst without a completion (and an
  /// executor hop) per message:
  /// \code
  ///   auto m = co_await sub.async_receive(asio::use_awaitable);
  ///   handle(m);
  ///   while (auto more = sub.try_receive()) handle(*more);
  /// \endcode
  std::optional<pubsub_message> try_receive();

  /// Calls `on_message(message)` for each message (confirmations skipped) until closed: the
  /// callback shape of other clients. `on_message` runs on the subscriber's executor.
  void on_message(std::function<void(const pubsub_message&)> callback);

  void close();

  /// What the subscriber holds (wanted, whether or not confirmed yet). A shard channel the
  /// server dropped by itself (its slot moved to another node) is not held any more.
  const std::set<std::string, std::less<>>& channels() const noexcept;
  const std::set<std::string, std::less<>>& patterns() const noexcept;
  const std::set<std::string, std::less<>>& shard_channels() const noexcept;
  /// Messages dropped by the overflow policy, and connections dropped for it.
  std::uint64_t dropped() const noexcept;
  std::uint64_t overflow_disconnects() const noexcept;
  /// Messages received and dropped, connections dropped for overflow, messages buffered.
  subscriber_stats message_stats() const noexcept;
  /// The same counters, shared, for a reader that may outlive the subscriber (the HTTP
  /// exporter); read them on the subscriber's executor.
  friend std::shared_ptr<const subscriber_stats> shared_stats(const subscriber& s) noexcept;
  /// Messages waiting for async_receive.
  std::size_t buffered() const noexcept;

 private:
  using kind = proto::pubsub_kind;

  void run_impl(asio::any_completion_handler<void(error_code)> handler);
  void change_impl(kind k, std::vector<std::string> names, std::string* refusal,
                   asio::any_completion_handler<void(error_code)> handler);
  detail::message_queue& queue() noexcept;

  std::unique_ptr<detail::subscriber_impl> impl_;
};

/// Channels of keyspace notifications (the server needs `notify-keyspace-events`, e.g. "KEA"
/// for everything; see the README): events on keys matching `key_pattern` in `db`, and keys
/// that had `event` ("expired", "set", "del", ...).
inline std::string keyspace_channel(int db, std::string_view key_pattern) {
  return "__keyspace@" + std::to_string(db) + "__:" + std::string(key_pattern);
}
inline std::string keyevent_channel(int db, std::string_view event) {
  return "__keyevent@" + std::to_string(db) + "__:" + std::string(event);
}

}  // namespace redcoro
