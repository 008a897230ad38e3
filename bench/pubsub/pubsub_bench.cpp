// Publish-to-receive: one publisher thread sends timestamped messages to a channel as fast as
// the server takes them; on another thread, 1 or 100 subscribers receive them, through
// redcoro::subscriber or through hiredis (one poll() loop over its connections). Reported per
// contender, medians over the rounds: messages received per second (all subscribers
// together), the subscriber thread's CPU per message (getrusage RUSAGE_THREAD), and the
// publish-to-receive latency p50/p99 (the publisher's steady_clock time is in the payload).
//
//   bench_pubsub [--rounds=N] [--messages=M]

#include "support/redis_server.hpp"
#include "support/report.hpp"
#include "tool/histogram.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis.h>
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using redcoro::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
          .count());
}

double thread_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The payload: the send time, padded to 32 bytes.
std::string payload_at(std::uint64_t t) {
  std::string p = std::to_string(t);
  p.resize(32, '.');
  return p;
}
std::uint64_t sent_at(std::string_view payload) {
  std::uint64_t t = 0;
  std::from_chars(payload.data(), payload.data() + payload.size(), t);
  return t;
}

struct sample {
  double messages_per_second;
  double cpu_us_per_message;
  std::uint64_t p50_ns, p99_ns;
};

// Publishes `messages` messages on "bench" with 64 PUBLISHes per request, 4 requests in
// flight. Runs on a thread of its own, started once every subscriber is subscribed.
void publish(std::uint16_t port, std::uint64_t messages) {
  asio::io_context ioc(1);
  redcoro::connection_config cfg;
  cfg.port = port;
  redcoro::connection conn(ioc, cfg);
  conn.async_run(asio::detached);
  const std::uint64_t per_request = 64;
  std::atomic<std::uint64_t> sent{0};
  int workers = 4;
  auto worker = [&]() -> asio::awaitable<void> {
    redcoro::proto::request req;
    redcoro::proto::ignore_t none;
    for (;;) {
      const std::uint64_t start = sent.fetch_add(per_request);
      if (start >= messages) break;
      req.clear();
      const std::uint64_t n = std::min(per_request, messages - start);
      for (std::uint64_t i = 0; i < n; ++i)
        req.push("PUBLISH", "bench", payload_at(now_ns()));
      co_await conn.async_exec(req, none, asio::use_awaitable);
    }
    if (--workers == 0) conn.close();
  };
  for (int i = 0; i < 4; ++i)
    asio::co_spawn(ioc, worker(), asio::detached);
  ioc.run();
}

