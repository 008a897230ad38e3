#include "gateway.hpp"

#include "frames.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/http/exporter.hpp>
#include <redcoro/recipes/limiter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <unordered_map>

namespace redcoro::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(use_awaitable);

namespace {

constexpr std::size_t max_http_connections = 256;
// How long a room's channel stays subscribed after its last member here left.
constexpr auto room_linger = std::chrono::seconds(10);

// The room's keys and channel, with the room's name as the hash tag (one slot per room).
std::string room_key(std::string_view room, std::string_view what) {
  std::string k = "gw:{";
  k += room;
  k += "}:";
  k += what;
  return k;
}

// The room a channel `gw:{ROOM}:events` belongs to; empty for another channel.
std::string_view room_of_channel(std::string_view channel) {
  if (!channel.starts_with("gw:{") || !channel.ends_with("}:events")) return {};
  return channel.substr(4, channel.size() - 4 - 8);
}

// ARGV[2] "renew": renews the presence of the members ARGV[3..] in a room; "remove": removes
// them. Then drops those older than the TTL (ARGV[1], ms) and answers the server's time in ms
// followed by the members, sorted. Timed by the server's clock, so gateways' clocks play no
// part. (The mode is an argument of its own: a user name cannot be taken for it.)
const redcoro::script& presence_script() {
  static const redcoro::script s(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
if ARGV[2] == 'remove' then
  for i = 3, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
else
  for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
  redis.call('PEXPIRE', KEYS[1], ttl * 4)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local m = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(m)
table.insert(m, 1, tostring(now))
return m
)lua");
  return s;
}

std::int64_t ms_of_id(std::string_view id) {
  std::int64_t v = 0;
  for (char c : id) {
    if (c < '0' || c > '9') break;
    v = v * 10 + (c - '0');
  }
  return v;
}

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

// ------------------------------------------------------------------------------------------

struct counters {
  std::uint64_t accepted = 0;
  std::uint64_t refused_origin = 0;
  std::uint64_t refused_user = 0;
  std::uint64_t refused_full = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t sent = 0;       // messages stored and published
  std::uint64_t delivered = 0;  // message frames queued to local clients
  std::uint64_t refused_invalid = 0;
  std::uint64_t refused_rate = 0;
  std::uint64_t refused_unavailable = 0;
  std::uint64_t slow_disconnects = 0;
  std::uint64_t flood_disconnects = 0;
  std::uint64_t closed_by_protocol = 0;  // malformed, binary or oversized frames
  std::uint64_t resubscribed = 0;
};

class session;

struct room {
  std::string name;
  std::string channel;
  std::list<std::shared_ptr<session>> members;  // local connections
  std::map<std::string, int> users;             // local connections per user
  enum class sub : std::uint8_t { none, pending, done } subscription = sub::none;
  std::shared_ptr<asio::steady_timer> subscribed;  // cancelled when the subscription settles
  std::shared_ptr<const std::string> presence;     // the last presence frame sent here
  // When the last member here left (subscription kept for a while: see release_idle).
  std::optional<std::chrono::steady_clock::time_point> empty_since;
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, std::string name, std::size_t frames, std::size_t bytes)
      : ws(std::move(socket)),
        user(std::move(name)),
        wake(ws.get_executor()),
        deadline(ws.get_executor()),
        max_frames(frames),
        max_bytes(bytes) {
    wake.expires_at(asio::steady_timer::time_point::max());
  }

  // On the plain socket: after the handshake the stream's own timeouts (below) are all it needs,
  // and beast::tcp_stream's per-operation timer costs on every frame.
  websocket::stream<tcp::socket> ws;
  std::string user;
  asio::steady_timer wake;      // the writer waits on it for frames
  asio::steady_timer deadline;  // once closing: when the socket is dropped regardless
  // The frames waiting for the writer, bounded in number and in bytes.
  std::deque<std::shared_ptr<const std::string>> queue;
  std::size_t queued_bytes = 0;
  const std::size_t max_frames, max_bytes;
  std::optional<websocket::close_reason> close_with;  // the writer closes with it
  bool closing = false;
  std::set<std::string> joined;
  // flood control: frames and joins in the current second, refusals in the last 10 s
  std::chrono::steady_clock::time_point second_start{};
  int frames_in_second = 0;
  int joins_in_second = 0;
  std::deque<std::chrono::steady_clock::time_point> refusals;

  // Queues a frame; false when the queue was full (the caller closes the client).
  bool enqueue(std::shared_ptr<const std::string> f) {
    if (closing) return true;
    if (queue.size() >= max_frames || queued_bytes + f->size() > max_bytes) return false;
    queued_bytes += f->size();
    queue.push_back(std::move(f));
    wake.cancel_one();
    return true;
  }
  std::shared_ptr<const std::string> pop() {
    auto f = std::move(queue.front());
    queue.pop_front();
    queued_bytes -= f->size();
    return f;
  }
  // The writer sends a close frame with `why` after the write in progress; whatever happens,
  // the socket is closed 5 s from now (a client that does not read cannot take a close frame
  // either), which ends the reader and the writer.
  void close(websocket::close_reason why) {
    if (closing) return;
    closing = true;
    close_with = std::move(why);
    queue.clear();
    queued_bytes = 0;
    wake.cancel_one();
    deadline.expires_after(5s);
    deadline.async_wait([self = shared_from_this()](const beast::error_code& e) {
      if (e) return;
      beast::error_code ignored;
      self->ws.next_layer().close(ignored);
    });
  }
};

// ------------------------------------------------------------------------------------------

