#include "load.hpp"

#include "ws_client.hpp"
#include <redcoro/client/histogram.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <simdjson.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace redcoro::gateway_load {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace od = simdjson::ondemand;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

template <class T>
bool parse_int(std::string_view s, T& out) noexcept {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

// A seq above this in a frame is garbage, not a message of this run: it would otherwise size a
// vector.
constexpr std::uint64_t max_seq = 10'000'000;

enum class phase { joining, presence, sending, draining, closing };
enum class send_status : std::uint8_t { accepted, refused, failed };

// What one receiver has seen of one sender of its room.
struct from_sender {
  std::int64_t last = -1;          // the highest seq seen
  std::vector<std::uint8_t> seen;  // by seq
};

struct client {
  int index = 0;
  int room = 0;  // index % rooms; its place among the room's members ("slot") is index / rooms
  std::uint16_t port = 0;
  std::string user, room_name;
  std::unique_ptr<gateway_test::ws_client> ws;
  std::unique_ptr<asio::steady_timer> tick;  // the sender's

  bool connected = false, welcomed = false, history = false, presence = false;
  bool settled = false;        // connected and joined, failed, or ended: counted once
  bool participating = false;  // joined in time: sends, and is expected to receive
  bool presence_complete = false;
  std::vector<std::uint8_t> present;  // by slot: the last presence frame listed that member

  // Sending: at most one send in flight, resolved by its delivery back to this client or by
  // an error frame naming "op":"send".
  std::vector<send_status> sends;  // by seq
  bool in_flight = false;
  std::uint64_t in_flight_seq = 0;
  clock_type::time_point in_flight_since;
  std::string out;  // the frame being written; reused

  std::vector<from_sender> from;  // by the sender's slot

  bool ready() const noexcept { return welcomed && history && presence; }
};

struct sample {
  double cpu_seconds = 0;
  double delivered = 0;
};

struct state {
  state(const options& opts, asio::any_io_executor executor)
      : o(opts), ex(executor), wake(executor) {}

  const options& o;
  asio::any_io_executor ex;
  std::vector<client> clients;
  std::vector<int> room_size;          // every client of the room
  std::vector<int> room_participants;  // those that joined in time
  od::parser parser;                   // one thread, one frame at a time: one parser
  redcoro::histogram latency;
  report r;
  phase ph = phase::joining;
  std::exception_ptr failure;
  bool stopping = false;

  // The orchestrator waits on `wake`; whatever may have made its condition true cancels it.
  asio::steady_timer wake;
  void poke() { wake.cancel(); }

  int connecting = 0, readers = 0, senders = 0, closers = 0;
  int settled = 0, participants = 0, complete = 0;
  // For ending the drain early: deliveries expected of sends not refused so far, and those
  // that came. Exact figures are computed at the end from the per-pair records.
  std::uint64_t expected_live = 0, delivered_live = 0;
  clock_type::time_point last_send{};

  void settle(client& c) {
    if (c.settled) return;
    c.settled = true;
    ++settled;
    poke();
  }

  // Whether j names a client of this run ("u<j>").
  bool member_index(std::string_view name, int& j) const noexcept {
    if (!name.starts_with(o.user_prefix)) return false;
    return parse_int(name.substr(o.user_prefix.size()), j) && j >= 0 && j < o.clients;
  }

  void update_complete(client& c) {
    bool all = true;
    for (int s = 0; s < room_size[c.room] && all; ++s)
      all = !clients[c.room + s * o.rooms].participating || c.present[s];
    if (all == c.presence_complete) return;
    c.presence_complete = all;
    complete += all ? 1 : -1;
    if (complete == participants) poke();
  }

  // Something abnormal (an exception): stop every activity so that the io_context runs out.
  void shutdown() {
    stopping = true;
    for (auto& c : clients) {
      if (c.ws) c.ws->abort();
      if (c.tick) c.tick->cancel();
    }
    poke();
  }
};

// Runs `f` when the scope ends, exception or not.
template <class F>
struct on_exit {
  F f;
  ~on_exit() { f(); }
};
template <class F>
on_exit(F) -> on_exit<F>;

// ---- frames (the per-frame path: no allocation but the first time a vector grows) ----------

enum class action { none, send_join };

void on_message(state& st, client& c, od::document& doc) {
  std::string_view room, user, text;
  if (doc["room"].get_string().get(room) || doc["user"].get_string().get(user) ||
      doc["text"].get_string().get(text)) {
    ++st.r.bad_frames;
    return;
  }
  // "<user> <seq> <send_time_ns>"
  const auto sp1 = text.find(' ');
  const auto sp2 = sp1 == text.npos ? text.npos : text.find(' ', sp1 + 1);
  int j = 0;
  std::uint64_t seq = 0;
  std::int64_t sent_ns = 0;
  if (sp2 == text.npos || !st.member_index(text.substr(0, sp1), j) ||
      !parse_int(text.substr(sp1 + 1, sp2 - sp1 - 1), seq) ||
      !parse_int(text.substr(sp2 + 1), sent_ns) || seq > max_seq) {
    ++st.r.foreign;
    return;
  }
  // Delivered to the wrong room, or attributed to another user than its sender.
  if (room != c.room_name || j % st.o.rooms != c.room || user != text.substr(0, sp1)) {
    ++st.r.misrouted;
    return;
  }
  const auto now = now_ns();
  auto& f = c.from[static_cast<std::size_t>(j / st.o.rooms)];
  if (seq >= f.seen.size()) f.seen.resize(seq + 1);
  if (f.seen[seq]) {
    ++st.r.duplicates;
    return;
  }
  f.seen[seq] = 1;
  if (static_cast<std::int64_t>(seq) < f.last)
    ++st.r.out_of_order;
  else
    f.last = static_cast<std::int64_t>(seq);
  if (now >= sent_ns) st.latency.record(static_cast<std::uint64_t>(now - sent_ns));

  client& sender = st.clients[static_cast<std::size_t>(j)];
  if (c.participating && sender.participating && seq < sender.sends.size() &&
      sender.sends[seq] == send_status::accepted) {
    ++st.delivered_live;
    if (st.ph == phase::draining && st.delivered_live >= st.expected_live) st.poke();
  }
  if (j == c.index && c.in_flight && seq == c.in_flight_seq) c.in_flight = false;
}

void on_presence(state& st, client& c, od::document& doc) {
  std::string_view room;
  od::array members;
  if (doc["room"].get_string().get(room) || doc["members"].get_array().get(members)) {
    ++st.r.bad_frames;
    return;
  }
  if (room != c.room_name) {
    ++st.r.misrouted;
    return;
  }
  std::fill(c.present.begin(), c.present.end(), std::uint8_t{0});
  for (auto item : members) {
    std::string_view name;
    if (item.get_string().get(name)) {
      ++st.r.bad_frames;
      return;
    }
    int j = 0;
    if (st.member_index(name, j) && j % st.o.rooms == c.room)
      c.present[static_cast<std::size_t>(j / st.o.rooms)] = 1;
  }
  const bool was_ready = c.ready();
  c.presence = true;
  if (!was_ready && c.ready()) st.settle(c);
  if (c.participating) st.update_complete(c);
}

void on_error(state& st, client& c, od::document& doc) {
  std::string_view code, op;
  if (doc["code"].get_string().get(code)) {
    ++st.r.bad_frames;
    return;
  }
  ++st.r.refused[std::string(code)];
  // At most one send in flight, and sends are all this client writes once it has joined: an
  // error naming "send", or no op (a frame refused before it was read: the per-connection
  // frame limit), is that send's answer.
  if (!c.in_flight || doc["op"].get_string().get(op) || (op != "send" && !op.empty())) return;
  c.sends[c.in_flight_seq] = send_status::refused;
  c.in_flight = false;
  ++st.r.refused_sends;
  st.expected_live -= static_cast<std::uint64_t>(st.room_participants[c.room]);
  if (st.ph == phase::draining && st.delivered_live >= st.expected_live) st.poke();
}

action on_frame(state& st, client& c, std::string_view frame) {
  // The frame is followed by SIMDJSON_PADDING readable bytes (ws_client::read's padding).
  od::document doc;
  std::string_view type;
  if (st.parser.iterate(frame.data(), frame.size(), frame.size() + simdjson::SIMDJSON_PADDING)
          .get(doc) ||
      doc["type"].get_string().get(type)) {
    ++st.r.bad_frames;
    return action::none;
  }
  if (type == "message") {
    on_message(st, c, doc);
  } else if (type == "presence") {
    on_presence(st, c, doc);
  } else if (type == "error") {
    on_error(st, c, doc);
  } else if (type == "history") {
    // Messages of earlier runs, if any: nothing to check.
    const bool was_ready = c.ready();
    c.history = true;
    if (!was_ready && c.ready()) st.settle(c);
  } else if (type == "welcome") {
    if (!c.welcomed) {
      c.welcomed = true;
      return action::send_join;
    }
  } else if (type != "rooms") {
    ++st.r.bad_frames;
  }
  return action::none;
}

// ---- coroutines --------------------------------------------------------------------------

// Connects, then reads every frame until the connection ends.
asio::awaitable<void> client_life(state& st, client& c) {
  on_exit done{[&] {
    --st.readers;
    st.settle(c);
    st.poke();
  }};
  const std::string target = "/ws?user=" + c.user;
  const std::string origin = "http://127.0.0.1:" + std::to_string(c.port);
  ++st.connecting;
  auto ec = co_await c.ws->connect(c.port, target, origin);
  --st.connecting;
  st.poke();
  if (ec) {
    ++st.r.connect_failures;
    if (st.r.connect_failures <= 3)
      std::fprintf(stderr, "%s: connect to port %u failed: %s\n", c.user.c_str(),
                   static_cast<unsigned>(c.port), ec.message().c_str());
    co_return;
  }
  c.connected = true;
  ++st.r.connected;
  for (;;) {
    std::string_view frame;
    bool text = false;
    if (co_await c.ws->read(frame, simdjson::SIMDJSON_PADDING, &text)) break;
    if (!text) {
      ++st.r.bad_frames;
      continue;
    }
    if (on_frame(st, c, frame) == action::send_join) {
      // No other write yet: the sender starts after every client has joined.
      const std::string join = R"({"op":"join","room":")" + c.room_name + R"("})";
      co_await c.ws->send(join);
    }
  }
  if (st.ph != phase::closing) {
    ++st.r.closes;
    const int code = c.ws->close_code();
    ++st.r.close_codes[code != 0 ? code : 1006];
    if (st.r.closes <= 3)
      std::fprintf(stderr, "%s: connection ended: %s (close code %d)\n", c.user.c_str(),
                   c.ws->close_error().message().c_str(), code);
  }
}

void append_number(std::string& s, std::int64_t v) {
  char digits[24];
  const auto [p, ec] = std::to_chars(digits, digits + sizeof digits, v);
  s.append(digits, p);
}

// Sends `rate` times a second from t0 + offset until t0 + duration; at most one send in
// flight (a tick that finds one is skipped).
asio::awaitable<void> sender(state& st, client& c, clock_type::time_point t0,
                             std::chrono::nanoseconds period, std::chrono::nanoseconds offset) {
  on_exit done{[&] {
    --st.senders;
    st.poke();
  }};
  const auto end = t0 + st.o.duration;
  for (auto t = t0 + offset; t < end; t += period) {
    c.tick->expires_at(t);
    co_await c.tick->async_wait(use_tuple);
    if (st.stopping || c.ws->closed()) break;
    if (c.in_flight) {
      if (clock_type::now() - c.in_flight_since < st.o.drain) {
        ++st.r.skipped;
        continue;
      }
      c.in_flight = false;  // given up on; still expected, so it counts as missing
      ++st.r.abandoned;
    }
    const std::uint64_t seq = c.sends.size();
    c.sends.push_back(send_status::accepted);
    c.out.clear();
    c.out += R"({"op":"send","room":")";
    c.out += c.room_name;
    c.out += R"(","text":")";
    c.out += c.user;
    c.out += ' ';
    append_number(c.out, static_cast<std::int64_t>(seq));
    c.out += ' ';
    append_number(c.out, now_ns());
    c.out += R"("})";
    c.in_flight = true;
    c.in_flight_seq = seq;
    c.in_flight_since = clock_type::now();
    ++st.r.sent;
    st.expected_live += static_cast<std::uint64_t>(st.room_participants[c.room]);
    const auto ec = co_await c.ws->send(c.out);
    if (ec) {
      c.sends[seq] = send_status::failed;
      c.in_flight = false;
      ++st.r.send_failures;
      st.expected_live -= static_cast<std::uint64_t>(st.room_participants[c.room]);
      break;
    }
    st.last_send = std::max(st.last_send, clock_type::now());
  }
}

