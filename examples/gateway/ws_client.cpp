#include "ws_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <cassert>
#include <deque>
#include <utility>

namespace redcoro::gateway_test {

namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
// Errors come back as values: a refused upgrade or a closed stream is what tests look for,
// not an exception.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct ws_client::impl {
  explicit impl(asio::any_io_executor ex) : ws(ex), notify(std::move(ex)) {}

  websocket::stream<beast::tcp_stream> ws;
  // Reused for every frame: read() hands out views into it.
  beast::flat_buffer buffer;
  std::chrono::milliseconds connect_timeout{10000};

  bool closed = false;
  std::uint16_t close_code = 0;
  beast::error_code close_error;

  // next(): a reader of the client's own queues the text frames; `notify` is cancelled when
  // the queue grows or the stream ends, which wakes the one next() waiting on it.
  bool pumping = false;
  std::deque<std::string> queue;
  asio::steady_timer notify;

  void end(const beast::error_code& ec) {
    if (closed) return;
    closed = true;
    close_error = ec;
    if (ec == websocket::error::closed) close_code = ws.reason().code;
  }

  void abort() noexcept { beast::get_lowest_layer(ws).close(); }

  asio::awaitable<beast::error_code> read_frame(std::string_view& frame, std::size_t padding,
                                                bool* is_text) {
    frame = {};
    if (closed) co_return close_error ? close_error : beast::error_code(websocket::error::closed);
    // Consuming everything puts the next message at the start of the same storage: no
    // allocation once the buffer has grown to the largest frame.
    buffer.consume(buffer.size());
    auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
    if (ec) {
      end(ec);
      co_return ec;
    }
    // prepare() guarantees writable (so readable) memory right after the message, without
    // committing it; it may move the message, so take the view after it.
    if (padding != 0) buffer.prepare(padding);
    frame = std::string_view(static_cast<const char*>(buffer.cdata().data()), buffer.size());
    if (is_text) *is_text = ws.got_text();
    co_return beast::error_code{};
  }
};

namespace {

asio::awaitable<void> pump(std::shared_ptr<ws_client::impl> s) {
  for (;;) {
    std::string_view frame;
    bool text = false;
    if (co_await s->read_frame(frame, 0, &text)) break;
    if (!text) continue;
    s->queue.emplace_back(frame);
    s->notify.cancel();
  }
  s->notify.cancel();
}

}  // namespace

ws_client::ws_client(asio::any_io_executor ex) : impl_(std::make_shared<impl>(std::move(ex))) {}

ws_client::~ws_client() {
  impl_->abort();
}

asio::any_io_executor ws_client::get_executor() const noexcept {
  return impl_->ws.get_executor();
}

void ws_client::set_connect_timeout(std::chrono::milliseconds t) noexcept {
  impl_->connect_timeout = t;
}

bool ws_client::closed() const noexcept {
  return impl_->closed;
}
std::uint16_t ws_client::close_code() const noexcept {
  return impl_->close_code;
}
beast::error_code ws_client::close_error() const noexcept {
  return impl_->close_error;
}

void ws_client::abort() noexcept {
  impl_->abort();
}

asio::awaitable<beast::error_code> ws_client::connect(std::uint16_t port, std::string target,
                                                      std::string origin,
                                                      http::status* refused_status) {
  auto s = impl_;  // alive until this returns, whatever happens to *this
  if (refused_status) *refused_status = http::status::unknown;
  auto& layer = beast::get_lowest_layer(s->ws);
  layer.expires_after(s->connect_timeout);
  auto [ec] = co_await layer.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port),
                                           use_tuple);
  // The WebSocket stream has timeouts of its own (below); the TCP stream's would close the
  // socket under a long read.
  layer.expires_never();
  if (ec) {
    s->end(ec);
    co_return ec;
  }
  beast::error_code ignored;
  layer.socket().set_option(tcp::no_delay(true), ignored);

  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = s->connect_timeout;  // also bounds close()
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  s->ws.set_option(timeouts);
  s->ws.set_option(
      websocket::stream_base::decorator([origin = std::move(origin)](websocket::request_type& req) {
        req.set(http::field::origin, origin);
        req.set(http::field::user_agent, "redcoro-gateway-test");
      }));

  websocket::response_type res;
  const std::string host = "127.0.0.1:" + std::to_string(port);
  auto [hec] = co_await s->ws.async_handshake(res, host, target, use_tuple);
  // The checks of the response (upgrade_declined for a status other than 101, a bad
  // Sec-WebSocket-Accept...) are the only websocket-category errors of a handshake: with one
  // of them, or none, a response was read.
  static const auto& ws_category = beast::error_code(websocket::error::closed).category();
  if (refused_status && (!hec || hec.category() == ws_category)) *refused_status = res.result();
  if (hec) s->end(hec);
  co_return hec;
}

asio::awaitable<beast::error_code> ws_client::send(std::string_view text) {
  auto s = impl_;
  s->ws.text(true);
  auto [ec, n] = co_await s->ws.async_write(asio::buffer(text.data(), text.size()), use_tuple);
  co_return ec;
}

asio::awaitable<beast::error_code> ws_client::send_binary(std::string_view bytes) {
  auto s = impl_;
  s->ws.binary(true);
  auto [ec, n] = co_await s->ws.async_write(asio::buffer(bytes.data(), bytes.size()), use_tuple);
  s->ws.text(true);
  co_return ec;
}

asio::awaitable<beast::error_code> ws_client::send_raw(std::string_view bytes) {
  auto s = impl_;
  auto [ec, n] = co_await asio::async_write(s->ws.next_layer(),
                                            asio::buffer(bytes.data(), bytes.size()), use_tuple);
  co_return ec;
}

asio::awaitable<beast::error_code> ws_client::close(std::uint16_t code) {
  auto s = impl_;
  auto [ec] = co_await s->ws.async_close(websocket::close_reason(code), use_tuple);
  // A read pending meanwhile (the next() reader's, or read()'s) ends with `closed` too.
  s->end(ec ? ec : beast::error_code(websocket::error::closed));
  co_return ec;
}

asio::awaitable<std::optional<std::string>> ws_client::next(std::chrono::milliseconds timeout) {
  auto s = impl_;
  if (!s->pumping && !s->closed) {
    s->pumping = true;
    asio::co_spawn(s->ws.get_executor(), pump(s), asio::detached);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // The queue first: frames that came before the close are still returned.
    if (!s->queue.empty()) {
      std::string frame = std::move(s->queue.front());
      s->queue.pop_front();
      co_return frame;
    }
    if (s->closed || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
    s->notify.expires_at(deadline);
    co_await s->notify.async_wait(use_tuple);  // deadline, or cancelled by the reader
  }
}

asio::awaitable<beast::error_code> ws_client::read(std::string_view& frame, std::size_t padding,
                                                   bool* is_text) {
  auto s = impl_;
  assert(!s->pumping && "read() and next() do not mix on one client");
  co_return co_await s->read_frame(frame, padding, is_text);
}

}  // namespace redcoro::gateway_test
