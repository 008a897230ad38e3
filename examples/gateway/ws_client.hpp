#pragma once

// A WebSocket client for tests and for the load generator (load.hpp): one connection to a
// gateway on 127.0.0.1, driven by coroutines.
//
// Beast is included by ws_client.cpp only: this header names Asio's executor and awaitable and
// two small Beast types, so a test that includes it does not compile the WebSocket stream.
//
// Not thread-safe: every call is made from the executor the client was made on (one thread, or
// a strand). One read (read() or next()), one write (send(), send_binary(), send_raw(),
// close()) may be in flight at a time, side by side.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/status.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace redcoro::gateway_test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

class ws_client {
 public:
  explicit ws_client(asio::any_io_executor ex);
  /// Closes the socket (no close frame); operations still pending complete with
  /// operation_aborted, their state kept alive until they have.
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  /// TCP to 127.0.0.1:port (bounded by connect_timeout), then the WebSocket handshake for
  /// `target` ("/ws?user=alice") with `origin` ("http://127.0.0.1:8080") as the Origin header
  /// (bounded by the same timeout). When the server answers the upgrade with an HTTP response,
  /// its status is stored in *refused_status (101 on success; 403, 400, 503... when it refused,
  /// and the error is websocket::error::upgrade_declined); http::status::unknown when no
  /// response was read (connection refused, timeout).
  asio::awaitable<beast::error_code> connect(std::uint16_t port, std::string target,
                                             std::string origin,
                                             http::status* refused_status = nullptr);

  /// One text frame. `text` must stay valid until the call completes.
  asio::awaitable<beast::error_code> send(std::string_view text);
  /// One binary frame.
  asio::awaitable<beast::error_code> send_binary(std::string_view bytes);
  /// Bytes written as they are on the TCP socket under the WebSocket stream (next_layer()), for
  /// malformed-frame tests. Client frames must be masked: a test that wants the server to get
  /// past the mask check builds the frame with its mask bit set.
  asio::awaitable<beast::error_code> send_raw(std::string_view bytes);
  /// The client's close handshake: sends a close frame with `code` and waits (bounded by
  /// connect_timeout) for the server's. A read pending meanwhile completes with
  /// websocket::error::closed.
  asio::awaitable<beast::error_code> close(std::uint16_t code = 1000);
  /// Closes the TCP socket at once, no close frame; pending operations complete with
  /// operation_aborted.
  void abort() noexcept;

  /// The next text frame, or nullopt when `timeout` passes first or the stream is closed
  /// (closed() then says which). Binary frames are skipped. A timeout loses nothing: the first
  /// call starts a reader of the client's own that queues every text frame, and next() waits
  /// on the queue, so a frame that arrives after a timeout is returned by the next call. Do not
  /// mix with read().
  asio::awaitable<std::optional<std::string>> next(std::chrono::milliseconds timeout);

  /// The next frame (text or binary), read directly, with no timeout and no copy: `frame`
  /// views the client's buffer (one beast::flat_buffer, reused) and stays valid until the next
  /// read() or the client's destruction; `padding` bytes of readable memory follow it (for
  /// simdjson, which reads SIMDJSON_PADDING bytes past the end). *is_text says whether it was
  /// a text frame. Unbounded: the caller bounds the wait by close() or abort(). For the load
  /// generator's hot path; do not mix with next().
  asio::awaitable<beast::error_code> read(std::string_view& frame, std::size_t padding = 0,
                                          bool* is_text = nullptr);

  /// True once a read has failed: the server closed the stream (close frame), the connection
  /// dropped, or the client closed it.
  bool closed() const noexcept;
  /// The close code the server sent (ws.reason().code: 1000, 1008, 4000...); 0 when the
  /// stream is open or ended without a close frame.
  std::uint16_t close_code() const noexcept;
  /// The error that ended the stream (websocket::error::closed after a close frame, eof,
  /// connection_reset...); empty while it is open.
  beast::error_code close_error() const noexcept;

  /// Bounds connect() (TCP and the handshake) and close(); 10 s unless set.
  void set_connect_timeout(std::chrono::milliseconds t) noexcept;

  asio::any_io_executor get_executor() const noexcept;

  struct impl;

 private:
  // Shared with the coroutines of pending operations and the next() reader, so destroying the
  // client while they are pending is safe.
  std::shared_ptr<impl> impl_;
};

}  // namespace redcoro::gateway_test
