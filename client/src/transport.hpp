#pragma once

// The byte stream under a connection: TCP, TLS over TCP, or a Unix socket. It dials within a
// deadline (resolve, connect, the TLS handshake with SNI and the certificate's name checked),
// reads, writes, and writes without waiting. It knows nothing of RESP, requests or sessions:
// the connection (connection.cpp) keeps the loops, and logs what fails here.

#include <redcoro/client/config.hpp>
#include <redcoro/client/endpoint.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio::ssl {
class context;
template <class Stream>
class stream;
}  // namespace boost::asio::ssl

namespace redcoro::detail {

namespace asio = boost::asio;
using boost::system::error_code;

/// Where and how long to dial: the Unix socket `unix_path` when it is set, otherwise `tcp`.
struct dial_target {
  endpoint tcp;
  std::string unix_path;
  std::chrono::milliseconds timeout{0};
};

class transport {
 public:
  using socket_type = asio::generic::stream_protocol::socket;

  /// With `tls.enabled`, loads the CA, client certificate and key now; a file that cannot be
  /// read throws, naming it.
  transport(asio::any_io_executor ex, const tls_config& tls);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  /// Opens the stream: onto `spare` when it holds a socket (dial_spare's, which it empties),
  /// otherwise a new connection to `to`; then the TLS handshake when TLS is on; all within
  /// `to.timeout` (error::connect_timeout when it runs out). On failure the socket is closed.
  asio::awaitable<error_code> connect(const dial_target& to, std::optional<socket_type>& spare);

  /// Dials `spare`, a plain connection to `to` for a later connect(): the next session's,
  /// made while this one drains (connection_config::max_lifetime).
  asio::awaitable<error_code> dial_spare(socket_type& spare, const dial_target& to);

  asio::awaitable<std::size_t> read_some(asio::mutable_buffer b, error_code& ec);
  asio::awaitable<void> write(asio::const_buffer b, error_code& ec);

  /// Whether write_now() may be used: not over TLS, where a record cannot be half-sent by a
  /// plain non-blocking write.
  bool can_write_now() const noexcept { return !tls_; }
  /// Writes what the socket takes now without waiting; 0 when it takes nothing now.
  std::size_t write_now(asio::const_buffer b, error_code& ec);

  bool is_open() const noexcept { return socket_.is_open() && !closing_; }
  /// Closes the socket: pending reads and writes complete with operation_aborted (or, under
  /// io_uring, with what the kernel had already done for them), and later ones fail at once.
  /// The TLS state stays until reset(), for the operations still unwinding on it.
  void close() noexcept;
  /// Closes, and drops the TLS state: for when nothing runs on the stream any more.
  void reset() noexcept;

 private:
  asio::awaitable<error_code> within(socket_type& s, const dial_target& to, bool tls);
  asio::awaitable<void> attempt(socket_type& s, const dial_target& to, bool tls, error_code& ec);
  asio::awaitable<void> handshake(const dial_target& to, error_code& ec);

  // Under io_uring, close() waits for the pending reads and writes to return before it closes
  // the socket (see close()): how many there are, and whether a close waits for them.
  struct pending_scope;
  int pending_ = 0;
  bool closing_ = false;

  socket_type socket_;
  tls_config tls_config_;
  std::unique_ptr<asio::ssl::context> tls_context_;       // when TLS is on
  std::unique_ptr<asio::ssl::stream<socket_type&>> tls_;  // per session, over socket_
};

}  // namespace redcoro::detail
