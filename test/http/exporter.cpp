// The exporter over real HTTP against real redis-servers: /metrics checked by promtool and
// scraped by a real Prometheus, /health following a paused server, and requests that are
// malformed, oversized, slow or unwanted answered with their 4xx (or closed) while the
// exporter keeps serving.
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/prometheus_server.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/cache/cache.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/connect/tracking_cache.hpp>
#include <redcoro/http/exporter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct http_reply {
  int status = 0;  // 0: no response (the error says why)
  std::string body;
  std::string content_type;
  beast::error_code error;
};

// One request over a fresh connection, bounded by 10 s.
asio::awaitable<http_reply> http_request(std::uint16_t port, std::string target,
                                         bhttp::verb method = bhttp::verb::get) {
  http_reply reply;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(10s);
  const tcp::endpoint to(asio::ip::address_v4::loopback(), port);
  auto [cec] = co_await stream.async_connect(to, use_tuple);
  if (cec) {
    reply.error = cec;
    co_return reply;
  }
  bhttp::request<bhttp::empty_body> req(method, target, 11);
  req.set(bhttp::field::host, "127.0.0.1");
  req.keep_alive(false);
  auto [wec, wn] = co_await bhttp::async_write(stream, req, use_tuple);
  if (wec) {
    reply.error = wec;
    co_return reply;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (rec) {
    reply.error = rec;
    co_return reply;
  }
  reply.status = static_cast<int>(parser.get().result_int());
  reply.body = parser.get().body();
  reply.content_type = std::string(parser.get()[bhttp::field::content_type]);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  co_return reply;
}

struct raw_reply {
  std::string data;       // everything the exporter sent
  beast::error_code end;  // how the reading ended: eof (closed by the exporter) or timeout
};

// Sends `bytes` as they are and reads until the exporter closes the connection (at most 10 s).
asio::awaitable<raw_reply> raw_exchange(std::uint16_t port, std::string bytes) {
  raw_reply reply;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(10s);
  const tcp::endpoint to(asio::ip::address_v4::loopback(), port);
  auto [cec] = co_await stream.async_connect(to, use_tuple);
  if (cec) {
    reply.end = cec;
    co_return reply;
  }
  if (!bytes.empty()) {
    auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(bytes), use_tuple);
    if (wec) {
      reply.end = wec;
      co_return reply;
    }
  }
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), use_tuple);
    reply.data.append(buf.data(), n);
    if (ec) {
      reply.end = ec;
      break;
    }
  }
  co_return reply;
}

bool closed_by_peer(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

// promtool's verdict on a /metrics body: its exit code and what it printed.
std::pair<int, std::string> promtool_check(const std::string& body) {
  char path[] = "/tmp/redcoro-metrics-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << body;
  }
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  std::string output;
  int status = -1;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf;
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p))
      output.append(buf.data(), n);
    status = ::pclose(p);
  }
  std::remove(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// Runs `body` with a handle made from `cfg` and an exporter serving it (as "main"), at most
// `limit`; closes both afterwards, also when the body failed.
void with_exporter(handle_config cfg, http::exporter_options options,
                   const std::function<asio::awaitable<void>(handle&, http::exporter&)>& body,
                   std::chrono::seconds limit = 90s) {
  asio::io_context ioc;
  handle h(ioc, std::move(cfg));
  http::exporter web(ioc.get_executor(), options);
  web.add("main", h);
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::exception_ptr failure;
        try {
          auto ready = co_await h.async_wait_ready(10s, asio::use_awaitable);
          REQUIRE(ready);
          co_await body(h, web);
        } catch (...) {
          failure = std::current_exception();
        }
        web.close();
        h.close();
        if (failure) std::rethrow_exception(failure);
      },
      limit);
}

