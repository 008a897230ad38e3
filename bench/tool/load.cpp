#include "tool/load.hpp"

#include "tool/workload.hpp"
#include <redcoro/client/connection.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/cluster/cluster_client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace redcoro::bench {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::uint64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()));
}

// The error kind of a server error reply: its first word ("ERR", "WRONGTYPE").
std::string server_kind(std::string_view message) {
  return std::string(message.substr(0, message.find(' ')));
}

}  // namespace

std::uint64_t requests_per_stream(const options& o, std::uint64_t stream) {
  const std::uint64_t streams = o.total_coroutines();
  return o.requests / streams + (stream < o.requests % streams ? 1 : 0);
}

void record(thread_stats& s, const request_outcome& r, const run_control& ctl) {
  if (!ctl.measuring.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(s.m);
  s.all.record(r.latency_ns);
  s.interval.record(r.latency_ns);
  ++s.requests;
  s.ops += r.ops;
  s.interval_ops += r.ops;
  s.hits += r.hits;
  s.misses += r.misses;
  s.verify_failures += r.verify_failures;
  s.interval_errors += r.error_count;
  for (unsigned i = 0; i < r.error_count; ++i)
    ++s.errors[r.error_kinds[i]];
}

run_result run_threads(const options& o, const std::string& driver,
                       const std::function<void(int, thread_stats&, run_control&)>& body,
                       const std::atomic<bool>& interrupted) {
  run_control ctl;
  std::vector<std::unique_ptr<thread_stats>> stats;
  for (int i = 0; i < o.threads; ++i)
    stats.push_back(std::make_unique<thread_stats>());
  std::atomic<int> running{o.threads};
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i)
    threads.emplace_back([&, i] {
      body(i, *stats[static_cast<std::size_t>(i)], ctl);
      --running;
    });

  run_result result;
  result.driver = driver;
  const auto begin = clock_type::now();
  auto start = begin;
  double cpu0 = cpu_seconds(RUSAGE_SELF);
  bool warm = o.warmup_s <= 0;
  if (warm) ctl.measuring = true;
  auto next_tick = begin + std::chrono::seconds(1);
  auto last_tick = begin;  // when the interval figures were last taken
  histogram second;
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto now = clock_type::now();
    if (interrupted) {
      result.partial = true;
      ctl.stop = true;
    }
    if (!warm && now - begin >= std::chrono::duration<double>(o.warmup_s)) {
      warm = true;
      start = now;
      cpu0 = cpu_seconds(RUSAGE_SELF);
      ctl.measuring = true;
      next_tick = now + std::chrono::seconds(1);
      last_tick = now;
    }
    if (warm && o.duration_s > 0 && now - start >= std::chrono::duration<double>(o.duration_s))
      ctl.stop = true;
    if (warm && now >= next_tick) {
      second.reset();
      std::uint64_t ops = 0, errors = 0;
      for (auto& s : stats) {
        std::lock_guard lock(s->m);
        second.merge(s->interval);
        s->interval.reset();
        ops += s->interval_ops;
        errors += s->interval_errors;
        s->interval_ops = s->interval_errors = 0;
      }
      const double t = std::chrono::duration<double>(now - start).count();
      const double elapsed = std::chrono::duration<double>(now - last_tick).count();
      last_tick = now;
      timeline_point p{t, static_cast<double>(ops) / elapsed, second.percentile(50),
                       second.percentile(99), errors};
      result.timeline.push_back(p);
      if (o.live) {
        std::fprintf(stderr, "%s %s\n", driver.c_str(),
                     live_line(p.t_s, p.ops_per_s, p.p50_ns, p.p99_ns, p.errors).c_str());
      }
      next_tick += std::chrono::seconds(1);
    }
  }
  for (auto& t : threads)
    t.join();
  const auto end = clock_type::now();
  const double cpu = cpu_seconds(RUSAGE_SELF) - cpu0;
  result.duration_s = std::chrono::duration<double>(end - start).count();
  for (auto& s : stats) {
    result.latency.merge(s->all);
    result.requests += s->requests;
    result.ops += s->ops;
    result.hits += s->hits;
    result.misses += s->misses;
    result.verify_failures += s->verify_failures;
    for (const auto& [kind, n] : s->errors)
      result.errors[kind] += n;
  }
  result.ops_per_s =
      result.duration_s > 0 ? static_cast<double>(result.ops) / result.duration_s : 0;
  result.cpu_us_per_op = result.ops ? cpu * 1e6 / static_cast<double>(result.ops) : -1;
  if (interrupted) result.partial = true;
  return result;
}

