// bench_cache: the cache codec's JSON path against Boost.JSON, in the same run.
//
// The value is a described struct (a user profile: strings, numbers, a bool, a nested struct,
// a map, a vector of structs, an optional, an enum) whose JSON is about 1 KiB. 16 variants
// of it (different names, lengths and numbers) are cycled so that no branch history fits one
// document.
//
//   decode: redcoro::cache::decode (simdjson on-demand, straight into the struct) against
//           boost::json::parse + boost::json::value_to, on the same bytes (Boost.JSON's own
//           serialization, so the baseline reads its native form).
//   encode: redcoro::cache::encode (appends to a std::string, no DOM) against
//           boost::json::serialize(boost::json::value_from(x)).
//
// Both sides produce a new object or string per call, as value_to and serialize do; the
// "reused" rows decode into / encode to the same object or buffer each time, which is what
// a cache serving a hot key does. The "Boost.JSON, reused parser" row parses with one
// boost::json::parser and a monotonic resource over a reused buffer, Boost.JSON's fastest
// documented setup, for reference.
//
// Before timing: every document decodes to equal structs both ways, and each side's encoding
// decodes (with either library) back to the original. The doubles are short decimals (48.8826,
// not 48.8686 + 0.014): Boost.JSON 1.81 does not always read a 17-digit double back exactly
// (48.882600000000004 comes back as 48.882599999999996; 1.83 added a precise mode), and the
// check must not fail on the baseline's rounding.
//
// Options (besides Google Benchmark's): --rounds=N (default 5) timed rounds per contender,
// alternating.

#include "support/alloc_counter.hpp"
#include "support/report.hpp"
#include <redcoro/cache/codec.hpp>

#include <benchmark/benchmark.h>
#include <boost/describe.hpp>
#include <boost/json.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cache = redcoro::cache;
namespace json = boost::json;
namespace bench = redcoro::bench;

namespace model {

enum class role { viewer, editor, admin };
BOOST_DESCRIBE_ENUM(role, viewer, editor, admin)

struct geo {
  double lat = 0;
  double lon = 0;
  bool operator==(const geo&) const = default;
};
BOOST_DESCRIBE_STRUCT(geo, (), (lat, lon))

struct address {
  std::string street;
  std::string city;
  std::string zip;
  std::string country;
  geo location;
  bool operator==(const address&) const = default;
};
BOOST_DESCRIBE_STRUCT(address, (), (street, city, zip, country, location))

struct payment {
  std::string at;  // a string on both sides: Boost.JSON has no time_point mapping
  double amount = 0;
  std::string note;
  bool operator==(const payment&) const = default;
};
BOOST_DESCRIBE_STRUCT(payment, (), (at, amount, note))

struct user {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  bool active = false;
  double score = 0;
  std::vector<std::string> tags;
  address home;
  std::map<std::string, std::int64_t> limits;
  std::vector<payment> history;
  role access = role::viewer;
  std::optional<std::string> nickname;
  std::string bio;
  std::vector<std::int64_t> counters;
  std::uint32_t logins = 0;
  bool operator==(const user&) const = default;
};
BOOST_DESCRIBE_STRUCT(user, (),
                      (id, name, email, active, score, tags, home, limits, history, access,
                       nickname, bio, counters, logins))

}  // namespace model

