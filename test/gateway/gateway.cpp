// The gateway (examples/gateway) as processes, against real servers: delivery across two
// gateways under load on a server and on a cluster, hostile clients, a slow client, a gateway
// SIGKILLed, and Redis killed, restarted and frozen under it.

#include "support/child_process.hpp"
#include "support/client_helpers.hpp"
#include "support/prometheus_server.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/error.hpp>
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <load.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <ws_client.hpp>

using namespace std::chrono_literals;
using redcoro::gateway_test::ws_client;
using beast_error_code = boost::beast::error_code;
using redcoro::test::child_process;
using redcoro::test::redis_server;
namespace asio = boost::asio;
namespace gl = redcoro::gateway_load;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One redcoro-gateway process on free ports, its output in a file; killed when it goes.
class gateway_process {
 public:
  gateway_process(const std::string& redis_url, const std::string& id,
                  std::vector<std::string> extra = {})
      : log_(std::string(REDCORO_TEST_TMP) + "/gateway-" + id + "-" + std::to_string(::getpid()) +
             ".log") {
    std::vector<std::string> args{REDCORO_GATEWAY_BIN,
                                  "--redis",
                                  redis_url,
                                  "--id",
                                  id,
                                  "--port",
                                  "0",
                                  "--metrics-port",
                                  "0",
                                  "--heartbeat-ms",
                                  "500",
                                  "--presence-ttl-ms",
                                  "1500",
                                  "--redis-timeout-ms",
                                  "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<child_process>(std::move(args), log_);
    REQUIRE(proc_->started());
    // It prints "listening on PORT metrics PORT" once both listeners are bound.
    for (int i = 0; i < 500 && port_ == 0; ++i) {
      const auto text = read_file(log_);
      if (const auto at = text.find("listening on "); at != std::string::npos) {
        unsigned p = 0, m = 0;
        if (std::sscanf(text.c_str() + at, "listening on %u metrics %u", &p, &m) == 2) {
          port_ = static_cast<std::uint16_t>(p);
          metrics_ = static_cast<std::uint16_t>(m);
        }
      }
      if (port_ == 0) std::this_thread::sleep_for(20ms);
    }
    INFO(log());
    REQUIRE(port_ != 0);
  }
  std::uint16_t port() const noexcept { return port_; }
  std::uint16_t metrics_port() const noexcept { return metrics_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(log_); }
  child_process& process() { return *proc_; }

 private:
  std::string log_;
  std::unique_ptr<child_process> proc_;
  std::uint16_t port_ = 0, metrics_ = 0;
};

std::string url_of(const redis_server& s) {
  return "redis://127.0.0.1:" + std::to_string(s.port());
}

// The next frame whose text contains `needle` (skipping others), within `bound`.
asio::awaitable<std::optional<std::string>> frame_with(ws_client& c, std::string_view needle,
                                                       std::chrono::milliseconds bound = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    auto f = co_await c.next(std::max(left, 1ms));
    if (!f) co_return std::nullopt;
    if (f->find(needle) != std::string::npos) co_return f;
  }
  co_return std::nullopt;
}

// A client connected as `user` and joined to `room` (its history read).
asio::awaitable<std::unique_ptr<ws_client>> member(const gateway_process& gw, std::string user,
                                                   std::string room) {
  auto c = std::make_unique<ws_client>(co_await asio::this_coro::executor);
  auto ec = co_await c->connect(gw.port(), "/ws?user=" + user, gw.origin());
  REQUIRE(!ec);
  auto welcome = co_await frame_with(*c, R"("type":"welcome")");
  REQUIRE(welcome);
  const std::string join = R"({"op":"join","room":")" + room + R"("})";
  auto join_failed = co_await c->send(join);
  REQUIRE(!join_failed);
  auto history = co_await frame_with(*c, R"("type":"history")");
  REQUIRE(history);
  co_return c;
}

