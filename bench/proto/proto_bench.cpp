// bench_proto: RESP parsing and request building, redcoro against hiredis in the same run.
//
// The input is one buffer of about 64 MiB holding a realistic reply mix (40% +OK, 30% 32-byte
// blob strings, 20% integers, 10% arrays of ten 16-byte blob strings), fed in 16 KiB chunks
// as a socket delivers it: each chunk is copied into the reader's buffer, everything
// complete is decoded, then the buffer is compacted once.
//
// Four decoders: redcoro nodes, redcoro typed results in reused containers, hiredis's
// redisReader building its reply objects, and the same reader with reply objects off
// (reader->fn = NULL). Before timing, the first three must agree reply by reply on what they
// decoded and the fourth on how many replies there were.
//
// Options (besides Google Benchmark's): --rounds=N (default 5) timed rounds per contender,
// alternating; --megabytes=N (default 64) input size.

#include "support/alloc_counter.hpp"
#include "support/report.hpp"
#include <redcoro/proto/adapter.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/request.hpp>

#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace proto = redcoro::proto;
namespace bench = redcoro::bench;

namespace {

constexpr std::size_t chunk_size = 16 * 1024;

enum class kind : std::uint8_t { ok, blob, integer, array };

struct corpus {
  std::string wire;
  std::vector<kind> kinds;
};

corpus make_corpus(std::size_t bytes) {
  corpus c;
  c.wire.reserve(bytes + 512);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> percent(0, 99);
  auto text = [&](std::size_t n) {
    std::string s(n, ' ');
    for (char& ch : s)
      ch = static_cast<char>('a' + rng() % 26);
    return s;
  };
  while (c.wire.size() < bytes) {
    const int p = percent(rng);
    if (p < 40) {
      c.wire += "+OK\r\n";
      c.kinds.push_back(kind::ok);
    } else if (p < 70) {
      c.wire += "$32\r\n" + text(32) + "\r\n";
      c.kinds.push_back(kind::blob);
    } else if (p < 90) {
      c.wire += ":" + std::to_string(rng() % 10000000) + "\r\n";
      c.kinds.push_back(kind::integer);
    } else {
      c.wire += "*10\r\n";
      for (int i = 0; i < 10; ++i)
        c.wire += "$16\r\n" + text(16) + "\r\n";
      c.kinds.push_back(kind::array);
    }
  }
  return c;
}

const corpus& input() {
  static const corpus c = [] {
    const char* mb = std::getenv("REDCORO_BENCH_MEGABYTES");
    return make_corpus(static_cast<std::size_t>(mb ? std::atoi(mb) : 64) * 1024 * 1024);
  }();
  return c;
}

// A digest of each reply, to check that the decoders agree. FNV-1a over a canonical form.
struct digest {
  std::uint64_t h = 1469598103934665603ull;
  void add(std::string_view s) {
    for (unsigned char c : s)
      h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
};

// --- redcoro: nodes -------------------------------------------------------------------------

// How the parse loop reaches the sink: compiled for the sink's own type (consume_message's
// template, what a lambda gets), or through a proto::node_sink (the loop compiled once in
// the library, one indirect call per node).
enum class loop { inlined, node_sink };

// Feeds the corpus as a socket would: copy a chunk in, decode all that is complete, compact.
template <loop L, class OnNode, class OnReply>
std::size_t feed_redcoro(const corpus& c, OnNode&& on_node, OnReply&& on_reply) {
  proto::parser p;
  std::string buffer;
  buffer.reserve(4 * chunk_size);
  std::size_t pos = 0, replies = 0;
  std::error_code ec;
  const std::string_view wire = c.wire;
  for (std::size_t off = 0; off < wire.size(); off += chunk_size) {
    buffer.append(wire.substr(off, chunk_size));
    // What the connection's reader does: one consume_message() call per reply.
    const auto sink = [&](const proto::node& n) { on_node(replies, n); };
    for (;;) {
      bool done;
      if constexpr (L == loop::inlined)
        done = p.consume_message(buffer, pos, sink, ec);
      else
        done = p.consume_message(buffer, pos, proto::node_sink(sink), ec);
      if (ec) {
        std::fprintf(stderr, "parse error: %s\n", ec.message().c_str());
        std::abort();
      }
      if (!done) break;
      on_reply(replies++);
    }
    buffer.erase(0, pos);
    pos = 0;
  }
  return replies;
}

template <loop L = loop::inlined>
std::size_t run_nodes(const corpus& c, std::vector<std::uint64_t>* digests) {
  std::uint64_t sink = 0;
  digest d;
  const std::size_t replies = feed_redcoro<L>(
      c,
      [&](std::size_t, const proto::node& n) {
        sink += n.value.size() + static_cast<std::uint64_t>(n.data_type);
        if (digests) {
          switch (n.data_type) {
            case proto::type::simple_string:
              d.add("S");
              d.add(n.value);
              break;
            case proto::type::blob_string:
              d.add("B");
              d.add(n.value);
              break;
            case proto::type::number:
              d.add("I");
              d.add(n.value);
              break;
            case proto::type::array:
              d.add("A");
              d.add(std::to_string(n.aggregate_size));
              break;
            default:
              d.add("?");
          }
        }
      },
      [&](std::size_t) {
        if (digests) {
          digests->push_back(d.h);
          d = {};
        }
      });
  benchmark::DoNotOptimize(sink);
  return replies;
}

// --- redcoro: typed results in reused containers --------------------------------------------

struct typed_state {
  proto::result<std::string> text;
  proto::result<std::int64_t> integer;
  proto::result<std::vector<std::string>> strings;
  proto::adapter<proto::result<std::string>> text_adapter;
  proto::adapter<proto::result<std::int64_t>> integer_adapter;
  proto::adapter<proto::result<std::vector<std::string>>> strings_adapter;
};

template <loop L = loop::inlined>
std::size_t run_typed(const corpus& c, typed_state& s, std::vector<std::uint64_t>* digests) {
  std::uint64_t sink = 0;
  proto::reply_error unused;
  const std::size_t replies = feed_redcoro<L>(
      c,
      [&](std::size_t index, const proto::node& n) {
        // What the client does: the request at the head of the queue knows its response type.
        switch (c.kinds[index]) {
          case kind::ok:
          case kind::blob:
            s.text_adapter.on_node(s.text, n, n.depth, unused);
            break;
          case kind::integer:
            s.integer_adapter.on_node(s.integer, n, n.depth, unused);
            break;
          case kind::array:
            s.strings_adapter.on_node(s.strings, n, n.depth, unused);
            break;
        }
      },
      [&](std::size_t index) {
        const kind k = c.kinds[index];
        if (s.text.has_error() || s.integer.has_error() || s.strings.has_error()) std::abort();
        if (k == kind::integer)
          sink += static_cast<std::uint64_t>(*s.integer);
        else if (k == kind::array)
          sink += s.strings->size();
        else
          sink += s.text->size();
        if (!digests) return;
        digest d;
        switch (k) {
          case kind::ok:
            d.add("S");
            d.add(*s.text);
            break;
          case kind::blob:
            d.add("B");
            d.add(*s.text);
            break;
          case kind::integer:
            d.add("I");
            d.add(std::to_string(*s.integer));
            break;
          case kind::array:
            d.add("A");
            d.add(std::to_string(s.strings->size()));
            for (const auto& e : *s.strings) {
              d.add("B");
              d.add(e);
            }
            break;
        }
        digests->push_back(d.h);
      });
  benchmark::DoNotOptimize(sink);
  return replies;
}

// --- hiredis --------------------------------------------------------------------------------

void digest_reply(const redisReply* r, digest& d) {
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      d.add("S");
      d.add(std::string_view(r->str, r->len));
      break;
    case REDIS_REPLY_STRING:
      d.add("B");
      d.add(std::string_view(r->str, r->len));
      break;
    case REDIS_REPLY_INTEGER:
      d.add("I");
      d.add(std::to_string(r->integer));
      break;
    case REDIS_REPLY_ARRAY:
      d.add("A");
      d.add(std::to_string(r->elements));
      for (std::size_t i = 0; i < r->elements; ++i)
        digest_reply(r->element[i], d);
      break;
    default:
      d.add("?");
  }
}

std::size_t run_hiredis(const corpus& c, bool objects, std::vector<std::uint64_t>* digests) {
  redisReader* reader = redisReaderCreate();
  if (!objects) reader->fn = nullptr;
  std::size_t replies = 0;
  std::uint64_t sink = 0;
  const std::string_view wire = c.wire;
  for (std::size_t off = 0; off < wire.size(); off += chunk_size) {
    const std::string_view piece = wire.substr(off, chunk_size);
    if (redisReaderFeed(reader, piece.data(), piece.size()) != REDIS_OK) std::abort();
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader, &reply) != REDIS_OK) std::abort();
      if (reply == nullptr) break;
      ++replies;
      if (objects) {
        const auto* r = static_cast<redisReply*>(reply);
        sink += static_cast<std::uint64_t>(r->type);
        if (digests) {
          digest d;
          digest_reply(r, d);
          digests->push_back(d.h);
        }
        freeReplyObject(reply);
      }
    }
  }
  redisReaderFree(reader);
  benchmark::DoNotOptimize(sink);
  return replies;
}