namespace {

constexpr std::size_t variants = 16;

model::user make_user(std::size_t i) {
  static const std::array<const char*, 8> names = {
      "Alice Example",   "Bob",           "Chloé Durand", "Dmitri Ivanov-Petrov", "Eve",
      "François Martin", "Grace O'Neill", "Håkon Larsen"};
  model::user u;
  u.id = 100000007 + static_cast<std::int64_t>(i) * 7919;
  u.name = names[i % names.size()];
  u.email = "user" + std::to_string(i) + "@example.com";
  u.active = i % 3 != 0;
  u.score = 98.625 - static_cast<double>(i) * 1.375;
  u.tags = {"admin", "ops", "on-call", "europe", "beta-tester"};
  u.tags.resize(3 + i % 3);
  u.home = {std::to_string(12 + i) + " Rue de la Paix",
            "Paris",
            "7500" + std::to_string(i % 10),
            "FR",
            {static_cast<double>(488686 + 10 * i) / 10000, 2.3314}};
  u.limits = {{"daily", 1000 + static_cast<std::int64_t>(i)}, {"monthly", 25000}, {"burst", 50}};
  u.history = {
      {"2026-12-06T07:00:00.123Z", 12.5, "coffee"},
      {"2026-12-06T08:00:00.456Z", -3.25, "refund \"partial\""},
      {"2026-12-06T09:30:00.000Z", 100.0 + static_cast<double>(i), "line\nbreak"},
      {"2026-12-07T10:15:00.000Z", 7.75, "taxi \u2192 airport, tip included"},
  };
  u.access = static_cast<model::role>(i % 3);
  if (i % 2) u.nickname = "nick" + std::to_string(i);
  u.bio =
      "Über-engineer. Loves caching, coroutines and éclairs. Writes C++ for fun and profit; "
      "speaks at meetups about latency, allocation and why the tail matters. Ask about the "
      "night the cache saved Black Friday.";
  for (std::int64_t k = 0; k < 16; ++k)
    u.counters.push_back(k * k * static_cast<std::int64_t>(i + 1));
  u.logins = static_cast<std::uint32_t>(4000000000u - i);
  return u;
}

struct corpus {
  std::vector<model::user> users;
  std::vector<std::string> docs;  // Boost.JSON's serialization of each user
  std::size_t bytes = 0;
};

const corpus& input() {
  static const corpus c = [] {
    corpus k;
    for (std::size_t i = 0; i < variants; ++i) {
      k.users.push_back(make_user(i));
      k.docs.push_back(json::serialize(json::value_from(k.users.back())));
      k.bytes += k.docs.back().size();
    }
    return k;
  }();
  return c;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "check failed: %s\n", what.c_str());
  std::exit(1);
}

model::user decode_redcoro(std::string_view doc) {
  model::user u;
  cache::codec_error where;
  if (cache::decode(doc, u, where)) die(where.to_string());
  return u;
}

model::user decode_boost(std::string_view doc) {
  return json::value_to<model::user>(json::parse(doc));
}

std::string encode_redcoro(const model::user& u) {
  std::string out;
  cache::codec_error where;
  if (cache::encode(u, out, where)) die(where.to_string());
  return out;
}

std::string encode_boost(const model::user& u) {
  return json::serialize(json::value_from(u));
}

// --- benchmarks -----------------------------------------------------------------------------

void set_rates(benchmark::State& state) {
  const corpus& c = input();
  const auto n = static_cast<std::int64_t>(state.iterations());
  state.SetItemsProcessed(n);
  state.SetBytesProcessed(n * static_cast<std::int64_t>(c.bytes / c.docs.size()));
}

