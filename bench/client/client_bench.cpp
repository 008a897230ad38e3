// The connection against hiredis and redis-benchmark, on a redis-server this program starts.
//
// Contenders run alternately, round after round, on the same server; the table shows medians
// of ops/s and of client CPU per op (user+sys from getrusage), with ratios to the hiredis
// run of the same shape. Heap allocations per request are counted in an untimed pass.
//
//   bench_client [--rounds=N] [--scale=F] [--only=SHAPE]
//     F scales the number of operations (default 1); SHAPE keeps the shapes whose name starts
//     with it: "(d)" measures only the handle against the connection, "(f)" the handle against
//     the cluster client (on a cluster of one primary this program starts).
//
// The "cmd::get" rows build a typed command per call (redcoro::cmd::get) instead of reusing a
// request and response: what the typed helpers cost next to the raw path, in the same run;
// "into a reused reply" sends the command's request and decodes into a response the caller
// keeps (conn.async_exec(get.request(), reply, token)).

#include "support/alloc_counter.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include "support/report.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/connect/blocking.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <hiredis.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace proto = redcoro::proto;
using redcoro::bench::allocation_scope;
using redcoro::bench::median;

namespace {

constexpr int key_count = 1000;
std::string key(int i) {
  return "bench:key:" + std::to_string(i % key_count);
}

struct sample {
  double ops_per_second;
  double cpu_us_per_op;
};

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Times `run`, which performs `ops` operations, with this process's CPU time.
sample measure(std::size_t ops, const std::function<void()>& run, int who = RUSAGE_SELF) {
  const double cpu0 = cpu_seconds(who);
  const auto t0 = std::chrono::steady_clock::now();
  run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds(who) - cpu0;
  return {static_cast<double>(ops) / wall, cpu * 1e6 / static_cast<double>(ops)};
}

// --- redcoro -------------------------------------------------------------------------------

// `coroutines` coroutines share one connection; each sends requests of `depth` GETs
// (reused request and response) until `ops` GETs were done in all.
// What the requests go through: the connection itself, or the handle (connect/handle.hpp)
// over a single connection or over a pooled client, for what the handle's indirection costs.
// Or a cluster_client, or the handle over one, on a cluster of one primary at `port`.
// Or a tracking_cache over the connection (client-side caching): after each coroutine's
// first read, every read is answered from process memory.
enum class via { connection, handle_single, handle_pooled, cluster, handle_cluster, tracking };

struct redcoro_run {
  std::uint16_t port;
  int coroutines;
  int depth;
  bool helper = false;  // single GETs through cmd::get (a new typed command per call)
  via through = via::connection;
  bool metrics = true;  // connection_config::metrics
  // With helper: the command's request decoded into a response the caller reuses (its string
  // keeps its capacity) instead of one the command owns.
  bool reused_reply = false;

  void operator()(std::size_t ops) const { run(ops, nullptr); }

  // Returns heap allocations per request in steady state when asked.
  double allocations_per_request(std::size_t ops) const {
    double per = 0;
    run(ops, &per);
    return per;
  }

  void run(std::size_t ops, double* allocs) const {
    asio::io_context ioc(1);
    redcoro::connection_config cfg;
    cfg.port = port;
    cfg.metrics = metrics;
    if (through == via::connection) {
      redcoro::connection conn(ioc, cfg);
      conn.async_run(asio::detached);
      drive(ioc, conn, ops, allocs);
    } else if (through == via::tracking) {
      redcoro::connection conn(ioc, cfg);
      redcoro::tracking_cache cache(conn);
      conn.async_run(asio::detached);
      drive(ioc, cache, ops, allocs);
    } else if (through == via::cluster || through == via::handle_cluster) {
      redcoro::cluster_config cc;
      cc.seeds.push_back({"127.0.0.1", port});
      if (through == via::cluster) {
        redcoro::cluster_client cl(ioc, cc);
        cl.async_run(asio::detached);
        drive(ioc, cl, ops, allocs);
      } else {
        redcoro::handle h(ioc, cc);
        drive(ioc, h, ops, allocs);
      }
    } else {
      cfg.pool_size = through == via::handle_single ? 0 : 4;
      redcoro::handle h(ioc, cfg);
      drive(ioc, h, ops, allocs);
    }
  }