asio::awaitable<void> close_one(state& st, client& c) {
  on_exit done{[&] {
    --st.closers;
    st.poke();
  }};
  co_await c.ws->close(1000);
}

// Parses the Prometheus text: sample lines "name value" without labels.
std::optional<sample> parse_metrics(std::string_view body) {
  std::optional<double> cpu, delivered;
  while (!body.empty()) {
    const auto eol = body.find('\n');
    std::string_view line = body.substr(0, eol);
    body = eol == body.npos ? std::string_view{} : body.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto sp = line.find(' ');
    if (sp == line.npos) continue;
    const auto name = line.substr(0, sp);
    std::optional<double>* slot = name == "process_cpu_seconds_total"          ? &cpu
                                  : name == "gateway_messages_delivered_total" ? &delivered
                                                                               : nullptr;
    if (!slot) continue;
    auto value = line.substr(sp + 1);
    value = value.substr(0, value.find(' '));  // an optional timestamp follows
    double v = 0;
    const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec == std::errc{}) *slot = v;
  }
  if (!cpu || !delivered) return std::nullopt;
  return sample{*cpu, *delivered};
}

asio::awaitable<std::optional<sample>> scrape(asio::any_io_executor ex, std::uint16_t port) {
  beast::tcp_stream s(ex);
  s.expires_after(5s);
  auto [ec] = co_await s.async_connect(
      asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port), use_tuple);
  if (ec) co_return std::nullopt;
  http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "redcoro-gateway-load");
  auto [wec, wn] = co_await http::async_write(s, req, use_tuple);
  if (wec) co_return std::nullopt;
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  auto [rec, rn] = co_await http::async_read(s, buffer, res, use_tuple);
  beast::error_code ignored;
  s.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  if (rec || res.result() != http::status::ok) co_return std::nullopt;
  co_return parse_metrics(res.body());
}