// Some traffic, so that the metrics have commands, an error reply and a cache to show.
asio::awaitable<void> traffic(handle& h, cache::cache& c) {
  for (int i = 0; i < 20; ++i) {
    auto set = co_await h.async_exec(cmd::set("http:k", std::to_string(i)), asio::use_awaitable);
    CHECK(set.has_value());
    auto get = co_await h.async_exec(cmd::get("http:k"), asio::use_awaitable);
    CHECK(get.has_value());
  }
  co_await h.async_exec(cmd::set("http:text", "not a number"), asio::use_awaitable);
  auto bad = co_await h.async_exec(cmd::incr("http:text"), asio::use_awaitable);
  CHECK(!bad.has_value());  // ERR value is not an integer: an error reply, counted by code
  auto miss = co_await c.get<std::string>("absent");
  CHECK(miss.has_value());
}

// GET /metrics, which must answer 200.
asio::awaitable<std::string> scrape(std::uint16_t port) {
  auto reply = co_await http_request(port, "/metrics");
  INFO(reply.error.message());
  REQUIRE(reply.status == 200);
  co_return reply.body;
}

// Whether the text format `body` holds `line` as a whole line.
bool has_sample(const std::string& body, const std::string& line) {
  return body.find("\n" + line + "\n") != std::string::npos;
}

// promtool check metrics on `body`, when promtool is installed.
void check_with_promtool(const std::string& body) {
  if (!prometheus_server::on_path("promtool")) return;
  const auto [code, problems] = promtool_check(body);
  INFO("promtool: " << problems);
  CHECK(code == 0);
}

}  // namespace

TEST_CASE("GET /metrics over HTTP passes promtool check metrics", "[http][live]") {
  redis_server server;
  with_exporter(
      local_config(server.port()), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        cache::cache c(h, {.prefix = "http:", .record_latency = true});
        web.add("sessions", c);
        co_await traffic(h, c);
        const auto port = web.local_endpoint().port();
        auto reply = co_await http_request(port, "/metrics");
        INFO(reply.error.message());
        REQUIRE(reply.status == 200);
        CHECK(reply.content_type == "text/plain; version=0.0.4; charset=utf-8");
        CHECK(reply.body.find("redcoro_requests_total{handle=\"main\"") != std::string::npos);
        CHECK(reply.body.find("redcoro_cache_misses_total{cache=\"sessions\"} 1") !=
              std::string::npos);

        if (!prometheus_server::on_path("promtool")) {
          WARN(
              "promtool not found (Debian package prometheus; scripts/install-deps.sh installs "
              "it): the format check is skipped");
          co_return;
        }
        const auto [code, problems] = promtool_check(reply.body);
        INFO(reply.body);
        INFO("promtool: " << problems);
        CHECK(code == 0);
        CHECK(problems.empty());
      });
}

TEST_CASE("a real Prometheus scrapes the exporter and answers a query", "[http][live]") {
  if (!prometheus_server::on_path("prometheus")) {
    WARN(
        "prometheus not found (Debian package prometheus; scripts/install-deps.sh installs "
        "it): skipped");
    return;
  }
  redis_server server;
  with_exporter(
      local_config(server.port()), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        for (int i = 0; i < 5; ++i)
          co_await h.async_exec(cmd::set("http:p", "1"), asio::use_awaitable);
        const auto target = "127.0.0.1:" + std::to_string(web.local_endpoint().port());
        prometheus_server prom({target});
        // Scraped every second; the sample shows after the first scrape. Bounded: 60 tries
        // half a second apart.
        bool found = false;
        std::string last;
        for (int i = 0; i < 60 && !found; ++i) {
          auto reply =
              co_await http_request(prom.port(), "/api/v1/query?query=redcoro_requests_total");
          last = reply.body;
          found = reply.status == 200 &&
                  reply.body.find("\"status\":\"success\"") != std::string::npos &&
                  reply.body.find("\"handle\":\"main\"") != std::string::npos;
          if (!found) co_await sleep_for(500ms);
        }
        INFO("last answer: " << last);
        INFO("prometheus log: " << prom.log_tail());
        CHECK(found);
        // The scrape itself succeeded: Prometheus' own up metric for the target is 1.
        auto up = co_await http_request(prom.port(), "/api/v1/query?query=up");
        CHECK(up.body.find("\"value\":[") != std::string::npos);
        CHECK(up.body.find(",\"1\"]") != std::string::npos);
      },
      120s);
}

