// redcoro-bench's options, workloads and a short real run against a server of its own.

#include "support/redis_server.hpp"
#include "tool/load.hpp"
#include "tool/options.hpp"
#include "tool/report.hpp"
#include "tool/workload.hpp"
#include <redcoro/proto/request.hpp>

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace redcoro::bench;

namespace {

parse_result parse(std::vector<std::string> args) {
  std::vector<const char*> argv{"redcoro-bench"};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

std::string error_of(std::vector<std::string> args) {
  auto r = parse(std::move(args));
  CHECK_FALSE(r.opts.has_value());
  return r.message;
}

}  // namespace

TEST_CASE("options: values in both spellings, and defaults", "[bench][options]") {
  auto r = parse({"--threads=2", "--connections", "3", "--concurrency=4", "--pipeline", "16",
                  "--ratio", "1:3", "--data-size", "10-20", "--key-space=500", "--key-pattern",
                  "zipf:1.2", "--requests", "1000", "--seed", "9", "--no-live"});
  REQUIRE(r.opts);
  const options& o = *r.opts;
  CHECK(o.threads == 2);
  CHECK(o.connections == 3);
  CHECK(o.concurrency == 4);
  CHECK(o.pipeline == 16);
  CHECK(o.set_ratio == 1);
  CHECK(o.get_ratio == 3);
  CHECK(o.data_min == 10);
  CHECK(o.data_max == 20);
  CHECK(o.key_space == 500);
  CHECK(o.key_pattern == key_pattern_kind::zipf);
  CHECK(o.zipf_s == Approx(1.2));
  CHECK(o.requests == 1000);
  CHECK(o.duration_s == 0);
  CHECK(o.seed == 9);
  CHECK_FALSE(o.live);

  auto d = parse({});
  REQUIRE(d.opts);
  CHECK(d.opts->duration_s == 10);  // no length given: ten seconds
  CHECK(d.opts->port == 0);         // no target: a server of its own

  auto c = parse(
      {"--command", "ZADD __key__ 1 __data__", "--weight", "3", "--command", "ZCARD __key__"});
  REQUIRE(c.opts);
  REQUIRE(c.opts->commands.size() == 2);
  CHECK(c.opts->commands[0].words == std::vector<std::string>{"ZADD", "__key__", "1", "__data__"});
  CHECK(c.opts->commands[0].weight == 3);
  CHECK(c.opts->commands[1].weight == 1);

  auto h = parse({"--help"});
  CHECK(h.help);
  CHECK(h.message.find("--concurrency") != std::string::npos);
}

TEST_CASE("options: bad ones say what is wrong", "[bench][options]") {
  CHECK(error_of({"--threads", "zero"}).find("--threads") != std::string::npos);
  CHECK(error_of({"--threads", "0"}).find("out of range") != std::string::npos);
  CHECK(error_of({"--bogus"}).find("unknown option --bogus") != std::string::npos);
  CHECK(error_of({"--port"}).find("needs a value") != std::string::npos);
  CHECK(error_of({"--ratio", "3"}).find("SETS:GETS") != std::string::npos);
  CHECK(error_of({"--ratio", "0:0"}).find("sends nothing") != std::string::npos);
  CHECK(error_of({"--requests", "10", "--duration", "1"}).find("one of them") != std::string::npos);
  CHECK(error_of({"--key-pattern", "pareto"}).find("pareto") != std::string::npos);
  CHECK(error_of({"--data-size", "20-10"}).find("MAX < MIN") != std::string::npos);
  CHECK(error_of({"--weight", "2"}).find("must follow a --command") != std::string::npos);
  CHECK(error_of({"--tls"}).find("--tls needs --port") != std::string::npos);
  CHECK(error_of({"--cert", "c.pem", "--port", "1"}).find("go together") != std::string::npos);
  CHECK(error_of({"--requests", "5", "--concurrency", "16"}).find("fewer than") !=
        std::string::npos);
  CHECK(error_of({"--tls", "--port", "6380", "--driver", "hiredis"}).find("no TLS") !=
        std::string::npos);
  CHECK(error_of({"--compare", "--command", "PING"}).find("--compare") != std::string::npos);
  CHECK(error_of({"--rate", "100", "--driver", "hiredis"}).find("redcoro driver only") !=
        std::string::npos);
  CHECK(error_of({"--compress"}).find("unknown option") != std::string::npos);
  CHECK(error_of({"--no-live=1"}).find("takes no value") != std::string::npos);
}

TEST_CASE("workload: key patterns stay in range and are repeatable", "[bench][workload]") {
  options o;
  o.key_space = 1000;
  for (auto kind : {key_pattern_kind::uniform, key_pattern_kind::sequential, key_pattern_kind::zipf,
                    key_pattern_kind::gaussian}) {
    o.key_pattern = kind;
    key_chooser a(o, 3, 8), b(o, 3, 8);
    std::map<std::uint64_t, int> seen;
    for (int i = 0; i < 20000; ++i) {
      const auto k = a.next();
      REQUIRE(k < 1000);
      REQUIRE(k == b.next());  // same seed and stream: same keys
      ++seen[k];
    }
    if (kind == key_pattern_kind::zipf) {
      // The hottest key is far hotter than a key in the middle.
      CHECK(seen[0] > 20 * std::max(1, seen[500]));
    }
    if (kind == key_pattern_kind::sequential) {
      // Stream 3 of 8 walks 3, 11, 19, ...: the 8 streams split the key space between them.
      CHECK(seen.size() == 125);
      CHECK(std::all_of(seen.begin(), seen.end(), [](const auto& e) { return e.first % 8 == 3; }));
    }
    if (kind == key_pattern_kind::gaussian) {
      CHECK(seen[500] > seen[20]);
    }
  }
}

TEST_CASE("workload: values depend on their key, and requests follow the ratio",
          "[bench][workload]") {
  options o;
  o.data_min = 10;
  o.data_max = 40;
  o.pipeline = 10;
  o.set_ratio = 1;
  o.get_ratio = 3;
  key_values kv(o);
  std::string a, b, c;
  kv.value(7, a);
  kv.value(7, b);
  kv.value(8, c);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.size() >= 10);
  CHECK(a.size() <= 40);
  request_maker maker(o, kv, 0, 1);
  redcoro::proto::request req;
  std::vector<sent_command> sent;
  int sets = 0, total = 0;
  for (int i = 0; i < 400; ++i) {
    maker.next(req, sent);
    REQUIRE(req.commands() == 10);
    REQUIRE(sent.size() == 10);
    for (const auto& s : sent) {
      sets += s.what == sent_command::kind::set;
      ++total;
    }
  }
  CHECK(sets > total / 4 - total / 20);
  CHECK(sets < total / 4 + total / 20);
}