// alice on gw1 and bob on gw2 in "lobby", once bob's presence list shows both.
asio::awaitable<std::pair<std::unique_ptr<ws_client>, std::unique_ptr<ws_client>>> alice_and_bob(
    const gateway_process& gw1, const gateway_process& gw2) {
  auto a = co_await member(gw1, "alice", "lobby");
  auto b = co_await member(gw2, "bob", "lobby");
  auto both_listed = co_await frame_with(*b, R"("members":["alice","bob"])");
  REQUIRE(both_listed);
  co_return std::make_pair(std::move(a), std::move(b));
}

asio::awaitable<void> say(ws_client& c, std::string room, std::string text) {
  const std::string f = R"({"op":"send","room":")" + room + R"(","text":")" + text + R"("})";
  auto ec = co_await c.send(f);
  CHECK(!ec);
}

// GET `target` on the metrics port, blocking (the gateway is another process): the status
// and the body; status 0 when there was no answer.
std::pair<unsigned, std::string> get(std::uint16_t port, const char* target) {
  namespace bhttp = boost::beast::http;
  asio::io_context ioc;
  boost::beast::tcp_stream stream(ioc);
  boost::beast::error_code ec;
  stream.expires_after(5s);
  stream.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return {0, {}};
  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(stream, req, ec);
  boost::beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res, ec);
  if (ec) return {0, {}};
  return {res.result_int(), res.body()};
}

std::string metrics_of(std::uint16_t port) {
  return get(port, "/metrics").second;
}

void run_test(std::function<asio::awaitable<void>()> body, std::chrono::seconds limit = 60s) {
  asio::io_context ioc;
  redcoro::test::run_bounded(ioc, std::move(body), limit);
}

}  // namespace

TEST_CASE("gateway: 2 gateways under load deliver every message to every member once and in order",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw1(url_of(redis), "gw1");
  gateway_process gw2(url_of(redis), "gw2");
  gl::options o;
  o.gateways = {gw1.port(), gw2.port()};
  o.metrics_ports = {gw1.metrics_port(), gw2.metrics_port()};
  // The issue's load: 1,000 clients in 50 rooms, one message a second each for 30 s. Under the
  // sanitizers (10x slower) a fifth of it.
  o.clients = sanitized ? 200 : 1000;
  o.rooms = sanitized ? 10 : 50;
  o.duration = sanitized ? 6s : 30s;
  const auto r = gl::run(o);
  const auto table = gl::to_table(r);
  INFO(table);
  INFO(gw1.log().substr(0, 4000));
  WARN(table);
  CHECK(r.connected == r.clients);
  CHECK(r.sent > 0);
  CHECK(r.refused_sends == 0);
  CHECK(r.expected_deliveries > 0);
  CHECK(r.delivered == r.expected_deliveries);
  CHECK(r.missing == 0);
  CHECK(r.duplicates == 0);
  CHECK(r.out_of_order == 0);
  CHECK(r.misrouted == 0);
  CHECK(r.closes == 0);
  CHECK(r.ok());
}

TEST_CASE("gateway: on a cluster messages cross gateways through shard channels",
          "[gateway][live][cluster]") {
  redcoro::test::redis_cluster cluster(3, 0);
  REQUIRE(cluster.wait_healthy());
  const auto url = "redis+cluster://127.0.0.1:" + std::to_string(cluster.ports().front());
  gateway_process gw1(url, "gw1");
  gateway_process gw2(url, "gw2");
  gl::options o;
  o.gateways = {gw1.port(), gw2.port()};
  o.metrics_ports = {gw1.metrics_port(), gw2.metrics_port()};
  o.clients = sanitized ? 60 : 200;
  o.rooms = 20;  // spread over the three primaries
  o.duration = 5s;
  const auto r = gl::run(o);
  const auto table = gl::to_table(r);
  INFO(table);
  WARN(table);
  CHECK(r.connected == r.clients);
  CHECK(r.expected_deliveries > 0);
  CHECK(r.missing == 0);
  CHECK(r.duplicates == 0);
  CHECK(r.out_of_order == 0);
  CHECK(r.ok());
}

