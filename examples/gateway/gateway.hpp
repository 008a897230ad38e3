#pragma once

// redcoro-gateway: a Boost.Beast HTTP + WebSocket chat and game-room gateway on redcoro. Several
// gateway processes share one Redis (a server or a cluster); see README.md for what Redis
// holds and the WebSocket protocol.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace redcoro::gateway {

struct options {
  /// Where Redis is: any URL redcoro::handle takes (`redis://`, `redis+cluster://`,
  /// `redis+sentinel://`).
  std::string redis = "redis://127.0.0.1:6379";
  /// This gateway's name, in the welcome frame and the logs.
  std::string id = "gw";
  /// The public listener (the page and the WebSocket). Loopback unless told otherwise.
  boost::asio::ip::address address = boost::asio::ip::make_address("127.0.0.1");
  std::uint16_t port = 8080;  ///< 0 picks a free one
  /// /metrics and /health (redcoro's exporter), on their own port, loopback: not on the public
  /// listener. 0 picks a free one.
  std::uint16_t metrics_port = 0;
  /// Origins allowed to open a WebSocket (`http://host:port`, exactly). Empty: only the page's
  /// own origin (`http://` + the request's Host). A request without Origin is refused.
  std::vector<std::string> allowed_origins;
  std::size_t max_connections = 10000;
  /// Frames waiting to be written to one client; a client that lets it fill is disconnected
  /// (close code 4000).
  std::size_t send_queue = 256;
  /// The same queue's bound in bytes (a room's history frame can be 200 KB).
  std::size_t send_queue_bytes = 1024 * 1024;
  /// The kernel's send buffer of each client socket: with the queue, what one slow client can
  /// hold of the gateway's memory.
  int socket_send_buffer = 64 * 1024;
  std::size_t max_frame = 4096;  ///< a larger frame closes the client with 1009
  std::size_t max_text = 1000;   ///< bytes of a message's text
  std::size_t rooms_per_client = 16;
  std::int64_t history = 50;  ///< messages kept per room and sent to a member who joins
  /// A room's history is deleted this long after its last message.
  std::chrono::milliseconds history_ttl{std::chrono::hours(24)};
  /// Each gateway renews its members' presence this often; a member whose gateway stopped
  /// renewing is gone after presence_ttl.
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds presence_ttl{3000};
  /// Messages per user (all its connections, on every gateway) per rate_window: a token
  /// bucket in Redis (recipes' rate_limiter).
  std::int64_t rate_limit = 10;
  std::chrono::milliseconds rate_window{1000};
  /// Frames one connection may send per second before they are refused without asking Redis.
  int frames_per_second = 50;
  /// Joins and leaves one connection may make per second (each costs Redis several commands
  /// and every member of the room a presence frame).
  int joins_per_second = 4;
  /// Frames refused for what the client did (invalid, not joined, over its frame or join
  /// rate) within 10 s after which the connection is closed (1008). Refusals for Redis being
  /// unreachable or for the per-user limit do not count.
  int flood_refusals = 50;
  /// How long a Redis request may take before the client is told `unavailable`.
  std::chrono::milliseconds redis_timeout{2000};
};

/// A running gateway on an io_context (one thread; run one process per core).
class gateway {
 public:
  /// Binds both listeners (throws std::system_error when it cannot) and starts.
  gateway(boost::asio::io_context& ioc, options o);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  std::uint16_t port() const;
  std::uint16_t metrics_port() const;
  /// Stops accepting, closes every client with 1001, removes its members' presence (bounded by
  /// redis_timeout) and lets the io_context run out of work; `done` runs when that is over.
  void stop(std::function<void()> done = {});

  class impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// The page served at `/`.
extern const char* const page_html;

}  // namespace redcoro::gateway