// --- redcoro ----------------------------------------------------------------------------

namespace {

redcoro::connection_config client_config(const options& o, const target& t) {
  redcoro::connection_config cfg;
  cfg.host = t.host;
  cfg.port = t.port;
  cfg.unix_socket = t.unix_socket;
  cfg.username = o.user;
  cfg.password = o.password;
  cfg.database = o.db;
  cfg.tls.enabled = o.tls;
  cfg.tls.ca_file = o.tls_ca;
  cfg.tls.cert_file = o.tls_cert;
  cfg.tls.key_file = o.tls_key;
  cfg.tls.server_name = o.tls_server_name;
  cfg.max_queued_requests = 0;
  return cfg;
}

// Checks the replies of one request against what it sent.
template <class Response>
void judge(const Response& resp, const std::vector<sent_command>& sent, const key_values& kv,
           written_set& written, std::string& expected, request_outcome& out) {
  for (std::size_t i = 0; i < sent.size() && i < resp.size(); ++i) {
    const auto& r = resp[i];
    ++out.ops;
    if (r.has_error()) {
      out.add_error(r.error().is_server_error() ? std::string(r.error().server_code())
                                                : r.error().code.message());
      continue;
    }
    if constexpr (std::is_same_v<typename Response::value_type,
                                 proto::result<std::optional<std::string>>>) {
      if (sent[i].what == sent_command::kind::set) {
        written.mark(sent[i].key);
      } else if (sent[i].what == sent_command::kind::get) {
        const auto& v = *r;
        if (!v) {
          ++out.misses;
          continue;
        }
        ++out.hits;
        if (written.contains(sent[i].key)) {
          kv.value(sent[i].key, expected);
          if (*v != expected) ++out.verify_failures;
        }
      }
    }
  }
}

}  // namespace