TEST_CASE(
    "gateway: the primary of a room's slot killed: sends fail visibly, then the replica serves",
    "[gateway][live][cluster]") {
  redcoro::test::redis_cluster cluster(3, 1);
  REQUIRE(cluster.wait_healthy());
  const auto url = "redis+cluster://127.0.0.1:" + std::to_string(cluster.ports().front());
  gateway_process gw1(url, "gw1");
  gateway_process gw2(url, "gw2");
  const auto owner = cluster.owner_of(redcoro::proto::key_slot("{lobby}"));
  run_test(
      [&]() -> asio::awaitable<void> {
        auto a = co_await member(gw1, "alice", "lobby");
        auto b = co_await member(gw2, "bob", "lobby");
        co_await say(*a, "lobby", "before");
        auto before = co_await frame_with(*b, "before");
        REQUIRE(before);
        cluster.kill(owner);
        // Until the replica is promoted (3 to 5 s with cluster-node-timeout 2000) a send is
        // answered unavailable or waits; after it, within 30 s, a send reaches bob on the
        // other gateway: the shard subscription followed the slot to its new primary.
        int refused = 0;
        bool delivered = false;
        for (int i = 0; i < 60 && !delivered; ++i) {
          const auto text = "after-" + std::to_string(i);
          co_await say(*a, "lobby", text);
          auto f = co_await frame_with(*a, text + R"(")", 1000ms);
          if (!f) {
            ++refused;
            continue;
          }
          auto heard = co_await frame_with(*b, text + R"(")", 2000ms);
          delivered = heard.has_value();
        }
        CAPTURE(refused);
        CHECK(delivered);
        CHECK(!a->closed());
        CHECK(!b->closed());
      },
      120s);
  CHECK(gw1.process().wait(0ms) == -1);  // still running
  CHECK(gw2.process().wait(0ms) == -1);
}