  template <class Redis>
  void drive(asio::io_context& ioc, Redis& conn, std::size_t ops, double* allocs) const {
    const std::size_t per_coroutine = std::max<std::size_t>(1, ops / coroutines / depth);
    int finished = 0;
    // Allocations are counted over a window in the middle of the run, across all coroutines,
    // and divided by the requests completed in it.
    std::size_t completed = 0, window_start = 0;
    std::unique_ptr<allocation_scope> window;
    auto worker = [&](int id) -> asio::awaitable<void> {
      proto::request req;
      for (int i = 0; i < depth; ++i)
        req.push("GET", key(id * depth + i));
      const std::string own_key = key(id);  // the helper rows build only the command per call
      // Both reused: a typed response for single GETs, one slot per GET for pipelines.
      proto::response<std::string> one;
      std::vector<proto::result<std::string>> many;
      redcoro::command<std::optional<std::string>>::response_type reply;  // reused_reply rows
      for (std::size_t i = 0; i < per_coroutine; ++i) {
        if (allocs && id == 0) {
          if (i == per_coroutine / 2) {
            window_start = completed;
            window = std::make_unique<allocation_scope>();
          } else if (i == per_coroutine * 3 / 4 && window) {
            *allocs = double(window->count()) /
                      double(std::max<std::size_t>(1, completed - window_start));
            window.reset();
          }
        }
        if (helper && reused_reply) {
          const auto get = redcoro::cmd::get(own_key);
          co_await conn.async_exec(get.request(), reply, asio::use_awaitable);
        } else if (helper)
          co_await conn.async_exec(redcoro::cmd::get(own_key), asio::use_awaitable);
        else if (depth == 1)
          co_await conn.async_exec(req, one, asio::use_awaitable);
        else
          co_await conn.async_exec(req, many, asio::use_awaitable);
        ++completed;
      }
      if (++finished == coroutines) {
        if constexpr (requires { conn.close(); })
          conn.close();
        else
          conn.next_layer().close();
      }
    };
    for (int c = 0; c < coroutines; ++c)
      asio::co_spawn(ioc, worker(c), asio::detached);
    ioc.run();
  }
};

// A game-loop read: tracking_cache::try_get of a key held locally, `ops` times, no
// suspension. (The key is read once through the cache first.)
struct try_get_run {
  std::uint16_t port;

  void operator()(std::size_t ops) const {
    asio::io_context ioc(1);
    redcoro::connection_config cfg;
    cfg.port = port;
    redcoro::connection conn(ioc, cfg);
    redcoro::tracking_cache cache(conn);
    conn.async_run(asio::detached);
    std::size_t found = 0;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          proto::request req;
          req.push("GET", key(0));
          proto::response<std::string> resp;
          // Until connected, reads pass through; then the first one is kept.
          while (!cache.try_get(req, resp))
            co_await cache.async_exec(req, resp, asio::use_awaitable);
          for (std::size_t i = 0; i < ops; ++i)
            found += cache.try_get(req, resp);
          conn.close();
        },
        asio::detached);
    ioc.run();
    if (found != ops) std::fprintf(stderr, "try_get: %zu of %zu found\n", found, ops);
  }
};

// --- hiredis -------------------------------------------------------------------------------

struct hiredis_run {
  std::uint16_t port;
  int depth;  // 1: synchronous; otherwise this many appended commands per flush

  void operator()(std::size_t ops) const {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
      std::fprintf(stderr, "hiredis: cannot connect\n");
      std::exit(1);
    }
    std::vector<std::string> keys;
    for (int i = 0; i < depth; ++i)
      keys.push_back(key(i));
    for (std::size_t done = 0; done < ops; done += depth) {
      for (int i = 0; i < depth; ++i)
        redisAppendCommand(c, "GET %s", keys[i].c_str());
      for (int i = 0; i < depth; ++i) {
        void* reply = nullptr;
        if (redisGetReply(c, &reply) != REDIS_OK) std::exit(1);
        freeReplyObject(reply);
      }
    }
    redisFree(c);
  }
};

