#pragma once

#include <redcoro/cache/cache.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::cache {

/// Settings of a write_behind queue.
struct write_behind_options {
  /// Writes accepted and not yet answered by Redis, at most.
  std::size_t capacity = 10'000;
  /// What set() and del() do when the queue is full: wait for room, or fail at once with
  /// error::queue_full.
  enum class when_full : std::uint8_t { wait, fail };
  when_full full = when_full::wait;
  /// A batch is sent when it has this many writes...
  std::size_t batch_size = 128;
  /// ...or when its oldest write has waited this long.
  std::chrono::milliseconds max_delay{20};
  /// After a batch met a failed connection (lost, not connected, timed out), its writes go
  /// back to the head of the queue and are sent again after this pause.
  std::chrono::milliseconds retry_delay{100};
};

/// Counters of a write_behind queue.
struct write_behind_metrics {
  std::uint64_t queued = 0;    ///< accepted and not yet answered, now
  std::uint64_t accepted = 0;  ///< set() and del() calls that were accepted
  std::uint64_t written = 0;   ///< accepted writes Redis confirmed (or a later write replaced)
  std::uint64_t retried = 0;   ///< writes sent again after a failed connection
  std::uint64_t failed = 0;    ///< writes Redis refused, or not written by close()
};

/// One accepted write that was not written: its key (as the caller named it) and why.
struct write_failure {
  std::string key;
  codec_error error;
};

/// Write-behind over a cache: set() and del() return once the write is queued, and a
/// background coroutine sends the queue in pipelined batches, by size and by time. A write
/// the connection could not deliver (lost, not connected, timed out) stays queued, in order,
/// and is sent again after the connection is back; one that Redis refuses (an error reply)
/// is reported by the next flush() or close(). Writes of one key reach Redis in the order
/// they were accepted.
///
/// \code
///   redcoro::cache::write_behind behind(users, {.capacity = 50'000});
///   co_await behind.set("42", user);          // queued: returns at once
///   auto failed = co_await behind.close(5s);  // everything written, or listed here
/// \endcode
///
/// Use it from the cache's executor. Destroying it without close() lets the queue drain in
/// the background with nobody to report failures to.
class write_behind {
 public:
  explicit write_behind(cache c, write_behind_options options = {});
  ~write_behind();
  write_behind(const write_behind&) = delete;
  write_behind& operator=(const write_behind&) = delete;

  /// Queues `value` for `key` with `ttl` (default: the cache's). Fails at once for a value
  /// that does not encode, a TTL that is not positive, a full queue with when_full::fail,
  /// or after close() (error::not_written).
  template <cacheable T>
  asio::awaitable<result<void>> set(std::string_view key, const T& value, expiry ttl = {}) {
    std::string bytes;
    codec_error where;
    if (redcoro::cache::encode(value, bytes, where)) {
      where.key = key;
      co_return where;
    }
    co_return co_await enqueue(key, std::move(bytes), ttl, false);
  }
  /// Queues the removal of `key`.
  asio::awaitable<result<void>> del(std::string_view key);

  /// Waits until every write accepted before this call is written or failed; returns the
  /// failures not reported yet.
  asio::awaitable<std::vector<write_failure>> flush();
  /// Accepts no more writes and flushes, for at most `bound`; then stops. Returns every
  /// failure not reported yet, and every accepted write not confirmed by then
  /// (error::not_written; for a write sent whose reply had not come, the message says that it
  /// may have been written).
  asio::awaitable<std::vector<write_failure>> close(std::chrono::milliseconds bound);

  write_behind_metrics metrics() const noexcept;

  struct state;

 private:
  asio::awaitable<result<void>> enqueue(std::string_view key, std::string bytes, expiry ttl,
                                        bool remove);
  std::shared_ptr<state> s_;
};

}  // namespace redcoro::cache