namespace {

// The redcoro driver over any client with connection's interface (a connection, or a
// cluster_client): `make(ioc)` gives one client; each thread has options::connections.
// `after(client)` is called once the thread's load ended, before the client goes.
template <class Client, class Make>
run_result run_clients(const options& o, const std::string& driver, Make make,
                       const std::atomic<bool>& interrupted,
                       const std::function<void(Client&)>& after = {}) {
  const key_values kv(o);
  written_set written(o.key_space);
  const std::uint64_t streams = o.total_coroutines();
  auto body = [&](int thread, thread_stats& stats, run_control& ctl) {
    asio::io_context ioc(1);
    std::vector<std::unique_ptr<Client>> conns;
    for (int c = 0; c < o.connections; ++c) {
      conns.push_back(make(ioc));
      conns.back()->async_run(asio::detached);
    }
    int active = o.connections * o.concurrency;
    // With --rate, each coroutine sends at its share of the rate, on a fixed schedule.
    const auto interval =
        o.rate > 0 ? std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(static_cast<double>(streams) / o.rate))
                   : clock_type::duration::zero();
    auto worker = [&](Client& conn, std::uint64_t stream) -> asio::awaitable<void> {
      request_maker maker(o, kv, stream, streams);
      proto::request req;
      std::vector<sent_command> sent;
      std::vector<proto::result<std::optional<std::string>>> typed;
      proto::generic_response generic;
      std::string expected;
      asio::steady_timer pace(ioc);
      // Each stream starts at its own phase of the interval, so that the requests are spread
      // evenly instead of all streams sending together once per interval.
      clock_type::time_point next = clock_type::now() + interval *
                                                            static_cast<std::int64_t>(stream) /
                                                            static_cast<std::int64_t>(streams);
      const std::uint64_t share = o.requests ? requests_per_stream(o, stream) : 0;
      std::uint64_t done = 0;
      while (!ctl.stop.load(std::memory_order_relaxed)) {
        clock_type::time_point begin;
        if (o.rate > 0) {
          next += interval;
          pace.expires_at(next);
          error_code ignored;
          co_await pace.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          begin = next;  // latency from the scheduled time: coordinated omission corrected
        } else {
          begin = clock_type::now();
        }
        maker.next(req, sent);
        error_code ec;
        request_outcome out;
        if (o.commands.empty())
          co_await conn.async_exec(req, typed, asio::redirect_error(asio::use_awaitable, ec));
        else
          co_await conn.async_exec(req, generic, asio::redirect_error(asio::use_awaitable, ec));
        out.latency_ns = ns_between(begin, clock_type::now());
        if (ec) {
          out.ops = sent.size();
          out.add_error(ec.message());
        } else if (o.commands.empty()) {
          judge(typed, sent, kv, written, expected, out);
        } else {
          judge(generic, sent, kv, written, expected, out);
        }
        record(stats, out, ctl);
        if (ctl.measuring.load(std::memory_order_relaxed) && share && ++done >= share) break;
      }
      if (--active == 0)
        for (auto& c : conns)
          c->close();
    };
    std::uint64_t stream = static_cast<std::uint64_t>(thread) * o.connections * o.concurrency;
    for (auto& c : conns)
      for (int k = 0; k < o.concurrency; ++k)
        asio::co_spawn(ioc, worker(*c, stream++), asio::detached);
    ioc.run();
    if (after)
      for (auto& c : conns)
        after(*c);
  };
  return run_threads(o, driver, body, interrupted);
}

}  // namespace

namespace {

// A connection read through a client-side cache (--client-cache); the cache goes first.
struct cached_connection {
  cached_connection(asio::io_context& ioc, const redcoro::connection_config& cfg,
                    std::uint64_t bytes)
      : conn(ioc, cfg), cache(conn, sized(bytes)) {}
  static redcoro::tracking_cache_config sized(std::uint64_t bytes) {
    redcoro::tracking_cache_config c;
    c.max_bytes = static_cast<std::size_t>(bytes);
    return c;
  }
  template <class Token>
  auto async_run(Token&& token) {
    return conn.async_run(std::forward<Token>(token));
  }
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return cache.async_exec(req, resp, std::forward<Token>(token));
  }
  void close() { conn.close(); }

  redcoro::connection conn;
  redcoro::tracking_cache cache;
};

}  // namespace

run_result run_redcoro(const options& o, const target& t, const std::atomic<bool>& interrupted) {
  const redcoro::connection_config cfg = client_config(o, t);
  if (o.client_cache && !t.cluster) {
    std::atomic<std::uint64_t> hits{0}, reads{0};
    run_result r = run_clients<cached_connection>(
        o, "redcoro+client-cache",
        [&](asio::io_context& ioc) {
          return std::make_unique<cached_connection>(ioc, cfg, o.client_cache);
        },
        interrupted,
        [&](cached_connection& c) {
          const auto s = c.cache.stats();
          hits += s.hits;
          reads += s.hits + s.misses + s.shared_misses;
        });
    r.local_hits = hits;
    r.local_reads = reads;
    return r;
  }
  if (!t.cluster) {
    return run_clients<redcoro::connection>(
        o, "redcoro",
        [&](asio::io_context& ioc) { return std::make_unique<redcoro::connection>(ioc, cfg); },
        interrupted);
  }
  redcoro::cluster_config cc;
  cc.seeds.push_back({t.host, t.port});
  cc.node = cfg;
  return run_clients<redcoro::cluster_client>(
      o, "redcoro-cluster",
      [&](asio::io_context& ioc) { return std::make_unique<redcoro::cluster_client>(ioc, cc); },
      interrupted);
}

