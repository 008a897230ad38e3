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

asio::awaitable<std::size_t> transport::read_some(asio::mutable_buffer b, error_code& ec) {
  if (tls_) co_return co_await tls_->async_read_some(b, use_ec(ec));
  co_return co_await socket_.async_read_some(b, use_ec(ec));
}

asio::awaitable<void> transport::write(asio::const_buffer b, error_code& ec) {
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
  socket_.close(ignored);
}

void transport::reset() noexcept {
  close();
  tls_.reset();
}

}  // namespace redcoro::detail