class gateway::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(asio::io_context& ioc, options o)
      : ioc_(ioc),
        opts_(std::move(o)),
        redis_(ioc.get_executor(), opts_.redis, redis_defaults(opts_)),
        limiter_(redis_, {.algorithm = recipes::limiter_algorithm::token_bucket,
                          .limit = opts_.rate_limit,
                          .window = opts_.rate_window,
                          .prefix = "gw:limit:"}),
        events_(redis_, {.capacity = 65536, .overflow = overflow_policy::wait}),
        acceptor_(ioc),
        heartbeat_(ioc),
        web_(ioc.get_executor(),
             {.endpoint = {asio::ip::make_address("127.0.0.1"), opts_.metrics_port},
              .health_timeout = 1000ms,
              .read_timeout = 10000ms,
              .write_timeout = 10000ms,
              .header_limit = 8 * 1024,
              .body_limit = 4 * 1024,
              .max_connections = 32}) {
    sharded_ = redis_.kind() == deployment::cluster;
    acceptor_.open(opts_.address.is_v6() ? tcp::v6() : tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({opts_.address, opts_.port});
    acceptor_.listen();
    web_.add("redis", redis_);
    // The page's own origins, by the listener's address and as localhost: not whatever the
    // request's Host says, which a DNS-rebinding page controls.
    const auto port = std::to_string(acceptor_.local_endpoint().port());
    const auto address =
        opts_.address.is_v6() ? "[" + opts_.address.to_string() + "]" : opts_.address.to_string();
    own_origins_ = {"http://" + address + ":" + port, "http://localhost:" + port};
  }

  static connection_config redis_defaults(const options& o) {
    connection_config c;
    c.request_timeout = o.redis_timeout;
    c.connect_timeout = o.redis_timeout;
    return c;
  }

  void start() {
    auto self = shared_from_this();
    // Weak: the exporter is a member of this object.
    std::weak_ptr<impl> weak = self;
    web_.add("gateway", ioc_.get_executor(), [weak](std::string& out) {
      if (auto me = weak.lock()) me->metrics(out);
    });
    asio::co_spawn(ioc_, event_loop(self), asio::detached);
    asio::co_spawn(ioc_, accept_loop(self), asio::detached);
    asio::co_spawn(ioc_, heartbeat_loop(self), asio::detached);
    spdlog::info("gateway {}: serving {}:{}, metrics on 127.0.0.1:{}, redis {} ({})", opts_.id,
                 opts_.address.to_string(), port(), metrics_port(), opts_.redis,
                 to_string(redis_.kind()));
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::uint16_t metrics_port() const { return web_.local_endpoint().port(); }

  void stop(std::function<void()> done) {
    if (stopping_) return;
    stopping_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    heartbeat_.cancel();
    for (auto& s : sessions_)
      s->close({websocket::close_code::going_away, "gateway stopping"});
    for (auto* stream : http_)
      stream->close();
    // Remove our members' presence, bounded, then let go of Redis.
    asio::co_spawn(ioc_, leave_everything(shared_from_this()),
                   [done = std::move(done)](std::exception_ptr) {
                     if (done) done();
                   });
  }

 private:
  // --- HTTP and the upgrade ---------------------------------------------------------------

  static awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    while (!self->stopping_) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(use_tuple);
      if (self->stopping_) break;
      if (ec) {
        // Out of file descriptors, say: wait a little rather than spin on the error.
        asio::steady_timer pause(self->ioc_, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      // Connections still speaking plain HTTP (an upgrade not yet made, or a page load) are
      // bounded too: beyond the bound the connection is closed at once.
      if (self->http_.size() >= max_http_connections) {
        ++self->counters_.refused_full;
        continue;
      }
      asio::co_spawn(self->ioc_, serve_http(self, std::move(socket)), asio::detached);
    }
  }

  static bhttp::response<bhttp::string_body> respond(bhttp::status st, unsigned version,
                                                     std::string body, std::string_view type) {
    bhttp::response<bhttp::string_body> res(st, version);
    res.set(bhttp::field::server, "redcoro-gateway");
    res.set(bhttp::field::content_type, type);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  static awaitable<void> serve_http(std::shared_ptr<impl> self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    // Known to stop() while it serves plain HTTP, so that an idle keep-alive connection does
    // not hold the process for its read timeout.
    struct registration {
      std::list<beast::tcp_stream*>& list;
      std::list<beast::tcp_stream*>::iterator it;
      ~registration() {
        if (it != list.end()) list.erase(it);
      }
    } registered{self->http_, self->http_.insert(self->http_.end(), &stream)};
    beast::flat_buffer buffer;
    while (!self->stopping_) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(4 * 1024);
      stream.expires_after(10s);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      if (ec) break;
      auto req = parser.release();
      const std::string_view target(req.target().data(), req.target().size());
      const auto path = target.substr(0, target.find('?'));
      if (websocket::is_upgrade(req)) {
        if (path != "/ws") {
          auto res = respond(bhttp::status::not_found, req.version(), "not found\n", "text/plain");
          co_await bhttp::async_write(stream, res, use_tuple);
          break;
        }
        self->http_.erase(registered.it);
        registered.it = self->http_.end();
        co_await upgrade(self, std::move(stream), std::move(req));
        co_return;
      }
      bhttp::response<bhttp::string_body> res;
      if (req.method() != bhttp::verb::get) {
        res = respond(bhttp::status::method_not_allowed, req.version(), "only GET\n", "text/plain");
        res.set(bhttp::field::allow, "GET");
      } else if (path == "/") {
        res = respond(bhttp::status::ok, req.version(), page_html, "text/html; charset=utf-8");
        res.set("Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "connect-src 'self'; img-src data:");
      } else if (path == "/rooms") {
        auto listing = rooms_json(self);
        auto body = co_await std::move(listing);
        res = respond(bhttp::status::ok, req.version(), std::move(body), "application/json");
      } else {
        res = respond(bhttp::status::not_found, req.version(), "not found\n", "text/plain");
      }
      res.keep_alive(req.keep_alive());
      stream.expires_after(10s);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
      if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // The user named by `?user=` in the target; empty when absent or invalid.
  static std::string user_of(std::string_view target) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const auto part = query.substr(0, amp);
      if (part.starts_with("user=")) {
        const auto v = part.substr(5);
        return valid_name(v) ? std::string(v) : std::string();
      }
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
    return {};
  }

  bool origin_allowed(const bhttp::request<bhttp::string_body>& req) const {
    const auto origin = req[bhttp::field::origin];
    if (origin.empty()) return false;
    const std::string_view o(origin.data(), origin.size());
    const auto& allowed = opts_.allowed_origins.empty() ? own_origins_ : opts_.allowed_origins;
    return std::find(allowed.begin(), allowed.end(), o) != allowed.end();
  }

  static awaitable<void> upgrade(std::shared_ptr<impl> self, beast::tcp_stream stream,
                                 bhttp::request<bhttp::string_body> req) {
    auto refuse = [&](bhttp::status st, std::string why) -> awaitable<void> {
      auto res = respond(st, req.version(), why + "\n", "text/plain");
      res.keep_alive(false);
      stream.expires_after(5s);
      co_await bhttp::async_write(stream, res, use_tuple);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    };
    if (!self->origin_allowed(req)) {
      ++self->counters_.refused_origin;
      auto refusing = refuse(bhttp::status::forbidden, "origin not allowed");
      co_await std::move(refusing);
      co_return;
    }
    std::string user = user_of(std::string_view(req.target().data(), req.target().size()));
    if (user.empty()) {
      ++self->counters_.refused_user;
      auto refusing = refuse(bhttp::status::bad_request,
                             "?user= must be 1 to 32 characters of A-Z a-z 0-9 _ -");
      co_await std::move(refusing);
      co_return;
    }
    if (self->stopping_ || self->sessions_.size() >= self->opts_.max_connections) {
      ++self->counters_.refused_full;
      auto refusing = refuse(bhttp::status::service_unavailable, "too many connections");
      co_await std::move(refusing);
      co_return;
    }
    stream.expires_never();
    beast::error_code ignored;
    stream.socket().set_option(asio::socket_base::send_buffer_size(self->opts_.socket_send_buffer),
                               ignored);
    stream.socket().set_option(tcp::no_delay(true), ignored);
    auto s = std::make_shared<session>(stream.release_socket(), std::move(user),
                                       self->opts_.send_queue, self->opts_.send_queue_bytes);
    s->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    // A frame over max_frame is read whole (up to 64 KiB) and then refused with a close
    // handshake, so the client gets the 1009; only a larger one is cut by Beast at once.
    s->ws.read_message_max(std::max<std::size_t>(self->opts_.max_frame, 64 * 1024));
    s->ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(bhttp::field::server, "redcoro-gateway"); }));
    auto [ec] = co_await s->ws.async_accept(req, use_tuple);
    if (ec) co_return;
    if (self->stopping_) {
      auto closing =
          s->ws.async_close({websocket::close_code::going_away, "gateway stopping"}, use_tuple);
      co_await std::move(closing);
      co_return;
    }
    ++self->counters_.accepted;
    self->sessions_.insert(s);
    asio::co_spawn(self->ioc_, writer(s), asio::detached);
    self->send_frame(*s,
                     welcome_frame{.type = "welcome", .user = s->user, .gateway = self->opts_.id});
    co_await reader(self, s);
  }

  // --- one client -------------------------------------------------------------------------

  static awaitable<void> writer(std::shared_ptr<session> s) {
    for (;;) {
      if (s->queue.empty() && !s->close_with) {
        if (s->closing) break;
        co_await s->wake.async_wait(use_tuple);
        continue;
      }
      if (s->close_with) {
        auto why = *s->close_with;
        s->close_with.reset();
        co_await s->ws.async_close(why, use_tuple);
        break;
      }
      auto f = s->pop();
      s->ws.text(true);
      auto [ec, n] = co_await s->ws.async_write(asio::buffer(*f), use_tuple);
      if (ec) {
        s->closing = true;
        s->queue.clear();
        s->queued_bytes = 0;
        break;
      }
    }
    s->deadline.cancel();
  }

  static awaitable<void> reader(std::shared_ptr<impl> self, std::shared_ptr<session> s) {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await s->ws.async_read(buffer, use_tuple);
      if (ec) {
        // Beast has answered a malformed or oversized frame with its close code already.
        if (ec != websocket::error::closed && ec != asio::error::operation_aborted &&
            ec != asio::error::eof && ec != asio::error::connection_reset)
          ++self->counters_.closed_by_protocol;
        break;
      }
      if (s->closing) break;
      if (n > self->opts_.max_frame) {
        ++self->counters_.closed_by_protocol;
        s->close({websocket::close_code::too_big, "frame too large"});
        break;
      }
      if (!s->ws.got_text()) {
        ++self->counters_.closed_by_protocol;
        s->close({websocket::close_code::unknown_data, "text frames only"});
        break;
      }
      ++self->counters_.frames_received;
      // Read in place: the codec keeps its own padded copy for simdjson, and the buffer is
      // not touched until handle_frame is over.
      const auto data = buffer.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      co_await self->handle_frame(self, s, text);
      buffer.consume(buffer.size());
      if (s->closing) break;
    }
    s->closing = true;
    s->wake.cancel_one();
    self->sessions_.erase(s);
    for (const auto& r : std::set<std::string>(s->joined))
      co_await self->leave(self, s, r);
  }

  // Answers a refused frame with an error frame. A refusal for what the client did
  // (`client_fault`) counts: a client refused too often within 10 s is closed (1008).
  void refused(session& s, std::string code, std::string op, std::optional<std::string> room,
               std::string text, bool client_fault = true) {
    if (client_fault) {
      const auto now = std::chrono::steady_clock::now();
      s.refusals.push_back(now);
      while (!s.refusals.empty() && now - s.refusals.front() > 10s)
        s.refusals.pop_front();
      if (static_cast<int>(s.refusals.size()) >= opts_.flood_refusals) {
        ++counters_.flood_disconnects;
        s.close({websocket::close_code::policy_error, "too many refused frames"});
        return;
      }
    }
    send_frame(s, error_frame{.type = "error",
                              .code = std::move(code),
                              .op = std::move(op),
                              .room = std::move(room),
                              .text = std::move(text)});
  }

  template <class Frame>
  void send_frame(session& s, const Frame& f) {
    auto text = std::make_shared<std::string>();
    encode_frame(f, *text);
    if (!s.enqueue(std::move(text))) too_slow(s);
  }

  void too_slow(session& s) {
    ++counters_.slow_disconnects;
    s.close({static_cast<websocket::close_code>(4000), "too slow"});
  }

  static awaitable<void> handle_frame(std::shared_ptr<impl> self, std::shared_ptr<session> s,
                                      std::string_view text) {
    auto& o = self->opts_;
    const auto now = std::chrono::steady_clock::now();
    if (now - s->second_start >= 1s) {
      s->second_start = now;
      s->frames_in_second = 0;
      s->joins_in_second = 0;
    }
    if (++s->frames_in_second > o.frames_per_second) {
      ++self->counters_.refused_rate;
      self->refused(*s, "rate_limited", "", std::nullopt, "too many frames");
      co_return;
    }
    client_frame f;
    if (auto err = decode_frame(text, f); !err.empty()) {
      ++self->counters_.refused_invalid;
      self->refused(*s, "invalid", "", std::nullopt, std::move(err));
      co_return;
    }
    if (f.op == "rooms") {
      auto listing = rooms_json(self);
      auto body = co_await std::move(listing);
      if (!s->enqueue(std::make_shared<const std::string>(std::move(body)))) self->too_slow(*s);
      co_return;
    }
    if (f.op != "join" && f.op != "leave" && f.op != "send") {
      ++self->counters_.refused_invalid;
      self->refused(*s, "invalid", f.op, std::nullopt, "unknown op");
      co_return;
    }
    if (!f.room || !valid_name(*f.room)) {
      ++self->counters_.refused_invalid;
      self->refused(*s, "invalid", f.op, std::nullopt,
                    "room must be 1 to 32 characters of A-Z a-z 0-9 _ -");
      co_return;
    }
    const std::string& name = *f.room;
    if (f.op != "send" && ++s->joins_in_second > o.joins_per_second) {
      ++self->counters_.refused_rate;
      self->refused(*s, "rate_limited", f.op, name, "too many joins and leaves");
      co_return;
    }
    if (f.op == "join") {
      if (s->joined.contains(name) || self->stopping_) co_return;
      if (s->joined.size() >= o.rooms_per_client) {
        ++self->counters_.refused_invalid;
        self->refused(*s, "invalid", f.op, name, "too many rooms");
        co_return;
      }
      co_await join(self, s, name);
    } else if (f.op == "leave") {
      if (s->joined.contains(name)) co_await leave(self, s, name);
    } else {
      if (!s->joined.contains(name)) {
        ++self->counters_.refused_invalid;
        self->refused(*s, "not_joined", f.op, name, "join the room first");
        co_return;
      }
      if (!f.text || f.text->empty() || f.text->size() > o.max_text) {
        ++self->counters_.refused_invalid;
        self->refused(*s, "invalid", f.op, name,
                      "text must be 1 to " + std::to_string(o.max_text) + " bytes");
        co_return;
      }
      co_await send(self, s, name, std::move(*f.text));
    }
  }

  // --- rooms --------------------------------------------------------------------------------

  std::shared_ptr<room> room_for(const std::string& name) {
    auto& r = rooms_[name];
    if (!r) {
      r = std::make_shared<room>();
      r->name = name;
      r->channel = room_key(name, "events");
    }
    return r;
  }

  // Subscribes to the room's channel (once per gateway) and waits until that is confirmed.
  static awaitable<bool> subscribed(std::shared_ptr<impl> self, std::shared_ptr<room> r) {
    using sub = room::sub;
    if (r->subscription == sub::done) co_return true;
    if (r->subscription == sub::pending) {
      auto signal = r->subscribed;
      co_await signal->async_wait(use_tuple);
      co_return r->subscription == sub::done;
    }
    r->subscription = sub::pending;
    r->subscribed =
        std::make_shared<asio::steady_timer>(self->ioc_, asio::steady_timer::time_point::max());
    error_code ec;
    std::vector<std::string> channels{r->channel};
    if (self->sharded_) {
      auto subscribing = self->events_.async_ssubscribe(std::move(channels),
                                                        asio::redirect_error(use_awaitable, ec));
      co_await std::move(subscribing);
    } else {
      auto subscribing = self->events_.async_subscribe(std::move(channels),
                                                       asio::redirect_error(use_awaitable, ec));
      co_await std::move(subscribing);
    }
    r->subscription = ec ? sub::none : sub::done;
    r->subscribed->cancel();  // the joins that waited see the outcome
    if (ec) {
      // The subscriber may still subscribe it later (a subscription that timed out is kept
      // wanted): say that it is not wanted.
      spdlog::warn("gateway {}: subscribing to {}: {}", self->opts_.id, r->channel, ec.message());
      self->leave_channel(r->channel);
    }
    self->release_if_empty(r);  // every member may have gone meanwhile
    co_return !ec;
  }

  // A room with no member here: forgotten at once when it holds no subscription; otherwise
  // its subscription is kept for room_linger (release_idle leaves it), so that members coming
  // and going do not subscribe and unsubscribe each time, and an unsubscribe cannot cross the
  // subscribe of a member who comes straight back. Not while a subscription is on its way (the
  // join waiting for it calls this again).
  void release_if_empty(const std::shared_ptr<room>& r) {
    if (!r->members.empty() || r->subscription == room::sub::pending) return;
    if (r->subscription == room::sub::done) {
      if (!r->empty_since) r->empty_since = std::chrono::steady_clock::now();
      return;
    }
    if (auto it = rooms_.find(r->name); it != rooms_.end() && it->second == r) rooms_.erase(it);
  }

  // Leaves the channels of rooms empty here for room_linger (from the heartbeat).
  void release_idle() {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = rooms_.begin(); it != rooms_.end();) {
      auto& r = *it->second;
      if (r.members.empty() && r.subscription == room::sub::done && r.empty_since &&
          now - *r.empty_since >= room_linger) {
        r.subscription = room::sub::none;
        leave_channel(r.channel);
        it = rooms_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void leave_channel(const std::string& channel) {
    std::vector<std::string> channels{channel};
    if (sharded_)
      events_.async_sunsubscribe(std::move(channels), [](error_code) {});
    else
      events_.async_unsubscribe(std::move(channels), [](error_code) {});
  }

  static awaitable<void> join(std::shared_ptr<impl> self, std::shared_ptr<session> s,
                              std::string name) {
    auto r = self->room_for(name);
    s->joined.insert(name);
    r->members.push_back(s);
    r->empty_since.reset();
    const bool first_of_user = r->users[s->user]++ == 0;
    // Subscribed before the history is read: a message published in between is not lost (it
    // may arrive twice, in the history and live; both carry its id).
    auto subscribing = subscribed(self, r);
    const bool ok = co_await std::move(subscribing);
    if (!ok) {
      ++self->counters_.refused_unavailable;
      co_await self->drop_member(self, s, name, false);
      self->refused(*s, "unavailable", "join", name, "Redis is not reachable", false);
      co_return;
    }
    error_code ec;
    std::vector<std::string> members;
    if (first_of_user) {
      auto renewing = self->renew(self, name, presence_change::renew, {s->user}, ec);
      members = co_await std::move(renewing);
      if (ec) {
        // Not listed (or not known to be): the join is refused, and the TTL takes care of a
        // renewal that did happen.
        ++self->counters_.refused_unavailable;
        co_await self->drop_member(self, s, name, false);
        self->refused(*s, "unavailable", "join", name, ec.message(), false);
        co_return;
      }
    }
    {
      // The room list keeps the 1,000 rooms joined last: names come from clients.
      auto listed = redcoro::pipeline(
          cmd::zadd("gw:rooms", static_cast<double>(self->server_now()), name),
          redcoro::command<std::int64_t>("ZREMRANGEBYRANK", "gw:rooms", "0", "-1001"));
      asio::co_spawn(self->ioc_, self->fire(self, std::move(listed)), asio::detached);
    }
    auto reading = self->redis_.async_exec(
        cmd::xrevrange(room_key(name, "history"), "+", "-", self->opts_.history),
        asio::redirect_error(use_awaitable, ec));
    auto entries = co_await std::move(reading);
    if (ec || entries.has_error()) {
      ++self->counters_.refused_unavailable;
      co_await self->drop_member(self, s, name, first_of_user);
      self->refused(*s, "unavailable", "join", name, ec ? ec.message() : entries.error().message,
                    false);
      co_return;
    }
    history_frame h{.type = "history", .room = name, .messages = {}};
    auto& list = entries.value();
    for (auto it = list.rbegin(); it != list.rend(); ++it)
      h.messages.push_back(to_message(name, *it));
    self->send_frame(*s, h);
    if (first_of_user) {
      self->publish_presence(self, r, std::move(members));
    } else if (r->presence) {
      if (!s->enqueue(r->presence)) self->too_slow(*s);
    }
  }

  static message_frame to_message(const std::string& room, const stream_entry& e) {
    message_frame m{
        .type = "message", .room = room, .id = e.id, .user = {}, .text = {}, .ts = ms_of_id(e.id)};
    for (const auto& [k, v] : e.fields) {
      if (k == "user")
        m.user = v;
      else if (k == "text")
        m.text = v;
    }
    return m;
  }

  static awaitable<void> leave(std::shared_ptr<impl> self, std::shared_ptr<session> s,
                               std::string name) {
    auto it = self->rooms_.find(name);
    if (it == self->rooms_.end()) co_return;
    auto r = it->second;
    const bool last_of_user = r->users.contains(s->user) && r->users[s->user] == 1;
    co_await self->drop_member(self, s, name, last_of_user);
  }

  // Takes `s` out of the room here; when it was the user's last connection in the room, out of
  // the room's presence too; when the room has no member left here, unsubscribes.
  static awaitable<void> drop_member(std::shared_ptr<impl> self, std::shared_ptr<session> s,
                                     std::string name, bool remove_presence) {
    s->joined.erase(name);
    auto it = self->rooms_.find(name);
    if (it == self->rooms_.end()) co_return;
    auto r = it->second;
    r->members.remove(s);
    if (auto u = r->users.find(s->user); u != r->users.end() && --u->second <= 0) r->users.erase(u);
    self->release_if_empty(r);
    if (!remove_presence) co_return;
    error_code ec;
    auto removing = self->renew(self, name, presence_change::remove, {s->user}, ec);
    auto members = co_await std::move(removing);
    if (!ec) self->publish_presence(self, r, std::move(members));
  }

  // Runs the presence script on a room: renews `users` (or removes them) and answers the
  // members. Records the server's clock.
  enum class presence_change : std::uint8_t { renew, remove };
  static awaitable<std::vector<std::string>> renew(std::shared_ptr<impl> self, std::string name,
                                                   presence_change change,
                                                   std::vector<std::string> users, error_code& ec) {
    std::vector<std::string> argv;
    argv.reserve(users.size() + 2);
    argv.push_back(std::to_string(self->opts_.presence_ttl.count()));
    argv.emplace_back(change == presence_change::renew ? "renew" : "remove");
    for (auto& u : users)
      argv.push_back(std::move(u));
    auto running = self->redis_.async_exec(
        presence_script().call<std::vector<std::string>>(room_key(name, "members"), argv),
        asio::redirect_error(use_awaitable, ec));
    auto reply = co_await std::move(running);
    if (ec) co_return std::vector<std::string>{};
    if (reply.has_error() || reply.value().empty()) {
      ec = asio::error::invalid_argument;
      co_return std::vector<std::string>{};
    }
    auto m = std::move(reply.value());
    self->observe_server_time(ms_of_id(m.front()));
    m.erase(m.begin());
    co_return m;
  }

  static void publish_presence(std::shared_ptr<impl> self, std::shared_ptr<room> r,
                               std::vector<std::string> members) {
    std::string text;
    encode_frame(presence_frame{.type = "presence", .room = r->name, .members = std::move(members)},
                 text);
    auto ch = r->channel;
    if (self->sharded_)
      asio::co_spawn(self->ioc_, self->fire(self, cmd::spublish(ch, text)), asio::detached);
    else
      asio::co_spawn(self->ioc_, self->fire(self, cmd::publish(ch, text)), asio::detached);
  }

  // Sends `c` and forgets it: a failure is only logged (a lost update of the room list or a
  // lost presence change is mended by the next one).
  template <class Request>
  static awaitable<void> fire(std::shared_ptr<impl> self, Request c) {
    error_code ec;
    auto sending = self->redis_.async_exec(std::move(c), asio::redirect_error(use_awaitable, ec));
    co_await std::move(sending);
    if (ec) spdlog::debug("gateway {}: {}", self->opts_.id, ec.message());
  }

  static awaitable<void> send(std::shared_ptr<impl> self, std::shared_ptr<session> s,
                              std::string name, std::string text) {
    auto& o = self->opts_;
    error_code ec;
    auto deciding = self->limiter_.async_allow(s->user, asio::redirect_error(use_awaitable, ec));
    auto decision = co_await std::move(deciding);
    if (ec) {
      ++self->counters_.refused_unavailable;
      self->refused(*s, "unavailable", "send", name, ec.message(), false);
      co_return;
    }
    if (!decision.allowed) {
      ++self->counters_.refused_rate;
      self->refused(*s, "rate_limited", "send", name,
                    "retry in " + std::to_string(decision.retry_after.count()) + " ms", false);
      co_return;
    }
    // Stored, and the room's history kept for history_ttl after its last message: one
    // request, one slot.
    std::array<std::string_view, 4> fields{"user", s->user, "text", text};
    const auto history = room_key(name, "history");
    auto storing = self->redis_.async_exec(
        redcoro::pipeline(
            cmd::xadd(history, fields, {.id = "*", .max_len = o.history, .exact = true}),
            cmd::expire(history, o.history_ttl)),
        asio::redirect_error(use_awaitable, ec));
    auto stored = co_await std::move(storing);
    auto& id = std::get<0>(stored);
    if (ec || id.has_error()) {
      ++self->counters_.refused_unavailable;
      self->refused(*s, "unavailable", "send", name, ec ? ec.message() : id.error().message, false);
      co_return;
    }
    std::string frame;
    encode_frame(message_frame{.type = "message",
                               .room = name,
                               .id = id.value(),
                               .user = s->user,
                               .text = std::move(text),
                               .ts = ms_of_id(id.value())},
                 frame);
    const auto channel = room_key(name, "events");
    proto::result<std::int64_t> receivers;
    if (self->sharded_) {
      auto publishing = self->redis_.async_exec(cmd::spublish(channel, frame),
                                                asio::redirect_error(use_awaitable, ec));
      receivers = co_await std::move(publishing);
    } else {
      auto publishing = self->redis_.async_exec(cmd::publish(channel, frame),
                                                asio::redirect_error(use_awaitable, ec));
      receivers = co_await std::move(publishing);
    }
    if (ec || receivers.has_error()) {
      // Stored (members who join will see it) but not delivered live.
      ++self->counters_.refused_unavailable;
      self->refused(*s, "unavailable", "send", name, ec ? ec.message() : receivers.error().message,
                    false);
      co_return;
    }
    ++self->counters_.sent;
  }

  // Everything the room subscriptions receive, until the subscriber is closed: messages, and
  // the confirmations (a resubscription after a lost connection among them), which on_message
  // would not pass on.
  static awaitable<void> event_loop(std::shared_ptr<impl> self) {
    for (;;) {
      auto [ec, m] = co_await self->events_.async_receive(use_tuple);
      if (ec) break;
      self->on_event(std::move(m));
    }
  }

  // A message or a presence change published by any gateway: to every local member of the room.
  void on_event(pubsub_message m) {
    if (!m.is_message()) {
      if (m.resubscribed) {
        // The subscription is back after a lost connection: what was published meanwhile
        // was not received. Send each member the room's history again (the page keeps each
        // message once, by id).
        ++counters_.resubscribed;
        const auto name = std::string(room_of_channel(m.channel));
        if (auto it = rooms_.find(name); it != rooms_.end() && !stopping_)
          asio::co_spawn(ioc_, resend_history(shared_from_this(), it->second), asio::detached);
      }
      return;
    }
    const auto name = room_of_channel(m.channel);
    auto it = rooms_.find(std::string(name));
    if (it == rooms_.end()) return;
    auto& r = *it->second;
    const bool presence = m.payload.starts_with(R"({"type":"presence")");
    auto frame = std::make_shared<const std::string>(std::move(m.payload));
    if (presence) {
      if (r.presence && *r.presence == *frame) return;
      r.presence = frame;
    }
    for (const auto& s : r.members) {  // (enqueue and too_slow never change the list)
      if (!s->enqueue(frame))
        too_slow(*s);
      else if (!presence)
        ++counters_.delivered;
    }
  }

  static awaitable<void> resend_history(std::shared_ptr<impl> self, std::shared_ptr<room> r) {
    error_code ec;
    auto reading = self->redis_.async_exec(
        cmd::xrevrange(room_key(r->name, "history"), "+", "-", self->opts_.history),
        asio::redirect_error(use_awaitable, ec));
    auto entries = co_await std::move(reading);
    if (ec || entries.has_error()) co_return;
    history_frame h{.type = "history", .room = r->name, .messages = {}};
    for (auto it = entries.value().rbegin(); it != entries.value().rend(); ++it)
      h.messages.push_back(to_message(r->name, *it));
    auto text = std::make_shared<std::string>();
    encode_frame(h, *text);
    for (const auto& s : r->members)
      if (!s->enqueue(text)) self->too_slow(*s);
  }

  // --- presence heartbeat -------------------------------------------------------------------

  static awaitable<void> heartbeat_loop(std::shared_ptr<impl> self) {
    while (!self->stopping_) {
      self->heartbeat_.expires_after(self->opts_.heartbeat);
      co_await self->heartbeat_.async_wait(use_tuple);
      if (self->stopping_) break;
      self->release_idle();
      // Every room with members here, concurrently: renew them and send the members a
      // presence frame when it changed (a member of a stopped gateway lapsing, say).
      std::vector<std::shared_ptr<room>> rooms;
      for (const auto& entry : self->rooms_)
        if (!entry.second->users.empty()) rooms.push_back(entry.second);
      for (auto& r : rooms)
        asio::co_spawn(self->ioc_, beat(self, std::move(r)), asio::detached);
    }
  }

  static awaitable<void> beat(std::shared_ptr<impl> self, std::shared_ptr<room> r) {
    std::vector<std::string> users;
    for (const auto& [u, n] : r->users)
      users.push_back(u);
    error_code ec;
    auto renewing = renew(self, r->name, presence_change::renew, std::move(users), ec);
    auto members = co_await std::move(renewing);
    if (ec) co_return;
    auto frame = std::make_shared<std::string>();
    encode_frame(presence_frame{.type = "presence", .room = r->name, .members = std::move(members)},
                 *frame);
    if (r->presence && *r->presence == *frame) co_return;
    r->presence = frame;
    for (const auto& s : r->members)
      if (!s->enqueue(frame)) self->too_slow(*s);
  }

  static awaitable<void> leave_everything(std::shared_ptr<impl> self) {
    // One script call per room for all its members here, and the room's new list published
    // (the other gateways would otherwise show them until the TTL).
    std::vector<std::shared_ptr<room>> rooms;
    for (const auto& entry : self->rooms_)
      if (!entry.second->users.empty()) rooms.push_back(entry.second);
    for (const auto& r : rooms) {
      std::vector<std::string> users;
      for (const auto& entry : r->users)
        users.push_back(entry.first);
      error_code ec;
      auto removing = renew(self, r->name, presence_change::remove, std::move(users), ec);
      auto members = co_await std::move(removing);
      if (ec) break;  // Redis is away: the TTL will do it
      publish_presence(self, r, std::move(members));
    }
    self->events_.close();
    self->web_.close();
    self->redis_.close();
  }

  // --- the room list ------------------------------------------------------------------------

  // The room list, read at most once a second whatever the number of clients asking.
  static awaitable<std::string> rooms_json(std::shared_ptr<impl> self) {
    const auto now = std::chrono::steady_clock::now();
    if (!self->rooms_text_.empty() && (self->rooms_refreshing_ || now - self->rooms_read_at_ < 1s))
      co_return self->rooms_text_;
    self->rooms_refreshing_ = true;
    auto reading = read_rooms(self);
    auto text = co_await std::move(reading);
    self->rooms_refreshing_ = false;
    self->rooms_read_at_ = now;
    self->rooms_text_ = text;
    co_return text;
  }

  static awaitable<std::string> read_rooms(std::shared_ptr<impl> self) {
    rooms_frame out{.type = "rooms", .rooms = {}};
    error_code ec;
    auto listing = self->redis_.async_exec(
        redcoro::command<std::vector<std::string>>("ZRANGE", "gw:rooms", "0", "49", "REV"),
        asio::redirect_error(use_awaitable, ec));
    auto names = co_await std::move(listing);
    if (!ec && !names.has_error() && !names.value().empty()) {
      // Every room's count in one request (split per slot on a cluster).
      const auto since = std::to_string(self->server_now() - self->opts_.presence_ttl.count());
      proto::request counts;
      for (const auto& n : names.value())
        counts.push("ZCOUNT", room_key(n, "members"), since, "+inf");
      std::vector<proto::result<std::int64_t>> replies;
      auto counting =
          self->redis_.async_exec(counts, replies, asio::redirect_error(use_awaitable, ec));
      co_await std::move(counting);
      for (std::size_t i = 0; !ec && i < replies.size() && i < names.value().size(); ++i)
        if (!replies[i].has_error() && replies[i].value() > 0)
          out.rooms.push_back({.room = names.value()[i], .members = replies[i].value()});
    }
    std::string text;
    encode_frame(out, text);
    co_return text;
  }

  // The server's clock in ms, as last seen in a presence reply, moved on by ours since.
  std::int64_t server_now() const {
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - server_seen_at_);
    return server_ms_ + since.count();
  }
  void observe_server_time(std::int64_t ms) {
    server_ms_ = ms;
    server_seen_at_ = std::chrono::steady_clock::now();
  }

  // --- metrics ------------------------------------------------------------------------------

  // The gateway's families in the Prometheus text format (no labels: the scraper adds the
  // instance). Names and meanings: README.md, "HTTP".
  void metrics(std::string& out) const {
    auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                      double value) {
      char number[32];
      const auto n = std::snprintf(number, sizeof number, "%.17g", value);
      out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
      out.append(name).append(" ").append(type).append("\n").append(name).append(" ");
      out.append(number, static_cast<std::size_t>(n)).append("\n");
    };
    struct counter_family {
      std::string_view name, help;
      std::uint64_t counters::*value;
    };
    static constexpr counter_family counted[] = {
        {"gateway_connections_accepted_total", "WebSocket upgrades accepted.", &counters::accepted},
        {"gateway_upgrades_refused_origin_total", "Upgrades refused for their Origin (403).",
         &counters::refused_origin},
        {"gateway_upgrades_refused_user_total",
         "Upgrades refused for a missing or invalid user name (400).", &counters::refused_user},
        {"gateway_upgrades_refused_full_total",
         "Upgrades refused because max_connections were open (503).", &counters::refused_full},
        {"gateway_frames_received_total", "Text frames received from clients.",
         &counters::frames_received},
        {"gateway_messages_sent_total", "Messages stored and published.", &counters::sent},
        {"gateway_messages_delivered_total", "Message frames queued to this gateway's clients.",
         &counters::delivered},
        {"gateway_refused_invalid_total", "Frames refused as invalid.", &counters::refused_invalid},
        {"gateway_refused_rate_limited_total",
         "Frames refused by the per-user or per-connection rate limit.", &counters::refused_rate},
        {"gateway_refused_unavailable_total",
         "Requests refused because Redis could not be reached in time.",
         &counters::refused_unavailable},
        {"gateway_slow_disconnects_total",
         "Clients disconnected because their send queue filled (4000).",
         &counters::slow_disconnects},
        {"gateway_flood_disconnects_total",
         "Clients disconnected for too many refused frames (1008).", &counters::flood_disconnects},
        {"gateway_protocol_closes_total",
         "Clients closed for a malformed, binary or oversized frame.",
         &counters::closed_by_protocol},
        {"gateway_resubscribed_total", "Room subscriptions restored after a lost Redis connection.",
         &counters::resubscribed},
    };
    family("gateway_connections", "gauge", "WebSocket clients connected.",
           static_cast<double>(sessions_.size()));
    family("gateway_rooms", "gauge",
           "Rooms subscribed on this gateway (with members, or left within 10 s).",
           static_cast<double>(rooms_.size()));
    for (const auto& f : counted)
      family(f.name, "counter", f.help, static_cast<double>(counters_.*f.value));
    family("process_cpu_seconds_total", "counter", "User and system CPU time of the process.",
           process_cpu_seconds());
  }

  asio::io_context& ioc_;
  options opts_;
  handle redis_;
  recipes::rate_limiter limiter_;
  handle_subscriber events_;
  tcp::acceptor acceptor_;
  asio::steady_timer heartbeat_;
  http::exporter web_;
  bool sharded_ = false;
  std::vector<std::string> own_origins_;  // allowed when allowed_origins is empty
  bool stopping_ = false;
  std::set<std::shared_ptr<session>> sessions_;
  std::list<beast::tcp_stream*> http_;  // connections serving plain HTTP
  std::unordered_map<std::string, std::shared_ptr<room>> rooms_;
  counters counters_;
  std::int64_t server_ms_ = 0;
  std::string rooms_text_;  // the last room list read, and when
  std::chrono::steady_clock::time_point rooms_read_at_{};
  bool rooms_refreshing_ = false;
  std::chrono::steady_clock::time_point server_seen_at_ = std::chrono::steady_clock::now();
};

gateway::gateway(asio::io_context& ioc, options o)
    : impl_(std::make_shared<impl>(ioc, std::move(o))) {
  impl_->start();
}

gateway::~gateway() = default;

std::uint16_t gateway::port() const {
  return impl_->port();
}
std::uint16_t gateway::metrics_port() const {
  return impl_->metrics_port();
}
void gateway::stop(std::function<void()> done) {
  impl_->stop(std::move(done));
}

}  // namespace redcoro::gateway