TEST_CASE("gateway: hostile clients are refused or closed and the others are unaffected",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw(url_of(redis), "gw1", {"--frames-per-second", "20", "--flood-refusals", "30"});
  run_test([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto alice = co_await member(gw, "alice", "lobby");
    auto bob = co_await member(gw, "bob", "lobby");

    // Upgrades refused: a wrong Origin, no user, a bad user name.
    {
      ws_client c(ex);
      boost::beast::http::status st{};
      auto ec = co_await c.connect(gw.port(), "/ws?user=mallory", "http://evil.example", &st);
      CHECK(ec);
      CHECK(st == boost::beast::http::status::forbidden);
    }
    {
      ws_client c(ex);
      boost::beast::http::status st{};
      auto ec = co_await c.connect(gw.port(), "/ws?user=%3Cscript%3E", gw.origin(), &st);
      CHECK(ec);
      CHECK(st == boost::beast::http::status::bad_request);
      ws_client d(ex);
      ec = co_await d.connect(gw.port(), "/ws", gw.origin(), &st);
      CHECK(ec);
      CHECK(st == boost::beast::http::status::bad_request);
    }

    // Markup in a message is carried as text, escaped as JSON: the page shows it with
    // textContent (test/gateway/browser_test.py checks that in a real browser).
    co_await say(*alice, "lobby", R"(<script>alert(1)<\/script>)");
    auto seen = co_await frame_with(*bob, R"("type":"message")");
    REQUIRE(seen);
    CHECK(seen->find(R"("text":"<script>alert(1)</script>")") != std::string::npos);

    // Not JSON, unknown op, a room never joined, a bad room name, text too long: error
    // frames, the connection stays.
    {
      auto m = co_await member(gw, "mallory", "lobby");
      co_await m->send("{not json");
      auto not_json = co_await frame_with(*m, R"("code":"invalid")");
      CHECK(not_json);
      co_await m->send(R"({"op":"explode"})");
      auto unknown_op = co_await frame_with(*m, R"("code":"invalid")");
      CHECK(unknown_op);
      co_await m->send(R"({"op":"send","room":"elsewhere","text":"x"})");
      auto not_joined = co_await frame_with(*m, R"("code":"not_joined")");
      CHECK(not_joined);
      co_await m->send(R"({"op":"join","room":"a b"})");
      auto bad_room = co_await frame_with(*m, R"("code":"invalid")");
      CHECK(bad_room);
      const std::string long_text(1001, 'x');
      co_await say(*m, "lobby", long_text);
      auto too_long = co_await frame_with(*m, R"("code":"invalid")");
      CHECK(too_long);
      CHECK(!m->closed());
    }

    // Joins and leaves beyond 4 a second are refused (each costs Redis and every member).
    {
      auto m = co_await member(gw, "hopper", "lobby");
      for (int i = 0; i < 5; ++i) {
        co_await m->send(R"({"op":"leave","room":"lobby"})");
        co_await m->send(R"({"op":"join","room":"lobby"})");
      }
      auto limited = co_await frame_with(*m, R"("code":"rate_limited")");
      CHECK(limited);
    }
    // A user named like a word of the presence script is a member like any other: "-" used to
    // be read as "remove", which dropped the room's first member at every heartbeat.
    {
      auto dash = co_await member(gw, "-", "lobby");
      co_await redcoro::test::sleep_for(2000ms);  // more than presence_ttl: heartbeats ran
      const auto listed = redis.cli({"ZRANGE", "gw:{lobby}:members", "0", "-1"});
      CAPTURE(listed);
      CHECK(listed.find("alice") != std::string::npos);
      CHECK(listed.find("bob") != std::string::npos);
      CHECK(listed.find("-") != std::string::npos);
    }
    // A frame larger than max_frame (4 KiB): closed with 1009.
    {
      auto m = co_await member(gw, "big", "lobby");
      co_await m->send(std::string(8000, 'x'));
      auto more = co_await frame_with(*m, "never");
      CHECK(!more);
      CHECK(m->closed());
      CHECK(m->close_code() == 1009);
    }
    // A binary frame: closed with 1003.
    {
      auto m = co_await member(gw, "binary", "lobby");
      co_await m->send_binary("\x01\x02");
      auto more = co_await frame_with(*m, "never");
      CHECK(!more);
      CHECK(m->close_code() == 1003);
    }
    // A malformed frame (an unmasked client frame with reserved bits): that client only is
    // closed (1002, protocol error).
    {
      auto m = co_await member(gw, "broken", "lobby");
      co_await m->send_raw(std::string("\x71\x05hello", 7));
      auto more = co_await frame_with(*m, "never");
      CHECK(!more);
      CHECK(m->closed());
      CHECK(m->close_code() == 1002);
    }
    // A flood: frames beyond 20 a second are refused without asking Redis, and after 30
    // refusals the client is closed with 1008.
    {
      auto m = co_await member(gw, "flood", "lobby");
      int refused = 0;
      for (int i = 0; i < 200 && !m->closed(); ++i)
        co_await m->send(R"({"op":"rooms"})");
      for (;;) {
        auto f = co_await m->next(3000ms);
        if (!f) break;
        if (f->find(R"("code":"rate_limited")") != std::string::npos) ++refused;
      }
      CHECK(refused > 0);
      CHECK(m->closed());
      CHECK(m->close_code() == 1008);
    }

    // Through all of it, alice and bob still talk.
    co_await say(*bob, "lobby", "still here");
    auto heard = co_await frame_with(*alice, "still here");
    CHECK(heard);
    CHECK(!alice->closed());
    CHECK(!bob->closed());
  });
  INFO(gw.log());
  // Each refusal counted where an operator sees it.
  const auto text = metrics_of(gw.metrics_port());
  INFO(text);
  auto counter = [&](const std::string& name) -> long {
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::atol(text.c_str() + at + name.size() + 2);
  };
  CHECK(counter("gateway_upgrades_refused_origin_total") == 1);
  CHECK(counter("gateway_upgrades_refused_user_total") == 2);
  CHECK(counter("gateway_refused_invalid_total") == 5);  // 4 invalid, 1 not_joined
  CHECK(counter("gateway_protocol_closes_total") == 3);  // 1009, 1003, 1002
  CHECK(counter("gateway_flood_disconnects_total") == 1);
  CHECK(counter("gateway_refused_rate_limited_total") > 0);
}