// The sum over every metrics port; nullopt if any failed.
asio::awaitable<std::optional<sample>> scrape_all(state& st) {
  if (st.o.metrics_ports.empty()) co_return std::nullopt;
  sample sum;
  for (const auto port : st.o.metrics_ports) {
    const auto one = co_await scrape(st.ex, port);
    if (!one) {
      std::fprintf(stderr, "scraping /metrics on port %u failed\n", static_cast<unsigned>(port));
      co_return std::nullopt;
    }
    sum.cpu_seconds += one->cpu_seconds;
    sum.delivered += one->delivered;
  }
  co_return sum;
}

template <class Pred>
asio::awaitable<bool> wait_until(state& st, Pred pred, clock_type::time_point deadline) {
  while (!pred()) {
    if (st.stopping || clock_type::now() >= deadline) co_return false;
    st.wake.expires_at(deadline);
    co_await st.wake.async_wait(use_tuple);
  }
  co_return true;
}

void compute_report(state& st) {
  auto& r = st.r;
  const auto& o = st.o;
  for (auto& c : st.clients) {
    if (c.connected && !c.participating) ++r.join_failures;
    if (c.in_flight) ++r.abandoned;
    if (!c.participating) continue;
    for (int s = 0; s < st.room_size[c.room]; ++s) {
      const client& sender = st.clients[static_cast<std::size_t>(c.room + s * o.rooms)];
      const auto& seen = c.from[static_cast<std::size_t>(s)].seen;
      for (std::size_t seq = 0; seq < seen.size(); ++seq)
        if (seen[seq] && (!sender.participating || seq >= sender.sends.size() ||
                          sender.sends[seq] != send_status::accepted))
          ++r.unexpected;
      if (!sender.participating) continue;
      for (std::size_t seq = 0; seq < sender.sends.size(); ++seq) {
        if (sender.sends[seq] != send_status::accepted) continue;
        ++r.expected_deliveries;
        if (seq < seen.size() && seen[seq]) ++r.delivered;
      }
    }
  }
  r.missing = r.expected_deliveries - r.delivered;
  r.latency_samples = st.latency.count();
  r.latency_p50_us = static_cast<double>(st.latency.percentile(50)) / 1e3;
  r.latency_p99_us = static_cast<double>(st.latency.percentile(99)) / 1e3;
  r.latency_max_us = static_cast<double>(st.latency.max()) / 1e3;
}

