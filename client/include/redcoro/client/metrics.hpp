#pragma once

// What a connection did, as counters, gauges and latency histograms that a service reads at
// any time (connection::metrics(), and summed by the layers above), and an observer for users
// who feed their own tracing. Kept by every connection unless connection_config::metrics is
// off; see client/README.md, "Metrics".

#include <redcoro/client/histogram.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redcoro {

using boost::system::error_code;

/// How a request ended, for counting. A request whose replies came back is `replied`, even
/// when some of them are error replies (those are counted as server errors, by code).
enum class request_outcome : std::uint8_t {
  replied,          ///< its replies came back
  timeout,          ///< error::timeout
  connection_lost,  ///< the connection dropped with it unanswered (or could not connect)
  cancelled,        ///< per-operation cancellation
  refused,          ///< not sent: closed, not connected, queue full, a bad argument
  protocol_error,   ///< the reply stream broke (malformed, out of step)
};
inline constexpr std::size_t request_outcomes = 6;

/// The name metrics use for an outcome: "replied", "timeout", "connection_lost", ...
std::string_view outcome_name(request_outcome o) noexcept;
/// The outcome of a request completed with `ec` (no error: replied).
request_outcome outcome_of(error_code ec) noexcept;

/// One command name's latency: from the call (async_exec) to the last reply, the time waiting
/// to be written included.
struct command_metrics {
  /// The request's first command, upper case ("GET"); "PIPELINE" for a request of several
  /// commands, "MULTI" for a transaction, "OTHER" for commands redcoro has no entry for.
  std::string command;
  histogram latency;  ///< in nanoseconds
  /// Replied requests: the histogram's count.
  std::uint64_t requests() const noexcept { return latency.count(); }
};

/// A snapshot: copied out, safe to keep and to merge (a client sums its connections').
struct connection_metrics {
  std::uint64_t requests = 0;  ///< requests started (async_exec calls), refused ones included
  /// Requests completed, by outcome (index: request_outcome).
  std::uint64_t completed[request_outcomes] = {};
  /// Top-level error replies, by their code (the first word: "ERR", "WRONGTYPE", "MOVED").
  /// At most 32 codes are told apart; the rest count under "OTHER".
  std::vector<std::pair<std::string, std::uint64_t>> server_errors;
  std::uint64_t bytes_written = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t connects = 0;     ///< handshakes completed (the first one and every reconnect)
  std::uint64_t disconnects = 0;  ///< sessions that ended (lost, dropped, replaced)
  std::uint64_t pushes = 0;       ///< push messages received (pub/sub, invalidations)
  std::uint64_t queued = 0;       ///< gauge: requests waiting to be written
  std::uint64_t in_flight = 0;    ///< gauge: requests written and not answered
  bool connected = false;         ///< gauge: a session is up (handshake done)
  /// Every replied request's latency, and the same by command name.
  histogram latency;
  std::vector<command_metrics> by_command;

  std::uint64_t completed_with(request_outcome o) const noexcept {
    return completed[static_cast<std::size_t>(o)];
  }
  /// The count of one error code (0 when none).
  std::uint64_t server_errors_of(std::string_view code) const noexcept;
  /// Every count and histogram of `other` added in (gauges too: a sum over connections).
  void merge(const connection_metrics& other);
};

/// One connection's (or one node's, or a pool's) metrics, with where it goes.
struct node_metrics {
  std::string node;  ///< "host:port" ("unix:/path"), as logs name it
  /// What it is for: "shared" (a client's multiplexed connection), "pool" (the dedicated
  /// connections of a pooled client, summed), "primary"/"replica" (a cluster node).
  std::string role;
  connection_metrics metrics;
};

/// What a client (client::metrics()) did: its shared connection and its pool.
struct client_metrics {
  connection_metrics shared;
  /// Pool connections open now, lent now, and callers waiting for one.
  std::uint64_t pool_open = 0, pool_leased = 0, pool_waiting = 0;
  /// Every pooled connection summed, those closed since included.
  connection_metrics pool;
};

/// What an observer is told about one request.
struct request_event {
  std::string_view command;  ///< as command_metrics::command
  std::string_view node;     ///< "host:port" (or "unix:/path") of the connection
  std::size_t commands = 0;  ///< commands in the request
  /// Set for request_finished only.
  request_outcome outcome = request_outcome::replied;
  error_code error;                      ///< the completion's error (none when replied)
  std::chrono::nanoseconds duration{0};  ///< from start to completion
};

/// Told of every request on a connection (connection_config::observer), on the connection's
/// executor, synchronously: keep it short (record a span, bump a counter). A request that
/// is refused at once is started and finished without being written.
class request_observer {
 public:
  virtual ~request_observer() = default;
  virtual void request_started(const request_event& e) = 0;
  virtual void request_finished(const request_event& e) = 0;
};

}  // namespace redcoro