void bm_decode_redcoro(benchmark::State& state) {
  const corpus& c = input();
  cache::codec_error where;
  std::size_t i = 0;
  for (auto _ : state) {
    model::user u;
    if (cache::decode(c.docs[i], u, where)) std::abort();
    benchmark::DoNotOptimize(u);
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_decode_redcoro_reused(benchmark::State& state) {
  const corpus& c = input();
  cache::codec_error where;
  model::user u;
  std::size_t i = 0;
  for (auto _ : state) {
    if (cache::decode(c.docs[i], u, where)) std::abort();
    benchmark::DoNotOptimize(u);
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_decode_boost(benchmark::State& state) {
  const corpus& c = input();
  std::size_t i = 0;
  for (auto _ : state) {
    model::user u = json::value_to<model::user>(json::parse(c.docs[i]));
    benchmark::DoNotOptimize(u);
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_decode_boost_reused(benchmark::State& state) {
  const corpus& c = input();
  std::vector<unsigned char> arena(64 * 1024);
  json::parser p;
  std::size_t i = 0;
  for (auto _ : state) {
    {
      json::monotonic_resource mr(arena.data(), arena.size());
      p.reset(&mr);
      p.write(c.docs[i]);
      const json::value v = p.release();
      model::user u = json::value_to<model::user>(v);
      benchmark::DoNotOptimize(u);
    }
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_encode_redcoro(benchmark::State& state) {
  const corpus& c = input();
  cache::codec_error where;
  std::size_t i = 0;
  for (auto _ : state) {
    std::string out;
    if (cache::encode(c.users[i], out, where)) std::abort();
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_encode_redcoro_reused(benchmark::State& state) {
  const corpus& c = input();
  cache::codec_error where;
  std::string out;
  std::size_t i = 0;
  for (auto _ : state) {
    out.clear();
    if (cache::encode(c.users[i], out, where)) std::abort();
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % variants;
  }
  set_rates(state);
}

void bm_encode_boost(benchmark::State& state) {
  const corpus& c = input();
  std::size_t i = 0;
  for (auto _ : state) {
    std::string out = json::serialize(json::value_from(c.users[i]));
    benchmark::DoNotOptimize(out.data());
    i = (i + 1) % variants;
  }
  set_rates(state);
}

// --- checks before timing -------------------------------------------------------------------

struct allocation_figures {
  double decode, decode_reused, decode_boost, decode_boost_reused;
  double encode, encode_reused, encode_boost;
};

template <class F>
double allocations_per(F&& f) {
  constexpr std::size_t passes = 100;
  for (std::size_t i = 0; i < variants; ++i)
    f(i);
  bench::allocation_scope scope;
  for (std::size_t k = 0; k < passes; ++k)
    for (std::size_t i = 0; i < variants; ++i)
      f(i);
  return static_cast<double>(scope.count()) / static_cast<double>(passes * variants);
}

allocation_figures check_and_count() {
  const corpus& c = input();
  for (std::size_t i = 0; i < variants; ++i) {
    const model::user& u = c.users[i];
    // Decoding: the same bytes, equal structs, and equal to what was serialized.
    const model::user ours = decode_redcoro(c.docs[i]);
    const model::user theirs = decode_boost(c.docs[i]);
    if (!(ours == theirs) || !(ours == u))
      die("decoders disagree on document " + std::to_string(i));
    // Encoding: each side's text reads back, with either library, as the original.
    const std::string our_text = encode_redcoro(u);
    const std::string their_text = encode_boost(u);
    if (!(decode_boost(our_text) == u) || !(decode_redcoro(our_text) == u))
      die("redcoro's encoding does not read back: " + our_text);
    if (!(decode_redcoro(their_text) == u))
      die("Boost.JSON's encoding does not read back: " + their_text);
  }
  std::printf(
      "check: %zu documents decode to equal structs with redcoro and Boost.JSON; both\n"
      "       encodings read back, with either library, as the original\n\n",
      variants);

  allocation_figures a{};
  model::user reused;
  cache::codec_error where;
  std::string buffer;
  a.decode = allocations_per([&](std::size_t i) { decode_redcoro(c.docs[i]); });
  a.decode_reused = allocations_per([&](std::size_t i) {
    if (cache::decode(c.docs[i], reused, where)) std::abort();
  });
  a.decode_boost = allocations_per([&](std::size_t i) { decode_boost(c.docs[i]); });
  std::vector<unsigned char> arena(64 * 1024);
  json::parser p;
  a.decode_boost_reused = allocations_per([&](std::size_t i) {
    json::monotonic_resource mr(arena.data(), arena.size());
    p.reset(&mr);
    p.write(c.docs[i]);
    const json::value v = p.release();
    benchmark::DoNotOptimize(json::value_to<model::user>(v));
  });
  a.encode = allocations_per([&](std::size_t i) { encode_redcoro(c.users[i]); });
  a.encode_reused = allocations_per([&](std::size_t i) {
    buffer.clear();
    if (cache::encode(c.users[i], buffer, where)) std::abort();
  });
  a.encode_boost = allocations_per([&](std::size_t i) { encode_boost(c.users[i]); });
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
  std::printf(
      "input: %zu variants of a described struct, %zu bytes of JSON each on average; "
      "%d rounds per contender\n",
      variants, c.bytes / variants, rounds);
  const allocation_figures allocs = check_and_count();

  // Round-robin registration: the contenders alternate instead of running back to back.
  for (int r = 0; r < rounds; ++r) {
    benchmark::RegisterBenchmark("decode/redcoro", bm_decode_redcoro);
    benchmark::RegisterBenchmark("decode/redcoro_reused", bm_decode_redcoro_reused);
    benchmark::RegisterBenchmark("decode/boost_json", bm_decode_boost);
    benchmark::RegisterBenchmark("decode/boost_json_reused", bm_decode_boost_reused);
    benchmark::RegisterBenchmark("encode/redcoro", bm_encode_redcoro);
    benchmark::RegisterBenchmark("encode/redcoro_reused", bm_encode_redcoro_reused);
    benchmark::RegisterBenchmark("encode/boost_json", bm_encode_boost);
  }
  bench::collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const double mb = 1024.0 * 1024.0;
  std::vector<std::vector<std::string>> rows;
  auto row = [&](const char* label, const std::string& name, double base, double per_object) {
    const double ops = reporter.median(name, "items_per_second");
    rows.push_back({label, bench::format_number(reporter.median(name, "bytes_per_second") / mb),
                    bench::format_number(1e9 / ops), bench::format_number(per_object, 1),
                    bench::format_ratio(ops / base)});
  };

  const double decode_base = reporter.median("decode/boost_json", "items_per_second");
  std::printf("\nDecoding ~1 KiB of JSON into the struct (medians of %d rounds, CPU time):\n\n",
              rounds);
  row("redcoro::cache::decode", "decode/redcoro", decode_base, allocs.decode);
  row("redcoro::cache::decode, reused object", "decode/redcoro_reused", decode_base,
      allocs.decode_reused);
  row("Boost.JSON parse + value_to", "decode/boost_json", decode_base, allocs.decode_boost);
  row("Boost.JSON, reused parser + monotonic buffer", "decode/boost_json_reused", decode_base,
      allocs.decode_boost_reused);
  bench::print_table({"decoder", "MB/s", "ns/object", "allocs/object", "vs Boost.JSON"}, rows);

  rows.clear();
  const double encode_base = reporter.median("encode/boost_json", "items_per_second");
  std::printf("\nEncoding the struct to JSON (medians of %d rounds, CPU time):\n\n", rounds);
  row("redcoro::cache::encode", "encode/redcoro", encode_base, allocs.encode);
  row("redcoro::cache::encode, reused buffer", "encode/redcoro_reused", encode_base,
      allocs.encode_reused);
  row("Boost.JSON value_from + serialize", "encode/boost_json", encode_base, allocs.encode_boost);
  bench::print_table({"encoder", "MB/s", "ns/object", "allocs/object", "vs Boost.JSON"}, rows);

  const double decode_ratio = reporter.median("decode/redcoro", "items_per_second") / decode_base;
  const double encode_ratio = reporter.median("encode/redcoro", "items_per_second") / encode_base;
  std::printf("\ntargets: decode >= 2.00x Boost.JSON: %s (%s); encode >= 1.50x: %s (%s)\n",
              bench::format_ratio(decode_ratio).c_str(), decode_ratio >= 2.0 ? "met" : "NOT met",
              bench::format_ratio(encode_ratio).c_str(), encode_ratio >= 1.5 ? "met" : "NOT met");
  return 0;
}