std::size_t cluster_primaries(const options& o, const target& t) {
  asio::io_context ioc;
  redcoro::cluster_config cc;
  cc.seeds.push_back({t.host, t.port});
  cc.node = client_config(o, t);
  redcoro::cluster_client client(ioc, cc);
  client.async_run(asio::detached);
  std::size_t primaries = 0;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        proto::request ping;
        ping.push("PING");
        proto::generic_response ignored;
        error_code ec;
        co_await client.async_exec(ping, ignored, asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) primaries = client.primaries().size();
        client.close();
      },
      asio::detached);
  ioc.run();
  return primaries;
}

// --- hiredis ----------------------------------------------------------------------------

run_result run_hiredis(const options& o, const target& t, const std::atomic<bool>& interrupted) {
  const key_values kv(o);
  written_set written(o.key_space);
  const std::uint64_t streams = o.total_coroutines();
  auto body = [&](int thread, thread_stats& stats, run_control& ctl) {
    // Each connection keeps `concurrency` requests of `pipeline` commands in flight: it
    // appends them all, then reads every reply (hiredis's synchronous pipelining).
    struct slot {
      std::unique_ptr<request_maker> maker;
      proto::request req;
      std::vector<sent_command> sent;
      std::uint64_t share = 0, done = 0;
    };
    struct conn_state {
      redisContext* ctx = nullptr;
      std::vector<slot> slots;
    };
    std::vector<conn_state> conns(static_cast<std::size_t>(o.connections));
    std::uint64_t stream = static_cast<std::uint64_t>(thread) * o.connections * o.concurrency;
    for (auto& c : conns) {
      c.ctx = t.unix_socket.empty() ? redisConnect(t.host.c_str(), t.port)
                                    : redisConnectUnix(t.unix_socket.c_str());
      if (!c.ctx || c.ctx->err) {
        std::fprintf(stderr, "hiredis: cannot connect: %s\n", c.ctx ? c.ctx->errstr : "?");
        ctl.stop = true;
        return;
      }
      if (!o.password.empty()) {
        auto* r = static_cast<redisReply*>(
            o.user.empty() ? redisCommand(c.ctx, "AUTH %s", o.password.c_str())
                           : redisCommand(c.ctx, "AUTH %s %s", o.user.c_str(), o.password.c_str()));
        if (r) freeReplyObject(r);
      }
      if (o.db != 0)
        if (auto* r = static_cast<redisReply*>(redisCommand(c.ctx, "SELECT %d", o.db)))
          freeReplyObject(r);
      for (int k = 0; k < o.concurrency; ++k, ++stream) {
        slot s;
        s.maker = std::make_unique<request_maker>(o, kv, stream, streams);
        s.share = o.requests ? requests_per_stream(o, stream) : 0;
        c.slots.push_back(std::move(s));
      }
    }
    std::string expected;
    bool broken = false;
    while (!ctl.stop.load(std::memory_order_relaxed) && !broken) {
      const auto begin = clock_type::now();
      bool any = false;
      for (auto& c : conns)
        for (auto& s : c.slots) {
          if (s.share && s.done >= s.share) continue;
          s.maker->next(s.req, s.sent);
          redisAppendFormattedCommand(c.ctx, s.req.payload().data(), s.req.payload().size());
          any = true;
        }
      if (!any) break;
      // Every connection's requests go out before any reply is read: redisGetReply alone
      // would write each connection's only when the replies of the ones before it were in,
      // one connection in flight at a time.
      for (auto& c : conns) {
        int done = 0;
        while (!done && !broken)
          broken = redisBufferWrite(c.ctx, &done) != REDIS_OK;
      }
      for (auto& c : conns)
        for (auto& s : c.slots) {
          if (s.share && s.done >= s.share) continue;
          request_outcome out;
          for (const sent_command& cmd : s.sent) {
            void* raw = nullptr;
            if (redisGetReply(c.ctx, &raw) != REDIS_OK) {
              out.add_error(c.ctx->errstr);
              broken = true;
              break;
            }
            auto* r = static_cast<redisReply*>(raw);
            ++out.ops;
            if (r->type == REDIS_REPLY_ERROR) {
              out.add_error(server_kind(std::string_view(r->str, r->len)));
            } else if (cmd.what == sent_command::kind::set) {
              written.mark(cmd.key);
            } else if (cmd.what == sent_command::kind::get) {
              if (r->type == REDIS_REPLY_NIL) {
                ++out.misses;
              } else {
                ++out.hits;
                if (written.contains(cmd.key)) {
                  kv.value(cmd.key, expected);
                  if (std::string_view(r->str, r->len) != expected) ++out.verify_failures;
                }
              }
            }
            freeReplyObject(r);
          }
          out.latency_ns = ns_between(begin, clock_type::now());
          record(stats, out, ctl);
          if (ctl.measuring.load(std::memory_order_relaxed)) ++s.done;
          if (broken) break;
        }
    }
    for (auto& c : conns)
      redisFree(c.ctx);
  };
  return run_threads(o, "hiredis", body, interrupted);
}