TEST_CASE("gateway: /metrics passes promtool and /health follows Redis", "[gateway][live]") {
  redis_server redis;
  gateway_process gw(url_of(redis), "gw1");
  std::string text;
  run_test([&]() -> asio::awaitable<void> {
    auto a = co_await member(gw, "alice", "lobby");
    co_await say(*a, "lobby", "counted");
    auto echoed = co_await frame_with(*a, "counted");
    REQUIRE(echoed);
    text = metrics_of(gw.metrics_port());  // while alice is connected
  });
  INFO(text);
  CHECK(text.find("\ngateway_connections 1\n") != std::string::npos);
  CHECK(text.find("\ngateway_messages_sent_total 1\n") != std::string::npos);
  CHECK(text.find("\ngateway_messages_delivered_total 1\n") != std::string::npos);
  CHECK(text.find("redcoro_requests_completed_total{handle=\"redis\"") != std::string::npos);
  if (redcoro::test::prometheus_server::on_path("promtool")) {
    const std::string file =
        std::string(REDCORO_TEST_TMP) + "/gateway-metrics-" + std::to_string(::getpid()) + ".txt";
    std::ofstream(file) << text;
    const int status = std::system(("promtool check metrics < " + file + " >/dev/null").c_str());
    CHECK(status == 0);
  }
  CHECK(get(gw.metrics_port(), "/health").first == 200);
  redis.kill();
  unsigned health = 0;
  for (int i = 0; i < 100 && health != 503; ++i) {
    health = get(gw.metrics_port(), "/health").first;
    if (health != 503) std::this_thread::sleep_for(50ms);
  }
  CHECK(health == 503);
}

TEST_CASE("gateway: a client that stops reading is disconnected with 4000 and the room goes on",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw(
      url_of(redis), "gw1",
      {"--send-queue", "8", "--rate-limit", "100000", "--frames-per-second", "100000"});
  run_test([&]() -> asio::awaitable<void> {
    auto sender = co_await member(gw, "sender", "busy");
    // `slow` reads its welcome and the history, then nothing more (next() would keep reading
    // in the background, so it reads with read()).
    auto slow = std::make_unique<ws_client>(co_await asio::this_coro::executor);
    auto connect_failed = co_await slow->connect(gw.port(), "/ws?user=slow", gw.origin());
    REQUIRE(!connect_failed);
    std::string_view got;
    auto read_failed = co_await slow->read(got);
    REQUIRE(!read_failed);
    auto join_failed = co_await slow->send(R"({"op":"join","room":"busy"})");
    REQUIRE(!join_failed);
    do {
      auto next_failed = co_await slow->read(got);
      REQUIRE(!next_failed);
    } while (got.find(R"("type":"history")") == std::string_view::npos);
    // The sender sends 1 KB messages until the gateway gives up on `slow` (its socket buffers
    // fill, then its queue of 8). Bounded: at most 4,000 messages.
    const std::string text(1000, 'm');
    const std::string frame = R"({"op":"send","room":"busy","text":")" + text + R"("})";
    bool gone = false;
    int sent = 0;
    for (; sent < 4000 && !gone; ++sent) {
      co_await sender->send(frame);
      auto echo = co_await frame_with(*sender, R"("type":"message")", 5000ms);
      REQUIRE(echo);
      if (sent % 10 == 9)
        gone = metrics_of(gw.metrics_port()).find("gateway_slow_disconnects_total 1\n") !=
               std::string::npos;
    }
    CAPTURE(sent);
    CHECK(gone);
    // `slow` reads again: what was buffered, then the end. The close frame (4000) follows
    // the write that was blocked when the queue filled, if that write completes within 5 s;
    // otherwise the gateway drops the connection without one.
    beast_error_code ec;
    int frames = 0;
    while (!(ec = co_await slow->read(got)))
      ++frames;
    CAPTURE(frames, ec.message());
    CHECK(frames > 0);
    CHECK(slow->closed());
    CHECK(slow->close_code() == 4000);
    // The sender was not held back.
    co_await say(*sender, "busy", "after");
    auto after = co_await frame_with(*sender, "after");
    CHECK(after);
  });
}

