#pragma once

// What the connection's public header needs of its engine: a request's entry on its way
// through the connection, the push sink, and deadlines. Kept apart from multiplexer.hpp so
// that including connection.hpp does not compile the multiplexer's declarations.

#include <redcoro/proto/node.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace redcoro::detail {

using clock = std::chrono::steady_clock;

/// When a request must be done by: `timeout` from now (request::config::timeout), `fallback`
/// when it is negative (the connection's default), no limit when the one chosen is zero.
inline clock::time_point deadline_for(std::chrono::milliseconds timeout,
                                      std::chrono::milliseconds fallback) {
  if (timeout.count() < 0) timeout = fallback;
  return timeout.count() > 0 ? clock::now() + timeout : clock::time_point::max();
}
/// The same from a time the caller read already.
inline clock::time_point deadline_for(clock::time_point now, std::chrono::milliseconds timeout,
                                      std::chrono::milliseconds fallback) {
  if (timeout.count() < 0) timeout = fallback;
  return timeout.count() > 0 ? now + timeout : clock::time_point::max();
}

/// One request on its way through a connection: queued, written, then completed exactly
/// once through `complete`. The connection's async operation derives from it and holds the
/// response adapter and the caller's handler; the multiplexer only sees this part.
struct exec_entry {
  enum class state : std::uint8_t { idle, waiting, written, done };

  /// Called once, when the request is over: with a clear code after its last reply, or with
  /// the reason it ended early. May free the entry.
  using complete_fn = void (*)(exec_entry& self, boost::system::error_code ec);

  const proto::request* req = nullptr;
  proto::any_adapter adapter;
  complete_fn complete = nullptr;
  clock::time_point deadline = clock::time_point::max();
  /// When the connection started it, if it is timed (metrics or an observer); else zero.
  clock::time_point started_at{};
  std::size_t replies_seen = 0;
  std::size_t bytes_read = 0;
  state st = state::idle;
  /// Sent before every ordinary request, and even while the connection is not ready
  /// (handshake, health check).
  bool priority = false;
  /// Its keys are already as the server names them (a hand-back built from a reply): the key
  /// prefix is not applied again.
  bool wire_keys = false;

  exec_entry* prev = nullptr;  // the waiting list
  exec_entry* next = nullptr;

  exec_entry(const proto::request& r, proto::any_adapter a, complete_fn c) noexcept
      : req(&r), adapter(a), complete(c) {}
};

/// Where top-level push messages go: their nodes, then the end of each message.
class push_sink {
 public:
  virtual void on_push_node(const proto::node& n) = 0;
  virtual void on_push_done() = 0;
  /// True while the sink cannot take more: the connection stops reading until
  /// detail::resume_reading().
  virtual bool paused() const noexcept { return false; }

 protected:
  ~push_sink() = default;
};

}  // namespace redcoro::detail