TEST_CASE("GET /health turns 503 while the server is paused and 200 after", "[http][live]") {
  redis_server server;
  http::exporter_options options;
  options.health_timeout = 500ms;
  with_exporter(local_config(server.port()), options,
                [&](handle&, http::exporter& web) -> asio::awaitable<void> {
                  const auto port = web.local_endpoint().port();
                  // Bounded waits: each /health answers within about health_timeout.
                  const auto wait_for = [&](int status) -> asio::awaitable<http_reply> {
                    http_reply r;
                    for (int i = 0; i < 40; ++i) {
                      r = co_await http_request(port, "/health");
                      if (r.status == status) break;
                      co_await sleep_for(250ms);
                    }
                    co_return r;
                  };
                  auto up = co_await wait_for(200);
                  REQUIRE(up.status == 200);
                  CHECK(up.content_type == "application/json");
                  CHECK(up.body.starts_with(R"({"healthy":true,"handles":[{"name":"main")"));
                  CHECK(up.body.find(R"("round_trip_us":)") != std::string::npos);

                  server.pause();
                  auto down = co_await wait_for(503);
                  server.resume();
                  INFO(down.body);
                  REQUIRE(down.status == 503);
                  CHECK(down.body.starts_with(R"({"healthy":false,)"));
                  CHECK(down.body.find(R"("name":"main")") != std::string::npos);

                  auto again = co_await wait_for(200);
                  INFO(again.body);
                  CHECK(again.status == 200);
                });
}

