#pragma once

#include <redcoro/client/commands.hpp>
#include <redcoro/client/detail/dedicated.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redcoro::recipes {

namespace asio = boost::asio;

/// One message of a stream, as a handler sees it.
struct stream_message {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  /// How many times the group has delivered it, this time included: 1 the first time, more
  /// when it was reclaimed from a consumer that failed it, died or took too long.
  std::int64_t deliveries = 1;

  /// The value of the first field named `name`, or nullptr.
  const std::string* field(std::string_view name) const noexcept;
};

/// What a worker runs for each message. Return normally: the message is acknowledged. Throw:
/// it failed (the exception's what() is the reason); it stays pending and is delivered again
/// after claim_idle, until its max_deliveries-th failure sends it to the dead-letter stream.
using stream_handler = std::function<asio::awaitable<void>(const stream_message&)>;

/// Settings of a stream_worker.
struct stream_worker_options {
  std::string stream;  ///< the stream's key
  std::string group;   ///< the consumer group (made if missing, with the stream)
  /// This worker's name in the group; unique per live worker. Empty: `<host>-<pid>-<random>`.
  std::string consumer;
  /// Where failed messages go. Empty: `<stream>:dead` when the stream's name has a hash tag
  /// (`{orders}` gives `{orders}:dead`), else `{<stream>}:dead`; either way in the stream's
  /// slot, which a named one must be too (the move and the acknowledgement are one script).
  /// On a cluster with a connection key_prefix, the stream needs a hash tag of its own.
  std::string dead_letter;
  /// Where a group made by the worker starts: "$" (messages added from now on) or "0" (the
  /// whole stream).
  std::string start_id = "$";
  /// Messages in progress at most (handlers running at once).
  std::size_t concurrency = 16;
  /// XREADGROUP BLOCK: how long one read waits for new messages. stop() waits for the read in
  /// progress, so this is also how long a stop can take beyond the handlers' drain.
  std::chrono::milliseconds block{1000};
  /// A message pending this long (its consumer died, failed it, or is slower than this) is
  /// claimed by a worker that has room (XAUTOCLAIM). Must exceed the longest handler run, or
  /// a slow handler's message is handled twice at once.
  std::chrono::milliseconds claim_idle{30000};
  /// How often a worker looks for such messages (between two reads, so at most every
  /// `block` when that is longer), and only while it has room for them.
  std::chrono::milliseconds claim_interval{5000};
  /// A message that failed this many deliveries (or was delivered more times without an
  /// answer: its consumers died) goes to the dead-letter stream. At least 1.
  std::int64_t max_deliveries = 5;
  /// MAXLEN ~ of the dead-letter stream when positive.
  std::int64_t dead_letter_max_len = 0;
};

/// Counters of one worker (from its executor).
struct stream_worker_stats {
  std::uint64_t handled = 0;        ///< handler runs that returned
  std::uint64_t failed = 0;         ///< handler runs that threw
  std::uint64_t acked = 0;          ///< XACKs that acknowledged the message
  std::uint64_t stale_acks = 0;     ///< XACKs of a message already acknowledged (by another)
  std::uint64_t ack_errors = 0;     ///< XACKs lost to a transport error (delivered again)
  std::uint64_t claimed = 0;        ///< messages reclaimed from other (or this) consumers
  std::uint64_t dead_lettered = 0;  ///< messages this worker moved to the dead-letter stream
  std::uint64_t read_errors = 0;    ///< reads and claims that failed (retried)
};

namespace detail {
struct worker_state;
std::shared_ptr<worker_state> make_worker(handle h, stream_worker_options o, stream_handler f);
asio::awaitable<std::pair<error_code, stream_worker_stats>> worker_run(
    std::shared_ptr<worker_state> s);
asio::awaitable<std::pair<error_code, stream_worker_stats>> worker_stop(
    std::shared_ptr<worker_state> s);
void worker_request_stop(worker_state& s);
const asio::any_io_executor& worker_executor(const worker_state& s) noexcept;
const stream_worker_options& worker_options(const worker_state& s) noexcept;
stream_worker_stats worker_stats(const worker_state& s) noexcept;
asio::awaitable<std::pair<error_code, bool>> ensure_group(handle redis, std::string stream,
                                                          std::string group, std::string start);

// Starts worker_run for `handler`. The caller's cancellation (of any type) becomes a stop(),
// so that cancelling async_run drains instead of leaving handlers half-way; the coroutine
// itself gets no cancellation.
template <class Handler>
void start_run(std::shared_ptr<worker_state> s, Handler handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto ex = asio::get_associated_executor(handler, worker_executor(*s));
  if (slot.is_connected())
    slot.assign([w = std::weak_ptr<worker_state>(s)](asio::cancellation_type) {
      if (auto p = w.lock()) worker_request_stop(*p);
    });
  asio::co_spawn(worker_executor(*s), worker_run(s),
                 asio::bind_executor(ex, [slot, h = std::move(handler)](
                                             std::exception_ptr e,
                                             std::pair<error_code, stream_worker_stats> r) mutable {
                   if (slot.is_connected()) slot.clear();
                   if (e) std::rethrow_exception(e);
                   std::move(h)(r.first, std::move(r.second));
                 }));
}
}  // namespace detail