asio::awaitable<void> main_flow(state& st) {
  const auto& o = st.o;

  // Connect and join, a bounded number of handshakes at a time.
  for (auto& c : st.clients) {
    co_await wait_until(
        st, [&] { return st.connecting < std::max(1, o.connect_concurrency); },
        clock_type::time_point::max());
    if (st.stopping) break;
    ++st.readers;
    asio::co_spawn(st.ex, client_life(st, c), [&st](std::exception_ptr e) {
      if (e && !st.failure) {
        st.failure = e;
        st.shutdown();
      }
    });
  }
  const int n = static_cast<int>(st.clients.size());
  co_await wait_until(
      st, [&] { return st.settled == n; }, clock_type::now() + o.join_timeout);

  // Who takes part is fixed now: a client that joins later neither sends nor is waited for.
  st.ph = phase::presence;
  for (auto& c : st.clients) {
    c.participating = c.connected && c.ready() && !c.ws->closed();
    if (!c.participating) continue;
    ++st.participants;
    ++st.room_participants[static_cast<std::size_t>(c.room)];
  }
  for (auto& c : st.clients)
    if (c.participating) st.update_complete(c);
  // Membership complete before the first send, so that every member is subscribed.
  co_await wait_until(
      st, [&] { return st.complete == st.participants; }, clock_type::now() + o.presence_timeout);
  st.r.presence_incomplete = static_cast<std::uint64_t>(st.participants - st.complete);

  const auto before = co_await scrape_all(st);

  // Send, each client from a random point of the first period so that sends are spread.
  st.ph = phase::sending;
  const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / o.rate));
  std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> spread(0,
                                                     std::max<std::int64_t>(0, period.count() - 1));
  const auto t0 = clock_type::now();
  st.last_send = t0;
  for (auto& c : st.clients) {
    if (!c.participating || st.stopping) continue;
    c.tick = std::make_unique<asio::steady_timer>(st.ex);
    ++st.senders;
    asio::co_spawn(st.ex, sender(st, c, t0, period, std::chrono::nanoseconds(spread(rng))),
                   [&st](std::exception_ptr e) {
                     if (e && !st.failure) {
                       st.failure = e;
                       st.shutdown();
                     }
                   });
  }
  co_await wait_until(
      st, [&] { return st.senders == 0; }, clock_type::time_point::max());
  const auto t1 = st.last_send;
  st.r.seconds = std::chrono::duration<double>(t1 - t0).count();

  st.ph = phase::draining;
  co_await wait_until(
      st, [&] { return st.delivered_live >= st.expected_live; }, t1 + o.drain);

  const auto after = co_await scrape_all(st);
  if (before && after && after->delivered > before->delivered) {
    st.r.gateway_cpu_seconds = after->cpu_seconds - before->cpu_seconds;
    st.r.gateway_deliveries = after->delivered - before->delivered;
    st.r.gateway_cpu_us_per_delivery = st.r.gateway_cpu_seconds * 1e6 / st.r.gateway_deliveries;
  }

  // Close every connection with a close frame; whatever has not ended in 5 s is cut.
  st.ph = phase::closing;
  for (auto& c : st.clients) {
    if (!c.connected || c.ws->closed()) continue;
    ++st.closers;
    asio::co_spawn(st.ex, close_one(st, c), [&st](std::exception_ptr e) {
      if (e && !st.failure) {
        st.failure = e;
        st.shutdown();
      }
    });
  }
  const auto all_ended = [&] { return st.readers == 0 && st.closers == 0; };
  if (!co_await wait_until(st, all_ended, clock_type::now() + 5s)) {
    for (auto& c : st.clients)
      c.ws->abort();
    co_await wait_until(st, all_ended, clock_type::time_point::max());
  }
  compute_report(st);
}