// --- benchmarks -----------------------------------------------------------------------------

void set_rates(benchmark::State& state, std::size_t replies) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input().wire.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * replies));
}

template <loop L>
void bm_nodes(benchmark::State& state) {
  std::size_t replies = 0;
  for (auto _ : state)
    replies = run_nodes<L>(input(), nullptr);
  set_rates(state, replies);
}

template <loop L>
void bm_typed(benchmark::State& state) {
  typed_state s;
  std::size_t replies = 0;
  for (auto _ : state)
    replies = run_typed<L>(input(), s, nullptr);
  set_rates(state, replies);
}

void bm_hiredis_objects(benchmark::State& state) {
  std::size_t replies = 0;
  for (auto _ : state)
    replies = run_hiredis(input(), true, nullptr);
  set_rates(state, replies);
}

void bm_hiredis_no_objects(benchmark::State& state) {
  std::size_t replies = 0;
  for (auto _ : state)
    replies = run_hiredis(input(), false, nullptr);
  set_rates(state, replies);
}

// Request building: GET and SET of a 32-byte value, alternating.
const std::string value32(32, 'v');
std::string key_for(std::uint64_t i) {
  return "key:" + std::to_string(i % 100000);
}

// One GET (odd i) or SET (even i) pushed into `req`, its name looked up when pushed or, with
// `known`, at compile time (command_name.hpp: what the typed helpers do).
template <bool known>
void push_get_or_set(proto::request& req, std::uint64_t i, const std::string& key) {
  using namespace proto::literals;
  if constexpr (known) {
    if (i % 2)
      req.push("GET"_cmd, key);
    else
      req.push("SET"_cmd, key, value32);
  } else {
    if (i % 2)
      req.push("GET", key);
    else
      req.push("SET", key, value32);
  }
}

