#pragma once

#include <redcoro/client/detail/ring.hpp>
#include <redcoro/proto/pubsub.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace redcoro {

/// One thing the subscriber delivers: a message, or a confirmation of (un)subscribing.
struct pubsub_message {
  /// Messages, then confirmations: for those `channel` is the channel or pattern, `count`
  /// the subscriptions the connection now holds.
  using kind = proto::pubsub_kind;
  kind what = kind::message;
  std::string channel;
  std::string pattern;  ///< pmessage: the pattern that matched
  std::string payload;  ///< messages
  std::int64_t count = 0;
  /// A confirmation the subscriber asked for by itself, after a reconnect.
  bool resubscribed = false;

  bool is_message() const noexcept { return what <= kind::smessage; }
};

/// What the subscriber does when its receive buffer is full.
enum class overflow_policy : std::uint8_t {
  /// Stop reading the socket (after the messages of the read in progress, so the buffer
  /// may pass its capacity by one read's worth): the server buffers, up to its
  /// client-output-buffer-limit. Nothing is dropped. The default.
  wait,
  /// Drop the oldest buffered message to make room, and count it.
  drop_oldest,
  /// Count the message as dropped and drop the connection; the subscriber reconnects and
  /// re-subscribes (what was published meanwhile is lost, as with any disconnect).
  disconnect,
};

/// What a subscriber counted, and holds now (message_stats() of subscriber, cluster_subscriber
/// and handle_subscriber).
struct subscriber_stats {
  std::uint64_t messages = 0;  ///< messages received (confirmations not counted), dropped included
  std::uint64_t dropped = 0;   ///< messages dropped by the overflow policy
  std::uint64_t overflow_disconnects = 0;  ///< connections dropped for it (`disconnect`)
  std::size_t buffered = 0;                ///< messages waiting for async_receive
};

struct subscriber_config {
  std::size_t capacity = 65536;  ///< messages buffered until async_receive takes them
  overflow_policy overflow = overflow_policy::wait;
};

namespace detail {

/// The messages a subscriber holds until async_receive takes them: a bounded buffer under an
/// overflow_policy, and the one receive that may wait. Used by subscriber and
/// cluster_subscriber; sans-I/O but for completing the receive on the executor.
class message_queue {
 public:
  using receive_signature = void(boost::system::error_code, pubsub_message);
  using receive_handler = boost::asio::any_completion_handler<receive_signature>;

  message_queue(boost::asio::any_io_executor ex, subscriber_config opts);

  /// Takes a message under the policy; call it on the executor (a waiting receive resumes
  /// inside it). Returns false when the policy is `disconnect` and the
  /// buffer was full: the message was counted as dropped, and the caller drops its
  /// connection (counted in overflow_disconnects()).
  bool offer(pubsub_message m);
  /// True while the policy is `wait` and the buffer is full: stop reading until on_room.
  bool paused() const noexcept {
    return opts_.overflow == overflow_policy::wait && buffer_.size() >= opts_.capacity;
  }
  /// Called when a paused queue has room again.
  std::function<void()> on_room;

  std::optional<pubsub_message> try_pop();
  /// Completes `h` with the next message, now or when one arrives; with closed once ended
  /// and drained; with already_started when a receive already waits. Called from an
  /// initiating function: it never completes inline.
  void receive(receive_handler h);
  template <class Token>
  auto async_receive(Token&& token) {
    return boost::asio::async_initiate<Token, receive_signature>(
        [this](auto handler) { receive(receive_handler(std::move(handler))); }, token);
  }
  /// No more messages will come: a waiting receive completes with closed once drained.
  void end();
  bool ended() const noexcept { return ended_; }

  /// Calls `callback` for each message (confirmations skipped) until ended.
  void on_message(std::function<void(const pubsub_message&)> callback);

  std::size_t size() const noexcept { return buffer_.size(); }
  std::uint64_t dropped() const noexcept { return stats_->dropped; }
  std::uint64_t overflow_disconnects() const noexcept { return stats_->overflow_disconnects; }
  const subscriber_stats& stats() const noexcept { return *stats_; }
  /// The counters, shared: what a reader that may outlive the queue holds (the HTTP exporter).
  /// Read them on the queue's executor only.
  std::shared_ptr<const subscriber_stats> shared_stats() const noexcept { return stats_; }

 private:
  void complete(receive_handler h, boost::system::error_code ec, pubsub_message m,
                bool may_run_inline);

  boost::asio::any_io_executor ex_;
  subscriber_config opts_;
  ring<pubsub_message> buffer_;
  // Optional, never move-assigned: Asio 1.81's any_completion_handler move assignment wraps
  // the handler in itself (infinite recursion when called).
  std::optional<receive_handler> receiver_;
  // One allocation per subscriber, so that the counters can outlive it (shared_stats()).
  std::shared_ptr<subscriber_stats> stats_ = std::make_shared<subscriber_stats>();
  bool ended_ = false;
};

}  // namespace detail
}  // namespace redcoro