TEST_CASE("gateway: a gateway killed with SIGKILL: its clients see the close, its members leave",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw1(url_of(redis), "gw1");
  gateway_process gw2(url_of(redis), "gw2");
  run_test([&]() -> asio::awaitable<void> {
    auto [a, b] = co_await alice_and_bob(gw1, gw2);
    gw1.process().signal(SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    // alice's connection ends (no close frame can come from a killed process).
    auto more = co_await frame_with(*a, "never", 3000ms);
    CHECK(!more);
    CHECK(a->closed());
    // bob sees alice leave when her heartbeat lapses: presence_ttl (1.5 s) plus one of
    // gw2's heartbeats (0.5 s); waited for at most 10 s.
    auto left = co_await frame_with(*b, R"("members":["bob"])", 10000ms);
    CHECK(left);
    const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - killed);
    WARN("bob saw alice leave " << after.count() << " ms after gw1 was killed (bound 2000 ms)");
    // gw2 and bob go on.
    co_await say(*b, "lobby", "alone");
    auto alone = co_await frame_with(*b, "alone");
    CHECK(alone);
  });
}

TEST_CASE("gateway: a gateway killed mid-load: the other's members lose nothing",
          "[gateway][live]") {
  redis_server redis;
  const std::vector<std::string> unlimited{"--rate-limit", "100000"};
  gateway_process gw1(url_of(redis), "gw1", unlimited);
  gateway_process gw2(url_of(redis), "gw2", unlimited);
  run_test([&]() -> asio::awaitable<void> {
    constexpr int n = 8, rounds = 40;
    std::vector<std::unique_ptr<ws_client>> as, bs;
    for (int i = 0; i < n; ++i) {
      auto a = co_await member(gw1, "a" + std::to_string(i), "lobby");
      as.push_back(std::move(a));
      auto b = co_await member(gw2, "b" + std::to_string(i), "lobby");
      bs.push_back(std::move(b));
    }
    // Everyone sends a message every 20 ms; gw1 is killed a quarter of the way through.
    for (int r = 0; r < rounds; ++r) {
      if (r == rounds / 4) gw1.process().signal(SIGKILL);
      for (int i = 0; i < n; ++i) {
        co_await say(*bs[i], "lobby", "b" + std::to_string(i) + "-" + std::to_string(r));
        // (gw1's members may find their connection gone at any of these.)
        const std::string frame = R"({"op":"send","room":"lobby","text":"a-x"})";
        if (!as[i]->closed()) co_await as[i]->send(frame);
      }
      co_await redcoro::test::sleep_for(20ms);
    }
    // Every member on gw2 got every message of every member on gw2, once and in order, and a
    // presence list without gw1's members (their heartbeats lapsed), within 10 s.
    for (int k = 0; k < n; ++k) {
      std::vector<int> next(n, 0);
      int duplicates_or_gaps = 0;
      bool only_survivors = false;
      const std::string survivors = R"("members":["b0","b1","b2","b3","b4","b5","b6","b7"])";
      const auto until = std::chrono::steady_clock::now() + 10s;
      auto complete = [&] {
        return only_survivors &&
               std::all_of(next.begin(), next.end(), [](int v) { return v == rounds; });
      };
      while (!complete() && std::chrono::steady_clock::now() < until) {
        auto f = co_await bs[k]->next(500ms);
        if (!f) continue;
        if (f->find(survivors) != std::string::npos) only_survivors = true;
        const auto at = f->find(R"("text":"b)");
        if (f->find(R"("type":"message")") == std::string::npos || at == std::string::npos)
          continue;
        int sender = -1, round = -1;
        if (std::sscanf(f->c_str() + at, R"("text":"b%d-%d")", &sender, &round) != 2) continue;
        if (sender < 0 || sender >= n || round != next[sender])
          ++duplicates_or_gaps;
        else
          ++next[sender];
      }
      CAPTURE(k);
      CHECK(duplicates_or_gaps == 0);
      CHECK(complete());
      CHECK(!bs[k]->closed());
    }
    for (const auto& a : as)
      CHECK(a->closed());
  });
}