void raise_fd_limit(int clients) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(clients) + 256;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  setrlimit(RLIMIT_NOFILE, &lim);
}

void add_row(std::string& s, const char* name, const std::string& value) {
  s += "| ";
  s += name;
  s += " | ";
  s += value;
  s += " |\n";
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

report run(const options& o) {
  if (o.gateways.empty()) throw std::invalid_argument("gateway_load: no gateway port");
  if (o.clients <= 0) throw std::invalid_argument("gateway_load: clients must be > 0");
  if (o.rooms <= 0) throw std::invalid_argument("gateway_load: rooms must be > 0");
  if (!(o.rate > 0)) throw std::invalid_argument("gateway_load: rate must be > 0");
  raise_fd_limit(o.clients);

  asio::io_context ioc{1};
  state st(o, ioc.get_executor());
  st.r.clients = static_cast<std::uint64_t>(o.clients);
  st.room_size.assign(static_cast<std::size_t>(o.rooms), 0);
  st.room_participants.assign(static_cast<std::size_t>(o.rooms), 0);
  for (int i = 0; i < o.clients; ++i)
    ++st.room_size[static_cast<std::size_t>(i % o.rooms)];
  st.clients.resize(static_cast<std::size_t>(o.clients));
  for (int i = 0; i < o.clients; ++i) {
    auto& c = st.clients[static_cast<std::size_t>(i)];
    c.index = i;
    c.room = i % o.rooms;
    c.port = o.gateways[static_cast<std::size_t>(i) % o.gateways.size()];
    c.user = o.user_prefix + std::to_string(i);
    c.room_name = o.room_prefix + std::to_string(c.room);
    c.ws = std::make_unique<gateway_test::ws_client>(ioc.get_executor());
    const auto members = static_cast<std::size_t>(st.room_size[static_cast<std::size_t>(c.room)]);
    c.present.assign(members, 0);
    c.from.resize(members);
  }

  asio::co_spawn(ioc, main_flow(st), [&st](std::exception_ptr e) {
    if (e && !st.failure) st.failure = e;
    if (e) st.shutdown();
  });
  ioc.run();
  if (st.failure) std::rethrow_exception(st.failure);
  return st.r;
}

std::string to_table(const report& r) {
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string s = "| figure | value |\n|---|---:|\n";
  add_row(s, "clients", n(r.clients));
  add_row(s, "connected", n(r.connected));
  add_row(s, "connect failures", n(r.connect_failures));
  add_row(s, "join failures", n(r.join_failures));
  add_row(s, "presence incomplete", n(r.presence_incomplete));
  add_row(s, "sent", n(r.sent));
  add_row(s, "refused sends", n(r.refused_sends));
  for (const auto& [code, count] : r.refused)
    add_row(s, ("error frames: " + code).c_str(), n(count));
  add_row(s, "skipped ticks (send in flight)", n(r.skipped));
  add_row(s, "send failures", n(r.send_failures));
  add_row(s, "abandoned sends", n(r.abandoned));
  add_row(s, "expected deliveries", n(r.expected_deliveries));
  add_row(s, "delivered", n(r.delivered));
  add_row(s, "missing", n(r.missing));
  add_row(s, "duplicates", n(r.duplicates));
  add_row(s, "out of order", n(r.out_of_order));
  add_row(s, "unexpected (refused, yet delivered)", n(r.unexpected));
  add_row(s, "misrouted", n(r.misrouted));
  add_row(s, "foreign messages", n(r.foreign));
  add_row(s, "bad frames", n(r.bad_frames));
  add_row(s, "closes", n(r.closes));
  for (const auto& [code, count] : r.close_codes)
    add_row(s, ("closes with code " + std::to_string(code)).c_str(), n(count));
  add_row(s, "sending phase (s)", fixed(r.seconds, 2));
  add_row(
      s, "deliveries/s",
      r.seconds > 0 ? fixed(static_cast<double>(r.delivered) / r.seconds, 0) : std::string("-"));
  add_row(s, "latency samples", n(r.latency_samples));
  add_row(s, "latency p50 (us)", fixed(r.latency_p50_us, 1));
  add_row(s, "latency p99 (us)", fixed(r.latency_p99_us, 1));
  add_row(s, "latency max (us)", fixed(r.latency_max_us, 1));
  if (r.gateway_cpu_us_per_delivery >= 0) {
    add_row(s, "gateway CPU (s)", fixed(r.gateway_cpu_seconds, 2));
    add_row(s, "gateway deliveries", fixed(r.gateway_deliveries, 0));
    add_row(s, "gateway CPU per delivery (us)", fixed(r.gateway_cpu_us_per_delivery, 2));
  } else {
    add_row(s, "gateway CPU per delivery (us)", "not measured");
  }
  add_row(s, "result", r.ok() ? "ok" : "FAILED");
  return s;
}

}  // namespace redcoro::gateway_load