void bm_request_reused(benchmark::State& state) {
  proto::request req;
  std::uint64_t i = 0;
  const std::string key = key_for(1);
  for (auto _ : state) {
    req.clear();
    push_get_or_set<false>(req, ++i, key);
    benchmark::DoNotOptimize(req.payload().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <bool known>
void bm_request_fresh(benchmark::State& state) {
  std::uint64_t i = 0;
  const std::string key = key_for(1);
  for (auto _ : state) {
    proto::request req;
    push_get_or_set<known>(req, ++i, key);
    benchmark::DoNotOptimize(req.payload().data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void bm_request_hiredis(benchmark::State& state) {
  std::uint64_t i = 0;
  const std::string key = key_for(1);
  for (auto _ : state) {
    char* cmd = nullptr;
    int len;
    if (++i % 2) {
      const char* argv[] = {"GET", key.data()};
      const std::size_t lens[] = {3, key.size()};
      len = redisFormatCommandArgv(&cmd, 2, argv, lens);
    } else {
      const char* argv[] = {"SET", key.data(), value32.data()};
      const std::size_t lens[] = {3, key.size(), value32.size()};
      len = redisFormatCommandArgv(&cmd, 3, argv, lens);
    }
    benchmark::DoNotOptimize(len);
    benchmark::DoNotOptimize(cmd);
    redisFreeCommand(cmd);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// --- checks before timing -------------------------------------------------------------------

struct allocation_figures {
  double nodes, typed, nodes_erased, typed_erased, hiredis_objects, hiredis_no_objects;
  double request_reused, request_fresh, request_fresh_known, request_hiredis;
};

// Allocations per unit in steady state: a warm-up pass, then a counted pass.
template <class F>
double allocations_per(std::size_t units, F&& f) {
  f();
  bench::allocation_scope scope;
  f();
  return static_cast<double>(scope.count()) / static_cast<double>(units);
}

allocation_figures check_and_count() {
  const corpus& c = input();
  std::vector<std::uint64_t> nodes, typed, nodes_erased, typed_erased, hiredis;
  typed_state s;
  const std::size_t n1 = run_nodes(c, &nodes);
  const std::size_t n2 = run_typed(c, s, &typed);
  const std::size_t n3 = run_hiredis(c, true, &hiredis);
  const std::size_t n4 = run_hiredis(c, false, nullptr);
  const std::size_t n5 = run_nodes<loop::node_sink>(c, &nodes_erased);
  const std::size_t n6 = run_typed<loop::node_sink>(c, s, &typed_erased);
  if (n1 != c.kinds.size() || n2 != n1 || n3 != n1 || n4 != n1 || n5 != n1 || n6 != n1) {
    std::fprintf(stderr,
                 "reply counts differ: expected %zu, nodes %zu typed %zu hiredis %zu/%zu "
                 "node_sink %zu/%zu\n",
                 c.kinds.size(), n1, n2, n3, n4, n5, n6);
    std::exit(1);
  }
  for (std::size_t i = 0; i < n1; ++i) {
    if (nodes[i] != hiredis[i] || typed[i] != hiredis[i] || nodes_erased[i] != hiredis[i] ||
        typed_erased[i] != hiredis[i]) {
      std::fprintf(stderr, "decoders disagree on reply %zu\n", i);
      std::exit(1);
    }
  }
  std::printf(
      "check: %zu replies decoded identically by redcoro (nodes, typed; each loop) and hiredis\n\n",
      n1);

  allocation_figures a{};
  a.nodes = allocations_per(n1, [&] { run_nodes(c, nullptr); });
  a.typed = allocations_per(n1, [&] { run_typed(c, s, nullptr); });
  a.nodes_erased = allocations_per(n1, [&] { run_nodes<loop::node_sink>(c, nullptr); });
  a.typed_erased = allocations_per(n1, [&] { run_typed<loop::node_sink>(c, s, nullptr); });
  a.hiredis_objects = allocations_per(n1, [&] { run_hiredis(c, true, nullptr); });
  a.hiredis_no_objects = allocations_per(n1, [&] { run_hiredis(c, false, nullptr); });

  constexpr std::size_t requests = 100000;
  auto build = [&](auto&& one) {
    return allocations_per(requests, [&] {
      for (std::size_t i = 0; i < requests; ++i)
        one(i);
    });
  };
  proto::request reused;
  const std::string key = key_for(1);
  a.request_reused = build([&](std::size_t i) {
    reused.clear();
    push_get_or_set<false>(reused, i, key);
  });
  auto fresh = [&](auto known) {
    return build([&](std::size_t i) {
      proto::request req;
      push_get_or_set<decltype(known)::value>(req, i, key);
      benchmark::DoNotOptimize(req.payload().data());
    });
  };
  a.request_fresh = fresh(std::false_type{});
  a.request_fresh_known = fresh(std::true_type{});
  a.request_hiredis = build([&](std::size_t i) {
    char* cmd = nullptr;
    const char* argv[] = {i % 2 ? "GET" : "SET", key.data(), value32.data()};
    const std::size_t lens[] = {3, key.size(), value32.size()};
    redisFormatCommandArgv(&cmd, i % 2 ? 2 : 3, argv, lens);
    redisFreeCommand(cmd);
  });
  return a;
}

int rounds_from_args(int& argc, char** argv) {
  int rounds = 5;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--rounds=", 0) == 0)
      rounds = std::max(1, std::atoi(argv[i] + 9));
    else
      argv[out++] = argv[i];
  }
  argc = out;
  return rounds;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = rounds_from_args(argc, argv);
  benchmark::Initialize(&argc, argv);

  const corpus& c = input();
  std::printf("input: %s bytes, %s replies, fed in %zu-byte chunks; %d rounds per contender\n",
              bench::format_number(static_cast<double>(c.wire.size())).c_str(),
              bench::format_number(static_cast<double>(c.kinds.size())).c_str(), chunk_size,
              rounds);
  const allocation_figures allocs = check_and_count();

  // Round-robin registration: the contenders alternate instead of running back to back.
  for (int r = 0; r < rounds; ++r) {
    benchmark::RegisterBenchmark("parse/redcoro_nodes", bm_nodes<loop::inlined>)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("parse/redcoro_typed", bm_typed<loop::inlined>)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("parse/redcoro_nodes_node_sink", bm_nodes<loop::node_sink>)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("parse/redcoro_typed_node_sink", bm_typed<loop::node_sink>)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("parse/hiredis_objects", bm_hiredis_objects)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("parse/hiredis_no_objects", bm_hiredis_no_objects)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("request/redcoro_reused", bm_request_reused);
    benchmark::RegisterBenchmark("request/redcoro_fresh", bm_request_fresh<false>);
    benchmark::RegisterBenchmark("request/redcoro_fresh_known", bm_request_fresh<true>);
    benchmark::RegisterBenchmark("request/hiredis_format", bm_request_hiredis);
  }
  bench::collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const double mb = 1024.0 * 1024.0;
  const double base_objects = reporter.median("parse/hiredis_objects", "items_per_second");
  const double base_plain = reporter.median("parse/hiredis_no_objects", "items_per_second");
  std::printf("\nParsing (medians of %d rounds, CPU time):\n\n", rounds);
  std::vector<std::vector<std::string>> rows;
  auto parse_row = [&](const char* label, const std::string& name, double per_reply) {
    const double rps = reporter.median(name, "items_per_second");
    rows.push_back({label, bench::format_number(reporter.median(name, "bytes_per_second") / mb),
                    bench::format_number(rps), bench::format_number(per_reply, 3),
                    bench::format_ratio(rps / base_objects),
                    bench::format_ratio(rps / base_plain)});
  };
  parse_row("redcoro nodes", "parse/redcoro_nodes", allocs.nodes);
  parse_row("redcoro typed (reused)", "parse/redcoro_typed", allocs.typed);
  parse_row("redcoro nodes, node_sink", "parse/redcoro_nodes_node_sink", allocs.nodes_erased);
  parse_row("redcoro typed, node_sink", "parse/redcoro_typed_node_sink", allocs.typed_erased);
  parse_row("hiredis reply objects", "parse/hiredis_objects", allocs.hiredis_objects);
  parse_row("hiredis fn=NULL", "parse/hiredis_no_objects", allocs.hiredis_no_objects);
  bench::print_table(
      {"decoder", "MB/s", "replies/s", "allocs/reply", "vs hiredis objects", "vs hiredis fn=NULL"},
      rows);

  std::printf("\nBuilding GET/SET requests (medians):\n\n");
  rows.clear();
  const double base_format = reporter.median("request/hiredis_format", "items_per_second");
  auto request_row = [&](const char* label, const std::string& name, double per_request) {
    const double rps = reporter.median(name, "items_per_second");
    rows.push_back({label, bench::format_number(1e9 / rps, 1), bench::format_number(rps),
                    bench::format_number(per_request, 2), bench::format_ratio(rps / base_format)});
  };
  request_row("redcoro request (reused)", "request/redcoro_reused", allocs.request_reused);
  request_row("redcoro request (new each time)", "request/redcoro_fresh", allocs.request_fresh);
  request_row("redcoro request (new each time, \"GET\"_cmd)", "request/redcoro_fresh_known",
              allocs.request_fresh_known);
  request_row("hiredis redisFormatCommandArgv", "request/hiredis_format", allocs.request_hiredis);
  bench::print_table({"builder", "ns/request", "requests/s", "allocs/request", "vs hiredis"}, rows);
  return 0;
}
