#pragma once

// The gateway's load generator: many WebSocket clients in one process, on one thread, sending
// chat messages at a fixed rate and checking that every member of a room gets every message
// of the room exactly once, in order, and how long it took.
//
// Checks before it times: a run is ok() only if nothing was lost, duplicated, reordered,
// misrouted or closed; the latencies and the gateways' CPU per delivery are figures of a run
// that was.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace redcoro::gateway_load {

struct options {
  /// WebSocket ports on 127.0.0.1; client i uses gateways[i % n].
  std::vector<std::uint16_t> gateways;
  /// The gateways' metrics ports (may be empty: no CPU figure then).
  std::vector<std::uint16_t> metrics_ports;
  /// Client i is user "u<i>" in room "r<i % rooms>".
  int clients = 1000;
  int rooms = 50;
  double rate = 1.0;                          ///< messages per second per client
  std::chrono::milliseconds duration{30000};  ///< how long clients send
  std::chrono::milliseconds drain{5000};      ///< bounded wait, after the last send, for deliveries
  std::string user_prefix = "u", room_prefix = "r";
  /// Bounds of the phases before the sending: connecting and joining every client, then
  /// waiting for every client's presence to list its whole room.
  std::chrono::milliseconds join_timeout{30000};
  std::chrono::milliseconds presence_timeout{20000};
  int connect_concurrency = 64;  ///< handshakes in flight at once
};

struct report {
  std::uint64_t clients = 0;
  std::uint64_t connected = 0;         // WebSocket handshakes that succeeded
  std::uint64_t connect_failures = 0;  // TCP or handshake failures (refused upgrades included)
  std::uint64_t join_failures = 0;     // connected, but no welcome/history/presence in time
  // Clients whose presence never listed every (joined) member of their room within
  // presence_timeout.
  std::uint64_t presence_incomplete = 0;

  std::uint64_t sent = 0;                        // send frames written
  std::map<std::string, std::uint64_t> refused;  // error frames received, by code
  std::uint64_t refused_sends = 0;  // sends answered with an error frame (not expected)
  std::uint64_t skipped = 0;        // ticks that came while the client's send was in flight
  std::uint64_t send_failures = 0;  // sends whose write failed (connection gone)
  std::uint64_t abandoned = 0;      // sends neither delivered back nor refused within `drain`

  // Deliveries: one per (receiver, message of a member of its room, the receiver's own
  // included) for every send not refused, receivers and senders being the clients that joined.
  std::uint64_t expected_deliveries = 0;
  std::uint64_t delivered = 0;     // distinct expected deliveries that arrived
  std::uint64_t duplicates = 0;    // a (receiver, sender, seq) that arrived again
  std::uint64_t out_of_order = 0;  // a seq lower than one already seen from that sender
  std::uint64_t missing = 0;       // expected_deliveries - delivered
  std::uint64_t unexpected = 0;    // deliveries of sends that were refused
  std::uint64_t misrouted = 0;     // a message of another room, or a room frame for another room
  std::uint64_t foreign = 0;       // message frames not of this run's shape (not counted)
  std::uint64_t bad_frames = 0;    // frames that were not JSON of the protocol

  std::uint64_t closes = 0;  // connections that ended before the generator closed them
  std::map<int, std::uint64_t> close_codes;  // by the server's close code; 1006: no close frame

  double latency_p50_us = 0, latency_p99_us = 0, latency_max_us = 0;  // send to delivery
  std::uint64_t latency_samples = 0;

  // Gateway CPU (process_cpu_seconds_total) per delivery (gateway_messages_delivered_total),
  // summed over the metrics ports, between a scrape before the sending and one after the drain.
  // Negative when not measured.
  double gateway_cpu_us_per_delivery = -1;
  double gateway_cpu_seconds = -1;
  double gateway_deliveries = -1;

  double seconds = 0;  // the sending phase, first tick to last send

  bool ok() const {
    return connected == clients && duplicates == 0 && out_of_order == 0 && missing == 0 &&
           closes == 0 && join_failures == 0 && presence_incomplete == 0 && misrouted == 0;
  }
};

/// Runs the load; blocking, on an io_context of its own on the calling thread. Throws
/// std::invalid_argument for options it cannot run (no gateway, no client, a rate <= 0).
report run(const options& o);

/// The report as a Markdown table, one row per figure.
std::string to_table(const report& r);

}  // namespace redcoro::gateway_load