TEST_CASE("gateway: Redis killed and restarted, then frozen: sends fail visibly, then work again",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw1(url_of(redis), "gw1");
  gateway_process gw2(url_of(redis), "gw2");
  run_test(
      [&]() -> asio::awaitable<void> {
        auto a = co_await member(gw1, "alice", "lobby");
        auto b = co_await member(gw2, "bob", "lobby");
        // Each outage: while it lasts alice's send is refused with "unavailable" (the gateway
        // waits at most --redis-timeout-ms, 1 s); once Redis is back, within 20 s, a send
        // reaches bob on the other gateway: the subscriptions came back by themselves.
        auto outage = [&](std::function<void()> down, std::function<void()> up,
                          std::string tag) -> asio::awaitable<void> {
          down();
          co_await say(*a, "lobby", "during-" + tag);
          auto refused = co_await frame_with(*a, R"("code":"unavailable")", 10000ms);
          CHECK(refused);
          up();
          bool delivered = false;
          for (int i = 0; i < 40 && !delivered; ++i) {
            const auto text = "after-" + tag + "-" + std::to_string(i);
            co_await say(*a, "lobby", text);
            delivered = (co_await frame_with(*b, text, 500ms)).has_value();
          }
          CHECK(delivered);
          CHECK(!a->closed());
          CHECK(!b->closed());
        };
        co_await outage([&] { redis.kill(); }, [&] { redis.restart(); }, "kill");
        co_await outage([&] { redis.pause(); }, [&] { redis.resume(); }, "freeze");
      },
      90s);
  INFO(gw1.log());
  CHECK(gw1.process().wait(0ms) == -1);  // still running
  CHECK(gw2.process().wait(0ms) == -1);
}

TEST_CASE("gateway: a subscriber connection killed: members get the room's history again",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw(url_of(redis), "gw1");
  run_test([&]() -> asio::awaitable<void> {
    auto a = co_await member(gw, "alice", "lobby");
    auto b = co_await member(gw, "bob", "lobby");
    co_await say(*b, "lobby", "before");
    auto before = co_await frame_with(*a, "before");
    REQUIRE(before);
    // What is published while the gateway's subscription is away does not reach it; once it
    // is back, each member gets the history (which holds it) again.
    redis.cli({"CLIENT", "KILL", "TYPE", "pubsub"});
    auto again = co_await frame_with(*a, R"("type":"history")", 10000ms);
    REQUIRE(again);
    CHECK(again->find("before") != std::string::npos);
    CHECK(metrics_of(gw.metrics_port()).find("\ngateway_resubscribed_total 1\n") !=
          std::string::npos);
    co_await say(*b, "lobby", "after");
    auto after = co_await frame_with(*a, "after");
    CHECK(after);
  });
}

TEST_CASE("gateway: SIGTERM closes clients with 1001 and removes their presence",
          "[gateway][live]") {
  redis_server redis;
  gateway_process gw1(url_of(redis), "gw1");
  gateway_process gw2(url_of(redis), "gw2");
  run_test([&]() -> asio::awaitable<void> {
    auto [a, b] = co_await alice_and_bob(gw1, gw2);
    gw1.process().signal(SIGTERM);
    auto more = co_await frame_with(*a, "never", 5000ms);
    CHECK(!more);
    CHECK(a->close_code() == 1001);
    // Removed at once, not after the TTL: the presence change is published.
    auto bob_alone = co_await frame_with(*b, R"("members":["bob"])", 5000ms);
    CHECK(bob_alone);
  });
  const int status = gw1.process().wait(10000ms);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