TEST_CASE("a short run against a server of its own: figures, JSON and HTML", "[bench][live]") {
  redcoro::test::redis_server server;
  const target t{"127.0.0.1", server.port(), ""};
  auto parsed = parse({"--requests", "4000", "--connections", "2", "--concurrency", "4",
                       "--pipeline", "4", "--ratio", "1:1", "--key-space", "200", "--no-live"});
  REQUIRE(parsed.opts);
  std::atomic<bool> interrupted{false};
  std::vector<run_result> runs;
  runs.push_back(run_redcoro(*parsed.opts, t, interrupted));
  runs.push_back(run_hiredis(*parsed.opts, t, interrupted));
  for (const auto& r : runs) {
    CHECK(r.requests == 4000);
    CHECK(r.ops == 16000);
    CHECK(r.latency.count() == 4000);
    CHECK(r.hits > 0);
    CHECK(r.verify_failures == 0);
    CHECK(r.errors.empty());
    CHECK(r.ops_per_s > 0);
    CHECK(r.cpu_us_per_op > 0);
  }

  std::ostringstream json;
  write_json(json, parsed.opts->describe(), runs);
  simdjson::dom::parser p;
  simdjson::padded_string text(json.str());
  simdjson::dom::element doc;
  REQUIRE(p.parse(text).get(doc) == simdjson::SUCCESS);
  simdjson::dom::array list;
  REQUIRE(doc["runs"].get_array().get(list) == simdjson::SUCCESS);
  CHECK(list.size() == 2);
  for (simdjson::dom::element run : list) {
    std::uint64_t ops = 0;
    CHECK(run["ops"].get_uint64().get(ops) == simdjson::SUCCESS);
    CHECK(ops == 16000);
    double p99 = 0;
    CHECK(run["latency_us"]["p99"].get_double().get(p99) == simdjson::SUCCESS);
    CHECK(p99 > 0);
  }
  std::string_view pipeline;
  CHECK(doc["settings"]["pipeline"].get_string().get(pipeline) == simdjson::SUCCESS);
  CHECK(pipeline == "4");

  std::ostringstream html;
  write_html(html, parsed.opts->describe(), runs);
  CHECK(html.str().find("id=\"throughput\"") != std::string::npos);
  CHECK(html.str().find("id=\"latency\"") != std::string::npos);
  CHECK(html.str().find("hiredis") != std::string::npos);
}

TEST_CASE("a command-template run counts server errors by kind", "[bench][live]") {
  redcoro::test::redis_server server;
  const target t{"127.0.0.1", server.port(), ""};
  // ZADD on keys that also get a plain SET: WRONGTYPE errors, counted, not hidden.
  auto parsed =
      parse({"--requests", "2000", "--concurrency", "4", "--command", "SET __key__ __data__",
             "--command", "ZADD __key__ 1 m", "--key-space", "20", "--no-live"});
  REQUIRE(parsed.opts);
  std::atomic<bool> interrupted{false};
  const run_result r = run_redcoro(*parsed.opts, t, interrupted);
  CHECK(r.ops == 2000);
  REQUIRE(r.errors.count("WRONGTYPE") == 1);
  CHECK(r.errors.at("WRONGTYPE") > 0);
  CHECK(r.errors.at("WRONGTYPE") < 2000);
}

TEST_CASE("a --client-cache run reads through the cache and checks what it reads",
          "[bench][live][tracking]") {
  auto sized = parse({"--client-cache", "64m"});
  REQUIRE(sized.opts);
  CHECK(sized.opts->client_cache == 64u << 20);
  CHECK(error_of({"--client-cache", "1m", "--cluster"}).find("--client-cache") !=
        std::string::npos);
  CHECK(error_of({"--client-cache", "lots"}).find("--client-cache") != std::string::npos);

  redcoro::test::redis_server server;
  const target t{"127.0.0.1", server.port(), ""};
  auto parsed =
      parse({"--requests", "20000", "--concurrency", "8", "--ratio", "1:19", "--key-space", "100",
             "--key-pattern", "zipf:0.99", "--client-cache", "1m", "--no-live"});
  REQUIRE(parsed.opts);
  std::atomic<bool> interrupted{false};
  const run_result r = run_redcoro(*parsed.opts, t, interrupted);
  CHECK(r.driver == "redcoro+client-cache");
  CHECK(r.ops == 20000);
  CHECK(r.errors.empty());
  CHECK(r.verify_failures == 0);  // every value read back is the one written under its key
  CHECK(r.local_reads > 0);
  CHECK(r.local_hits > 0);
  CHECK(r.local_hits <= r.local_reads);
}