// --- threads making plain blocking calls -------------------------------------------------

// `threads` threads, each with one request at a time: through one blocking_handle (its I/O
// thread multiplexes them on one connection), or each thread on its own hiredis connection,
// the usual synchronous setup.
struct threads_run {
  std::uint16_t port;
  int threads;
  bool hiredis;

  void operator()(std::size_t ops) const {
    const std::size_t per_thread = std::max<std::size_t>(1, ops / threads);
    std::vector<std::thread> all;
    if (hiredis) {
      for (int t = 0; t < threads; ++t)
        all.emplace_back([&, t] {
          redisContext* c = redisConnect("127.0.0.1", port);
          if (!c || c->err) std::exit(1);
          const std::string k = key(t);
          for (std::size_t i = 0; i < per_thread; ++i)
            freeReplyObject(redisCommand(c, "GET %s", k.c_str()));
          redisFree(c);
        });
    } else {
      redcoro::connection_config cfg;
      cfg.port = port;
      cfg.pool_size = 0;
      redcoro::blocking_handle redis(cfg);
      if (!redis.wait_ready(std::chrono::seconds(10))) std::exit(1);
      for (int t = 0; t < threads; ++t)
        all.emplace_back([&, t] {
          const std::string k = key(t);
          for (std::size_t i = 0; i < per_thread; ++i)
            if (!redis.exec(redcoro::cmd::get(k)).has_value()) std::exit(1);
        });
      for (auto& th : all)
        th.join();
      return;
    }
    for (auto& th : all)
      th.join();
  }
};

// --- redis-benchmark ------------------------------------------------------------------------

struct redis_benchmark_run {
  std::uint16_t port;
  int pipeline;
  void operator()(std::size_t ops) const {
    const std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) +
                            " -c 1 -P " + std::to_string(pipeline) + " -n " + std::to_string(ops) +
                            " -t get -r " + std::to_string(key_count) + " -q > /dev/null";
    if (std::system(cmd.c_str()) != 0) std::exit(1);
  }
};

struct contender {
  contender(std::string g, std::string n, std::function<void(std::size_t)> r, std::size_t o,
            int who = RUSAGE_SELF, bool base = false)
      : group(std::move(g)),
        name(std::move(n)),
        run(std::move(r)),
        ops(o),
        rusage_who(who),
        baseline(base) {}