TEST_CASE("bad requests get their 4xx and the exporter keeps serving", "[http][live]") {
  redis_server server;
  http::exporter_options options;
  options.read_timeout = 500ms;
  with_exporter(
      local_config(server.port()), options,
      [&](handle&, http::exporter& web) -> asio::awaitable<void> {
        const auto port = web.local_endpoint().port();
        const auto still_serving = [&]() -> asio::awaitable<void> {
          auto ok = co_await http_request(port, "/metrics");
          CHECK(ok.status == 200);
        };
        struct expectation {
          std::string what;
          std::string request;
          std::string status_line;
        };
        std::vector<expectation> cases;
        cases.push_back({"malformed request line", "NOT AN HTTP REQUEST\r\n\r\n", "HTTP/1.1 400"});
        cases.push_back({"malformed header field", "GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n",
                         "HTTP/1.1 400"});
        cases.push_back(
            {"oversized header",
             "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n",
             "HTTP/1.1 431"});
        cases.push_back({"oversized body",
                         "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                             std::string(1000, 'b'),
                         "HTTP/1.1 413"});
        cases.push_back({"unknown path",
                         "GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         "HTTP/1.1 404"});
        cases.push_back({"wrong method",
                         "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: "
                         "close\r\n\r\n",
                         "HTTP/1.1 405"});
        cases.push_back({"wrong method on /health",
                         "DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         "HTTP/1.1 405"});
        {
          // HEAD is answered as GET is, without the body.
          const std::string head = "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
          auto exchange = raw_exchange(port, head);
          auto reply = co_await std::move(exchange);
          INFO(reply.data);
          CHECK(reply.data.starts_with("HTTP/1.1 200"));
          CHECK(reply.data.find("Content-Length: 0\r\n") == std::string::npos);
          CHECK(reply.data.find("Content-Length: ") != std::string::npos);
          CHECK(reply.data.ends_with("\r\n\r\n"));  // the headers only
        }
        for (const auto& c : cases) {
          INFO(c.what);
          auto reply = co_await raw_exchange(port, c.request);
          INFO(reply.data);
          CHECK(reply.data.starts_with(c.status_line));
          CHECK(closed_by_peer(reply.end));
          co_await still_serving();
        }

        // Half a request, then nothing: closed after read_timeout, without an answer.
        auto stalled = co_await raw_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
        CHECK(stalled.data.empty());
        INFO(stalled.end.message());
        CHECK(closed_by_peer(stalled.end));
        co_await still_serving();

        // Nothing at all: also closed after read_timeout.
        auto silent = co_await raw_exchange(port, "");
        CHECK(silent.data.empty());
        CHECK(closed_by_peer(silent.end));
        co_await still_serving();
      });
}

TEST_CASE("connections beyond max_connections are closed and keep-alive works", "[http][live]") {
  redis_server server;
  http::exporter_options options;
  options.max_connections = 2;
  with_exporter(local_config(server.port()), options,
                [&](handle&, http::exporter& web) -> asio::awaitable<void> {
                  const auto port = web.local_endpoint().port();
                  const tcp::endpoint to(asio::ip::address_v4::loopback(), port);
                  auto ex = co_await asio::this_coro::executor;
                  // Two keep-alive connections, each answered twice: both sessions are up.
                  std::vector<std::unique_ptr<beast::tcp_stream>> held;
                  for (int i = 0; i < 2; ++i) {
                    auto s = std::make_unique<beast::tcp_stream>(ex);
                    s->expires_after(10s);
                    co_await s->async_connect(to, asio::use_awaitable);
                    beast::flat_buffer buffer;
                    for (int round = 0; round < 2; ++round) {
                      bhttp::request<bhttp::empty_body> req(bhttp::verb::get, "/health", 11);
                      req.set(bhttp::field::host, "127.0.0.1");
                      co_await bhttp::async_write(*s, req, asio::use_awaitable);
                      bhttp::response<bhttp::string_body> res;
                      co_await bhttp::async_read(*s, buffer, res, asio::use_awaitable);
                      CHECK(res.result_int() == 200);
                      CHECK(res.keep_alive());
                    }
                    held.push_back(std::move(s));
                  }
                  // A third is closed without an answer.
                  auto third =
                      co_await raw_exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
                  CHECK(third.data.empty());
                  CHECK(closed_by_peer(third.end));

                  // One goes: a new connection is served again (once the exporter has seen it go).
                  held.front()->close();
                  held.erase(held.begin());
                  int status = 0;
                  for (int i = 0; i < 40 && status != 200; ++i) {
                    auto r = co_await http_request(port, "/metrics");
                    status = r.status;
                    if (status != 200) co_await sleep_for(100ms);
                  }
                  CHECK(status == 200);
                  held.clear();
                });
}

TEST_CASE("after close() the exporter accepts nothing", "[http][live]") {
  redis_server server;
  with_exporter(local_config(server.port()), {},
                [&](handle&, http::exporter& web) -> asio::awaitable<void> {
                  const auto port = web.local_endpoint().port();
                  auto before = co_await http_request(port, "/metrics");
                  CHECK(before.status == 200);
                  web.close();
                  // close() takes effect on the exporter's strand: bounded wait for the refusal.
                  http_reply after;
                  for (int i = 0; i < 50; ++i) {
                    after = co_await http_request(port, "/metrics");
                    if (after.error == asio::error::connection_refused) break;
                    co_await sleep_for(50ms);
                  }
                  CHECK(after.status == 0);
                  CHECK(after.error == asio::error::connection_refused);
                });
}

TEST_CASE("sources can be removed and replaced by name", "[http][live]") {
  redis_server server;
  with_exporter(
      local_config(server.port()), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        const auto port = web.local_endpoint().port();
        web.add("second", h);
        auto both = co_await http_request(port, "/metrics");
        CHECK(both.body.find("redcoro_handle_info{handle=\"second\",") != std::string::npos);
        web.remove("second");
        auto one = co_await http_request(port, "/metrics");
        CHECK(one.body.find("handle=\"second\"") == std::string::npos);
        CHECK(one.body.find("redcoro_handle_info{handle=\"main\",") != std::string::npos);
        auto health = co_await http_request(port, "/health");
        CHECK(health.body.find("\"name\":\"second\"") == std::string::npos);
      });
}

TEST_CASE("a client-side cache's figures are served through SIGKILL and after it is gone",
          "[http][live]") {
  redis_server server;
  with_exporter(
      local_config(server.port()), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        const auto port = web.local_endpoint().port();
        std::optional<handle_tracking_cache> flags(std::in_place, h);
        web.add("flags", *flags);
        const bool tracking = co_await eventually([&] { return flags->available(); }, 5s);
        REQUIRE(tracking);
        co_await h.async_exec(cmd::set("http:flag", "on"), asio::use_awaitable);
        for (int i = 0; i < 3; ++i) {
          auto r = co_await flags->async_exec(cmd::get("http:flag"), asio::use_awaitable);
          CHECK(r.has_value());
        }
        // One miss, then two reads answered from memory.
        const auto up = co_await scrape(port);
        INFO(up);
        CHECK(has_sample(up, R"(redcoro_client_cache_misses_total{client_cache="flags"} 1)"));
        CHECK(has_sample(up, R"(redcoro_client_cache_hits_total{client_cache="flags"} 2)"));
        CHECK(has_sample(up, R"(redcoro_client_cache_entries{client_cache="flags"} 1)"));
        CHECK(has_sample(up, R"(redcoro_client_cache_available{client_cache="flags"} 1)"));
        check_with_promtool(up);

        // The server killed: the session ends, what the cache held cannot be trusted any more,
        // and the scrape says so (the exporter itself keeps serving).
        server.kill();
        const bool dropped = co_await eventually([&] { return !flags->available(); }, 5s);
        CHECK(dropped);
        const auto down = co_await scrape(port);
        INFO(down);
        CHECK(has_sample(down, R"(redcoro_client_cache_available{client_cache="flags"} 0)"));
        CHECK(has_sample(down, R"(redcoro_client_cache_entries{client_cache="flags"} 0)"));
        CHECK(down.find(R"(redcoro_client_cache_flushes_total{client_cache="flags"} 0)") ==
              std::string::npos);

        server.restart();
        const bool again = co_await eventually([&] { return flags->available(); }, 10s);
        CHECK(again);
        const auto back = co_await scrape(port);
        CHECK(has_sample(back, R"(redcoro_client_cache_available{client_cache="flags"} 1)"));

        // Destroyed before remove(): the exporter shares the counters, so the scrape still
        // works and shows the last figures; remove() then takes the series away.
        const auto hits = flags->stats().hits;
        flags.reset();
        const auto after = co_await scrape(port);
        CHECK(has_sample(after, R"(redcoro_client_cache_hits_total{client_cache="flags"} )" +
                                    std::to_string(hits)));
        CHECK(after.find("redcoro_requests_total{handle=\"main\"") != std::string::npos);
        web.remove("flags");
        const auto gone = co_await scrape(port);
        CHECK(gone.find("client_cache=\"flags\"") == std::string::npos);
      },
      120s);
}

TEST_CASE("a subscriber's drops are served through SIGKILL and after it is gone", "[http][live]") {
  redis_server server;
  with_exporter(
      local_config(server.port()), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        const auto port = web.local_endpoint().port();
        // A slow consumer: room for 10, the oldest dropped beyond.
        std::optional<handle_subscriber> feed(
            std::in_place, h,
            subscriber_config{.capacity = 10, .overflow = overflow_policy::drop_oldest});
        web.add("feed", *feed);
        const std::vector<std::string> channels{"http:feed"};
        co_await feed->async_subscribe(channels, asio::use_awaitable);
        auto confirmed = co_await feed->async_receive(asio::use_awaitable);
        CHECK(confirmed.what == proto::pubsub_kind::subscribe);
        for (int i = 0; i < 100; ++i)
          co_await h.async_exec(cmd::publish("http:feed", std::to_string(i)), asio::use_awaitable);
        const bool all = co_await eventually(
            [&] { return feed->message_stats().dropped + feed->message_stats().buffered == 100; },
            5s);
        REQUIRE(all);
        const auto full = co_await scrape(port);
        INFO(full);
        CHECK(has_sample(full, R"(redcoro_subscriber_messages_total{subscriber="feed"} 100)"));
        CHECK(
            has_sample(full, R"(redcoro_subscriber_dropped_messages_total{subscriber="feed"} 90)"));
        CHECK(has_sample(full, R"(redcoro_subscriber_buffered_messages{subscriber="feed"} 10)"));
        CHECK(has_sample(full,
                         R"(redcoro_subscriber_overflow_disconnects_total{subscriber="feed"} 0)"));
        check_with_promtool(full);

        // The server killed and back: the subscriber subscribes again by itself; what it
        // counted stays, and what arrives after counts on.
        server.kill();
        server.restart();
        for (int i = 0; i < 10; ++i)  // the ten buffered before the kill
          co_await feed->async_receive(asio::use_awaitable);
        auto again = co_await feed->async_receive(asio::use_awaitable);
        CHECK(again.resubscribed);
        const bool ready = co_await h.async_wait_ready(10s, asio::use_awaitable);
        REQUIRE(ready);
        for (int i = 0; i < 5; ++i)
          co_await h.async_exec(cmd::publish("http:feed", "after"), asio::use_awaitable);
        for (int i = 0; i < 5; ++i) {
          auto m = co_await feed->async_receive(asio::use_awaitable);
          CHECK(m.payload == "after");
        }
        const auto back = co_await scrape(port);
        INFO(back);
        CHECK(has_sample(back, R"(redcoro_subscriber_messages_total{subscriber="feed"} 105)"));
        CHECK(has_sample(back, R"(redcoro_subscriber_buffered_messages{subscriber="feed"} 0)"));

        // Destroyed before remove(): the last figures stay; remove() takes them away.
        feed.reset();
        const auto after = co_await scrape(port);
        CHECK(has_sample(after, R"(redcoro_subscriber_messages_total{subscriber="feed"} 105)"));
        web.remove("feed");
        const auto gone = co_await scrape(port);
        CHECK(gone.find("subscriber=\"feed\"") == std::string::npos);
      },
      120s);
}

TEST_CASE("a cluster's metrics pass promtool and its health lists the nodes", "[http][live]") {
  redis_cluster cluster(3, 0);
  with_exporter(
      config_for(cluster), {},
      [&](handle& h, http::exporter& web) -> asio::awaitable<void> {
        // Keys on every primary, so that every node has commands to show.
        for (int i = 0; i < 30; ++i)
          co_await h.async_exec(cmd::set("http:c" + std::to_string(i), "1"), asio::use_awaitable);
        const auto port = web.local_endpoint().port();
        auto metrics = co_await http_request(port, "/metrics");
        REQUIRE(metrics.status == 200);
        CHECK(metrics.body.find(R"(redcoro_handle_info{handle="main",kind="cluster"} 1)") !=
              std::string::npos);
        CHECK(metrics.body.find(R"(redcoro_cluster_slots_covered{handle="main"} 16384)") !=
              std::string::npos);
        for (auto p : cluster.ports()) {
          INFO("node " << p);
          CHECK(metrics.body.find("redcoro_requests_total{handle=\"main\",node=\"127.0.0.1:" +
                                  std::to_string(p) + "\"") != std::string::npos);
        }
        if (prometheus_server::on_path("promtool")) {
          const auto [code, problems] = promtool_check(metrics.body);
          INFO(metrics.body);
          INFO("promtool: " << problems);
          CHECK(code == 0);
          CHECK(problems.empty());
        } else {
          WARN("promtool not found: the format check is skipped");
        }

        auto health = co_await http_request(port, "/health");
        INFO(health.body);
        CHECK(health.status == 200);
        CHECK(health.body.find(R"("kind":"cluster","healthy":true)") != std::string::npos);
        CHECK(health.body.find(R"("cluster_state":"ok","all_slots_covered":true,"nodes":[)") !=
              std::string::npos);
      },
      120s);
}