// redcoro: `subscribers` subscriber objects on one io_context (this thread).
sample run_redcoro(std::uint16_t port, int subscribers, std::uint64_t messages) {
  asio::io_context ioc(1);
  redcoro::connection_config cfg;
  cfg.port = port;
  std::vector<std::unique_ptr<redcoro::subscriber>> subs;
  for (int i = 0; i < subscribers; ++i) {
    subs.push_back(std::make_unique<redcoro::subscriber>(ioc, cfg));
    subs.back()->async_run(asio::detached);
  }
  redcoro::bench::histogram latency;
  std::uint64_t received = 0;
  const std::uint64_t expected = messages * static_cast<std::uint64_t>(subscribers);
  int ready = 0;
  std::thread publisher;
  double cpu0 = 0, cpu1 = 0;
  clock_type::time_point t0, t1;
  auto reader = [&](redcoro::subscriber& sub) -> asio::awaitable<void> {
    const std::vector<std::string> channels{"bench"};
    co_await sub.async_subscribe(channels, asio::use_awaitable);
    if (++ready == subscribers) {
      cpu0 = thread_cpu_seconds();
      t0 = clock_type::now();
      publisher = std::thread([&] { publish(port, messages); });
    }
    auto take = [&](const redcoro::pubsub_message& m) {
      if (!m.is_message()) return;
      latency.record(now_ns() - sent_at(m.payload));
      if (++received == expected) {
        // Measured up to the last message, as for hiredis: closing is not part of it.
        t1 = clock_type::now();
        cpu1 = thread_cpu_seconds();
        for (auto& s : subs)
          s->close();
      }
    };
    while (received < expected) {
      // One completion, then whatever else is buffered, as a high-rate consumer would.
      error_code ec;
      auto m = co_await sub.async_receive(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      take(m);
      while (auto more = sub.try_receive())
        take(*more);
    }
  };
  for (auto& s : subs)
    asio::co_spawn(ioc, reader(*s), asio::detached);
  ioc.run();
  if (received < expected) {  // (a subscriber failed: time to here)
    t1 = clock_type::now();
    cpu1 = thread_cpu_seconds();
  }
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  const double cpu = cpu1 - cpu0;
  if (publisher.joinable()) publisher.join();
  return {static_cast<double>(received) / seconds, cpu * 1e6 / static_cast<double>(received),
          latency.percentile(50), latency.percentile(99)};
}

// hiredis: `subscribers` connections, SUBSCRIBEd, read with one poll() loop on this thread.
sample run_hiredis(std::uint16_t port, int subscribers, std::uint64_t messages) {
  std::vector<redisContext*> ctxs;
  for (int i = 0; i < subscribers; ++i) {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
      std::fprintf(stderr, "hiredis: cannot connect\n");
      std::exit(1);
    }
    void* reply = redisCommand(c, "SUBSCRIBE bench");
    freeReplyObject(reply);
    ctxs.push_back(c);
  }
  redcoro::bench::histogram latency;
  const double cpu0 = thread_cpu_seconds();
  const auto t0 = clock_type::now();
  std::thread publisher([&] { publish(port, messages); });
  const std::uint64_t expected = messages * static_cast<std::uint64_t>(subscribers);
  std::uint64_t received = 0;
  std::vector<pollfd> fds;
  for (auto* c : ctxs)
    fds.push_back({c->fd, POLLIN, 0});
  while (received < expected) {
    if (::poll(fds.data(), fds.size(), 5000) <= 0) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      if (redisBufferRead(ctxs[i]) != REDIS_OK) {
        std::fprintf(stderr, "hiredis: read failed\n");
        std::exit(1);
      }
      void* raw = nullptr;
      while (redisGetReplyFromReader(ctxs[i], &raw) == REDIS_OK && raw) {
        auto* r = static_cast<redisReply*>(raw);
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
          latency.record(now_ns() -
                         sent_at(std::string_view(r->element[2]->str, r->element[2]->len)));
          ++received;
        }
        freeReplyObject(r);
        raw = nullptr;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double cpu = thread_cpu_seconds() - cpu0;
  publisher.join();
  for (auto* c : ctxs)
    redisFree(c);
  return {static_cast<double>(received) / seconds, cpu * 1e6 / static_cast<double>(received),
          latency.percentile(50), latency.percentile(99)};
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  std::uint64_t messages = 200000;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rounds=", 9) == 0) {
      rounds = std::max(1, std::atoi(argv[i] + 9));
    } else if (std::strncmp(argv[i], "--messages=", 11) == 0) {
      messages = std::max<std::uint64_t>(1000, std::strtoull(argv[i] + 11, nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--rounds=N] [--messages=M]\n", argv[0]);
      return 2;
    }
  }
  // The server must not drop slow subscribers during the run.
  redcoro::test::redis_server server({"--client-output-buffer-limit", "pubsub 0 0 0"});
  std::vector<std::vector<std::string>> rows;
  for (int subscribers : {1, 100}) {
    // Each subscriber receives every message: fewer messages with more subscribers.
    const std::uint64_t m = subscribers == 1 ? messages : messages / 20;
    std::map<std::string, std::vector<double>> rate, cpu, p50, p99;
    for (int r = 0; r < rounds; ++r) {
      for (const char* name : {"redcoro", "hiredis"}) {
        const sample s = std::string(name) == "redcoro"
                             ? run_redcoro(server.port(), subscribers, m)
                             : run_hiredis(server.port(), subscribers, m);
        rate[name].push_back(s.messages_per_second);
        cpu[name].push_back(s.cpu_us_per_message);
        p50[name].push_back(static_cast<double>(s.p50_ns));
        p99[name].push_back(static_cast<double>(s.p99_ns));
      }
    }
    for (const char* name : {"redcoro", "hiredis"}) {
      using redcoro::bench::format_number;
      using redcoro::bench::format_ratio;
      using redcoro::bench::median;
      rows.push_back({std::to_string(subscribers) + " subscriber" + (subscribers > 1 ? "s" : ""),
                      name, format_number(median(rate[name])),
                      format_ratio(median(rate[name]) / median(rate["hiredis"])),
                      format_number(median(cpu[name]), 3),
                      format_ratio(median(cpu[name]) / median(cpu["hiredis"])),
                      format_number(median(p50[name]) / 1000, 0),
                      format_number(median(p99[name]) / 1000, 0)});
    }
  }
  std::printf("\nPUBLISH -> subscribers on one thread, 32-byte messages, medians of %d rounds\n\n",
              rounds);
  redcoro::bench::print_table({"subscribers", "client", "messages/s", "vs hiredis",
                               "CPU us/message", "CPU vs hiredis", "p50 us", "p99 us"},
                              rows);
  return 0;
}