  std::string group;
  std::string name;
  std::function<void(std::size_t)> run;
  std::size_t ops;
  int rusage_who;
  bool baseline;  // the hiredis run the group's ratios refer to
  std::function<double(std::size_t)> allocations = {};
};

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  double scale = 1.0;
  std::string only;  // shapes or contenders whose name starts with this ("(d)"); empty: all
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rounds=", 9) == 0) {
      rounds = std::max(1, std::atoi(argv[i] + 9));
    } else if (std::strncmp(argv[i], "--scale=", 8) == 0) {
      scale = std::max(0.01, std::atof(argv[i] + 8));
    } else if (std::strncmp(argv[i], "--only=", 7) == 0) {
      only = argv[i] + 7;
    } else {
      std::fprintf(stderr, "usage: %s [--rounds=N] [--scale=F] [--only=SHAPE]\n", argv[0]);
      return 2;
    }
  }
  redcoro::test::redis_server server;
  const auto port = server.port();
  {
    // Keys the GETs read: 32-byte values.
    redisContext* c = redisConnect("127.0.0.1", port);
    for (int i = 0; i < key_count; ++i)
      freeReplyObject(redisCommand(c, "SET %s %s", key(i).c_str(), std::string(32, 'v').c_str()));
    redisFree(c);
  }
  const auto n = [&](double base) { return static_cast<std::size_t>(base * scale); };

  std::vector<contender> all = {
      {"(a) sequential GET", "redcoro, 1 coroutine", redcoro_run{port, 1, 1}, n(40000)},
      {"(a) sequential GET", "redcoro, 1 coroutine, cmd::get", redcoro_run{port, 1, 1, true},
       n(40000)},
      {"(a) sequential GET", "hiredis sync", hiredis_run{port, 1}, n(40000), RUSAGE_SELF, true},
  };
  for (int c : {16, 64, 256}) {
    const std::string group = "(b) " + std::to_string(c) + " in flight";
    all.push_back({group, "redcoro, " + std::to_string(c) + " coroutines", redcoro_run{port, c, 1},
                   n(400000)});
    if (c == 64) {
      all.push_back(
          {group, "redcoro, 64 coroutines, cmd::get", redcoro_run{port, c, 1, true}, n(400000)});
      all.push_back({group, "redcoro, 64 coroutines, cmd::get into a reused reply",
                     redcoro_run{port, c, 1, true, via::connection, true, true}, n(400000)});
    }
    all.push_back({group, "hiredis pipeline " + std::to_string(c), hiredis_run{port, c}, n(400000),
                   RUSAGE_SELF, true});
    all.push_back({group, "redis-benchmark -c 1 -P " + std::to_string(c),
                   redis_benchmark_run{port, c}, n(400000), RUSAGE_CHILDREN});
  }
  for (int d : {16, 100}) {
    const std::string group = "(c) " + std::to_string(d) + " GETs per request";
    all.push_back(
        {group, "redcoro, 1 request of " + std::to_string(d), redcoro_run{port, 1, d}, n(400000)});
    all.push_back({group, "hiredis pipeline " + std::to_string(d), hiredis_run{port, d}, n(400000),
                   RUSAGE_SELF, true});
    all.push_back({group, "redis-benchmark -c 1 -P " + std::to_string(d),
                   redis_benchmark_run{port, d}, n(400000), RUSAGE_CHILDREN});
  }
  // The handle against the connection it wraps (the baseline of this group).
  for (int c : {1, 64}) {
    const std::string group = "(d) handle, " + std::to_string(c) + " in flight";
    const std::string co = std::to_string(c) + (c == 1 ? " coroutine" : " coroutines");
    all.push_back({group, "redcoro connection, " + co, redcoro_run{port, c, 1}, n(200000),
                   RUSAGE_SELF, true});
    all.push_back({group, "redcoro handle (single), " + co,
                   redcoro_run{port, c, 1, false, via::handle_single}, n(200000)});
    all.push_back({group, "redcoro handle (pooled), " + co,
                   redcoro_run{port, c, 1, false, via::handle_pooled}, n(200000)});
  }
  // What metrics cost: the connection with them off (the base) and on (the default).
  for (int c : {1, 64}) {
    const std::string group = "(g) metrics, " + std::to_string(c) + " in flight";
    const std::string co = std::to_string(c) + (c == 1 ? " coroutine" : " coroutines");
    all.push_back({group, "redcoro connection, metrics off, " + co,
                   redcoro_run{port, c, 1, false, via::connection, false}, n(200000), RUSAGE_SELF,
                   true});
    all.push_back({group, "redcoro connection, metrics on, " + co,
                   redcoro_run{port, c, 1, false, via::connection, true}, n(200000)});
  }
  // Client-side caching: reads answered from process memory, against the round trip.
  all.push_back({"(h) client-side cache, 64 in flight", "redcoro connection, 64 coroutines",
                 redcoro_run{port, 64, 1}, n(400000), RUSAGE_SELF, true});
  all.push_back({"(h) client-side cache, 64 in flight",
                 "redcoro tracking_cache, 64 coroutines, local hits",
                 redcoro_run{port, 64, 1, false, via::tracking}, n(400000)});
  all.push_back({"(h) client-side cache, 64 in flight", "redcoro tracking_cache::try_get",
                 try_get_run{port}, n(4000000)});
  // The handle against the cluster client it wraps, on a cluster of one primary (every key
  // on one node, so that both send what a single connection would).
  std::optional<redcoro::test::redis_cluster> cluster;
  if (only.empty() || only.rfind("(f)", 0) == 0) {
    cluster.emplace(1, 0);
    if (!cluster->wait_healthy()) {
      std::fprintf(stderr, "the cluster did not become healthy\n");
      return 1;
    }
    const auto node = cluster->ports().front();
    redisContext* c = redisConnect("127.0.0.1", node);
    for (int i = 0; i < key_count; ++i)
      freeReplyObject(redisCommand(c, "SET %s %s", key(i).c_str(), std::string(32, 'v').c_str()));
    redisFree(c);
    for (int co : {1, 64}) {
      const std::string group = "(f) cluster handle, " + std::to_string(co) + " in flight";
      const std::string name = std::to_string(co) + (co == 1 ? " coroutine" : " coroutines");
      all.push_back({group, "redcoro cluster_client, " + name,
                     redcoro_run{node, co, 1, false, via::cluster}, n(200000), RUSAGE_SELF, true});
      all.push_back({group, "redcoro handle (cluster), " + name,
                     redcoro_run{node, co, 1, false, via::handle_cluster}, n(200000)});
    }
  }
  // Plain blocking calls from many threads.
  all.push_back({"(e) 64 threads, blocking calls", "redcoro blocking_handle, 64 threads",
                 threads_run{port, 64, false}, n(200000)});
  all.push_back({"(e) 64 threads, blocking calls", "hiredis, 64 threads x own connection",
                 threads_run{port, 64, true}, n(200000), RUSAGE_SELF, true});
  std::erase_if(all, [&](const contender& c) {
    return c.group.rfind(only, 0) != 0 && c.name.rfind(only, 0) != 0;
  });
  for (auto& c : all) {
    if (c.name.rfind("redcoro", 0) != 0) continue;
    auto run = c.run.target<redcoro_run>();
    if (run) c.allocations = [r = *run](std::size_t ops) { return r.allocations_per_request(ops); };
  }

  // Warm-up, then alternate.
  for (auto& c : all)
    c.run(std::max<std::size_t>(1000, c.ops / 20));
  std::map<std::string, std::vector<double>> ops, cpu;
  for (int r = 0; r < rounds; ++r) {
    for (auto& c : all) {
      const sample s = measure(
          c.ops, [&] { c.run(c.ops); }, c.rusage_who);
      ops[c.name].push_back(s.ops_per_second);
      cpu[c.name].push_back(s.cpu_us_per_op);
    }
  }

  std::printf(
      "\nGET of 32-byte values on one connection, medians of %d rounds, redis-server %s\n"
      "ratios are to the group's base: hiredis in (a)-(c) and (e), the connection in (d),\n"
      "the connection with metrics off in (g), the connection in (h),\n"
      "the cluster client in (f)\n\n",
      rounds, "on loopback");
  std::vector<std::vector<std::string>> rows;
  std::string group;
  double base_ops = 0, base_cpu = 0;
  for (const auto& c : all) {
    if (c.group != group) {
      group = c.group;
      for (const auto& b : all)
        if (b.group == group && b.baseline) {
          base_ops = median(ops[b.name]);
          base_cpu = median(cpu[b.name]);
        }
    }
    const double o = median(ops[c.name]), u = median(cpu[c.name]);
    std::string allocs = "-";
    if (c.allocations)
      allocs =
          redcoro::bench::format_number(c.allocations(std::max<std::size_t>(2000, c.ops / 10)), 2);
    rows.push_back({c.group, c.name, redcoro::bench::format_number(o),
                    redcoro::bench::format_ratio(o / base_ops), redcoro::bench::format_number(u, 2),
                    redcoro::bench::format_ratio(u / base_cpu), allocs});
  }
  redcoro::bench::print_table(
      {"shape", "client", "ops/s", "vs base", "CPU us/op", "CPU vs base", "allocs/request"}, rows);
  return 0;
}