/// A consumer of a stream's consumer group: reads with XREADGROUP BLOCK on a connection of
/// its own (lent by the handle's pool; on a single-connection handle, a connection made from
/// the same settings), runs the handler on at most `concurrency` messages at once, and
/// acknowledges a message only after its handler returned.
///
/// \code
///   redcoro::recipes::stream_worker worker(redis, {.stream = "{orders}", .group = "billing"},
///       [](const redcoro::recipes::stream_message& m) -> asio::awaitable<void> {
///         co_await charge(*m.field("order"));     // throw to fail it
///       });
///   co_await worker.async_run(asio::use_awaitable);  // until worker.stop(), then drained
/// \endcode
///
/// Guarantee: at least once. A message is acknowledged only after its handler returned, so a
/// worker that dies (or loses its connection) between the two leaves it pending, and another
/// worker claims it after claim_idle and runs it again: handlers must be idempotent. Failed
/// messages are delivered again after claim_idle; a message that failed max_deliveries times,
/// or was delivered more often than that without an answer, is moved to the dead-letter
/// stream with the reason and acknowledged, in one script. On a failover, writes the old
/// primary had not replicated are lost: acknowledgements (the message runs again) and
/// messages (never run).
///
/// A worker is used from the handle's executor. Destroying it asks it to stop (as stop());
/// what the handler refers to must live until async_run has completed.
class stream_worker {
 public:
  /// Throws std::system_error (error::invalid_argument) for an empty stream or group, a zero
  /// concurrency, max_deliveries below 1, or a dead-letter stream in another slot.
  stream_worker(handle redis, stream_worker_options options, stream_handler handler);
  stream_worker(stream_worker&&) noexcept = default;
  stream_worker& operator=(stream_worker&&) noexcept = default;
  stream_worker(const stream_worker&) = delete;
  stream_worker& operator=(const stream_worker&) = delete;
  ~stream_worker() {
    if (s_) stop();
  }

  const stream_worker_options& options() const noexcept { return detail::worker_options(*s_); }
  /// The counters now.
  stream_worker_stats stats() const noexcept { return detail::worker_stats(*s_); }

  /// Makes the group if missing, then reads and handles messages until stop(); completes
  /// once the handlers in progress are done: `void(error_code, stream_worker_stats)`.
  /// Transport errors are retried, not reported, except redcoro::error::closed (the handle
  /// was closed), which ends the run (after the drain) with that code; error::worker_stopped
  /// when stop() came first or it already runs. Cancelling it (per-operation cancellation, an
  /// awaitable operator `||`) is a stop(): it still completes after the drain.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code, stream_worker_stats)>(
        [](auto handler, std::shared_ptr<detail::worker_state> s) {
          detail::start_run(std::move(s), std::move(handler));
        },
        token, s_);
  }

  /// Asks the worker to stop: no new reads or claims; async_run completes once the read in
  /// progress (at most options().block) and the handlers in progress are done. Idempotent.
  void stop() { detail::worker_request_stop(*s_); }

  /// stop(), then completes when async_run has: `void(error_code, stream_worker_stats)`.
  /// Cancelling it stops the waiting (asio::error::operation_aborted), not the drain: a way to
  /// bound a drain that may take too long.
  template <class Token>
  auto async_stop(Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, stream_worker_stats)>(
        detail::worker_executor(*s_), detail::worker_stop(s_), std::forward<Token>(token));
  }

 private:
  std::shared_ptr<detail::worker_state> s_;
};

/// XGROUP CREATE ... MKSTREAM, where "the group exists" (BUSYGROUP) is success:
/// `void(error_code, bool created)`.
template <class Token>
auto async_create_group(handle redis, std::string_view stream, std::string_view group,
                        std::string_view start_id, Token&& token) {
  auto ex = redis.get_executor();
  return redcoro::detail::run_coroutine<void(error_code, bool)>(
      ex,
      detail::ensure_group(std::move(redis), std::string(stream), std::string(group),
                           std::string(start_id)),
      std::forward<Token>(token));
}

/// Adds messages to a stream, trimmed to about max_len entries (`XADD ... MAXLEN ~ n`: the
/// server trims whole nodes, so the stream may hold somewhat more). Trimming removes the
/// oldest entries whether or not a group has handled them: pick a max_len well above the
/// backlog the workers may fall behind by.
class stream_producer {
 public:
  /// max_len 0: no trimming.
  stream_producer(handle redis, std::string stream, std::int64_t max_len = 0)
      : redis_(std::move(redis)), stream_(std::move(stream)), max_len_(max_len) {}

  /// XADD of field/value pairs (anything cmd::args takes: a map, a vector of pairs):
  /// `void(error_code, proto::result<std::string>)`, the new message's id.
  template <class Token>
  auto async_add(cmd::args fields, Token&& token) {
    cmd::xadd_options o;
    o.max_len = max_len_;
    return redis_.async_exec(cmd::xadd(stream_, fields, o), std::forward<Token>(token));
  }

  const std::string& stream() const noexcept { return stream_; }

 private:
  handle redis_;
  std::string stream_;
  std::int64_t max_len_ = 0;
};

}  // namespace redcoro::recipes
