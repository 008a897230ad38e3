#include "transport.hpp"

#include <redcoro/client/error.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace redcoro::detail {
namespace {

auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// Loads the CA, client certificate and key once; a file that cannot be read throws here,
// from the connection's constructor, naming the file.
std::unique_ptr<asio::ssl::context> make_tls_context(const tls_config& t) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  // Each step throws on failure; say which file it was.
  auto step = [](const std::string& what, auto&& f) {
    try {
      f();
    } catch (const boost::system::system_error& e) {
      throw boost::system::system_error(e.code(), "redcoro: TLS: " + what);
    }
  };
  if (t.verify_peer) {
    ctx->set_verify_mode(asio::ssl::verify_peer);
    if (!t.ca_file.empty()) step("CA file " + t.ca_file, [&] { ctx->load_verify_file(t.ca_file); });
    if (!t.ca_path.empty()) step("CA path " + t.ca_path, [&] { ctx->add_verify_path(t.ca_path); });
    if (t.ca_file.empty() && t.ca_path.empty())
      step("default CA paths", [&] { ctx->set_default_verify_paths(); });
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);
  }
  if (!t.cert_file.empty())
    step("certificate " + t.cert_file, [&] { ctx->use_certificate_chain_file(t.cert_file); });
  if (!t.key_file.empty())
    step("private key " + t.key_file,
         [&] { ctx->use_private_key_file(t.key_file, asio::ssl::context::pem); });
  return ctx;
}

}  // namespace

transport::transport(asio::any_io_executor ex, const tls_config& tls)
    : socket_(std::move(ex)), tls_config_(tls) {
  if (tls.enabled) tls_context_ = make_tls_context(tls);
}

transport::~transport() = default;

asio::awaitable<error_code> transport::connect(const dial_target& to,
                                               std::optional<socket_type>& spare) {
  if (spare) {
    socket_ = std::move(*spare);
    spare.reset();
  }
  error_code ec;
  if (!socket_.is_open() || tls_context_)
    ec = co_await within(socket_, to, tls_context_ != nullptr);
  // The connection's reader sends with plain non-blocking writes (write_now).
  error_code ignored;
  if (!ec) socket_.non_blocking(true, ignored);
  co_return ec;
}

asio::awaitable<error_code> transport::dial_spare(socket_type& spare, const dial_target& to) {
  return within(spare, to, false);
}

// attempt(), bounded by to.timeout; on failure `s` is closed.
asio::awaitable<error_code> transport::within(socket_type& s, const dial_target& to, bool tls) {
  using namespace asio::experimental::awaitable_operators;
  error_code ec;
  asio::steady_timer deadline(s.get_executor(), to.timeout);
  auto result = co_await (attempt(s, to, tls, ec) || deadline.async_wait(asio::use_awaitable));
  if (result.index() == 1) ec = error::connect_timeout;
  if (ec) {
    error_code ignored;
    s.close(ignored);
  }
  co_return ec;
}

// Resolves and connects `s` (unless it is open already), then the TLS handshake over it
// when `tls`.
asio::awaitable<void> transport::attempt(socket_type& s, const dial_target& to, bool tls,
                                         error_code& ec) {
  if (s.is_open()) {
    if (tls) co_await handshake(to, ec);
    co_return;
  }
  if (!to.unix_path.empty()) {
    asio::local::stream_protocol::endpoint ep(to.unix_path);
    s.open(asio::generic::stream_protocol(ep.protocol()), ec);
    if (!ec) co_await s.async_connect(ep, use_ec(ec));
    co_return;
  }
  asio::ip::tcp::resolver resolver(s.get_executor());
  auto endpoints =
      co_await resolver.async_resolve(to.tcp.host, std::to_string(to.tcp.port), use_ec(ec));
  if (ec) co_return;
  for (const auto& entry : endpoints) {
    asio::generic::stream_protocol::endpoint ep(entry.endpoint());
    if (s.is_open()) s.close();
    s.open(ep.protocol(), ec);
    if (ec) continue;
    co_await s.async_connect(ep, use_ec(ec));
    if (!ec) {
      // Requests are coalesced by the writer already; Nagle would only add delay.
      s.set_option(asio::detail::socket_option::boolean<IPPROTO_TCP, TCP_NODELAY>(true), ec);
      ec = {};
      if (tls) co_await handshake(to, ec);
      co_return;
    }
  }
}

// After the TCP connect: the TLS handshake, with SNI and the certificate's name checked.
asio::awaitable<void> transport::handshake(const dial_target& to, error_code& ec) {
  tls_ = std::make_unique<asio::ssl::stream<socket_type&>>(socket_, *tls_context_);
  const std::string& name = tls_config_.server_name.empty() ? to.tcp.host : tls_config_.server_name;
  error_code parse_ec;
  asio::ip::make_address(name, parse_ec);
  // SNI carries host names only, never IP addresses (RFC 6066).
  if (parse_ec) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
  if (tls_config_.verify_peer) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
  co_await tls_->async_handshake(asio::ssl::stream_base::client, use_ec(ec));
}

// A read or write in progress; the last one to return after close() closes the socket.
struct transport::pending_scope {
  explicit pending_scope(transport& t) noexcept : t_(t) { ++t_.pending_; }
  ~pending_scope() {
    if (--t_.pending_ == 0 && t_.closing_) {
      t_.closing_ = false;
      error_code ignored;
      t_.socket_.close(ignored);
    }
  }
  pending_scope(const pending_scope&) = delete;
  pending_scope& operator=(const pending_scope&) = delete;
  transport& t_;
};

asio::awaitable<std::size_t> transport::read_some(asio::mutable_buffer b, error_code& ec) {
  if (closing_) {
    ec = asio::error::operation_aborted;
    co_return 0;
  }
  pending_scope pending(*this);
  std::size_t n;
  if (tls_)
    n = co_await tls_->async_read_some(b, use_ec(ec));
  else
    n = co_await socket_.async_read_some(b, use_ec(ec));
  co_return n;
}

asio::awaitable<void> transport::write(asio::const_buffer b, error_code& ec) {
  if (closing_) {
    ec = asio::error::operation_aborted;
    co_return;
  }
  pending_scope pending(*this);
  if (tls_)
    co_await asio::async_write(*tls_, b, use_ec(ec));
  else
    co_await asio::async_write(socket_, b, use_ec(ec));
}

std::size_t transport::write_now(asio::const_buffer b, error_code& ec) {
  std::size_t n = socket_.write_some(b, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    n = 0;
    ec = {};
  }
  return n;
}

void transport::close() noexcept {
  error_code ignored;
#if defined(BOOST_ASIO_HAS_IO_URING)
  // Asio 1.26's io_uring backend frees a closed socket's state at once, while the kernel still
  // holds its pending read or write. The socket opened next reuses that state, and the old
  // operation's completion lands on it: a read of the new session "completes" with the byte
  // count of the old one, over bytes of the old session (a reply delivered to the wrong
  // request), or a write with a count it never wrote. So with operations pending, cancel them
  // and shut the socket down now, and close it when the last returns (pending_scope). Epoll
  // keeps no such state: close at once.
  if (pending_ > 0 && socket_.is_open()) {
    if (closing_) return;
    closing_ = true;
    socket_.cancel(ignored);
    socket_.shutdown(socket_type::shutdown_both, ignored);
    return;
  }
#endif
  socket_.close(ignored);
}

void transport::reset() noexcept {
  close();
  tls_.reset();
}

}  // namespace redcoro::detail