// --- redis-benchmark -------------------------------------------------------------------

run_result run_redis_benchmark(const options& o, const target& t, std::uint64_t ops) {
  run_result result;
  result.driver = "redis-benchmark";
  const int clients = o.threads * o.connections;
  const int depth = o.concurrency * o.pipeline;
  const std::uint64_t total = o.set_ratio + o.get_ratio;
  struct part {
    const char* test;
    std::uint64_t n;
  };
  const part parts[] = {{"set", ops * o.set_ratio / total}, {"get", ops * o.get_ratio / total}};
  const double cpu0 = cpu_seconds(RUSAGE_CHILDREN);
  double seconds = 0;
  for (const part& p : parts) {
    if (p.n == 0) continue;
    std::ostringstream cmd;
    cmd << "redis-benchmark -h " << t.host << " -p " << t.port << " -c " << clients << " -P "
        << depth << " -n " << p.n << " -t " << p.test << " -r " << o.key_space << " -d "
        << o.data_min << " --threads " << o.threads << " --csv";
    if (!o.password.empty())
      cmd << " -a " << o.password << " --user " << (o.user.empty() ? "default" : o.user);
    if (o.db) cmd << " --dbnum " << o.db;
    cmd << " 2>/dev/null";
    FILE* pipe = popen(cmd.str().c_str(), "r");
    if (!pipe) {
      ++result.errors["redis-benchmark did not start"];
      continue;
    }
    char line[1024];
    bool parsed = false;
    while (std::fgets(line, sizeof line, pipe)) {
      // "SET","123456.79","0.123","0.020","0.111","0.199","0.303","1.023"
      double rps = 0, avg = 0, min = 0, p50 = 0, p95 = 0, p99 = 0, max = 0;
      char name[64];
      if (std::sscanf(line, "\"%63[^\"]\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"",
                      name, &rps, &avg, &min, &p50, &p95, &p99, &max) == 8 &&
          rps > 0) {
        seconds += static_cast<double>(p.n) / rps;
        result.ops += p.n;
        result.requests += p.n / static_cast<std::uint64_t>(o.pipeline);
        // redis-benchmark reports these percentiles only; kept as it reports them.
        auto& ext = result.reported_percentiles_us;
        auto weigh = [&](const char* key, double ms) { ext[key] = std::max(ext[key], ms * 1000); };
        weigh("p50", p50);
        weigh("p95", p95);
        weigh("p99", p99);
        weigh("max", max);
        parsed = true;
      }
    }
    if (pclose(pipe) != 0 || !parsed) ++result.errors["redis-benchmark failed"];
  }
  result.duration_s = seconds;
  result.ops_per_s = seconds > 0 ? static_cast<double>(result.ops) / seconds : 0;
  const double cpu = cpu_seconds(RUSAGE_CHILDREN) - cpu0;
  result.cpu_us_per_op = result.ops ? cpu * 1e6 / static_cast<double>(result.ops) : -1;
  return result;
}

}  // namespace redcoro::bench
