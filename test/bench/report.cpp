// redcoro-bench's reports: the JSON parses and holds the figures, the HTML is well formed and
// escaped, the summary table has its ratio columns, the live line its format.

#include "tool/report.hpp"

#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace redcoro::bench;

namespace {

// Two runs with known figures: hiredis at half redcoro's throughput, twice its latency and
// CPU per op.
std::vector<run_result> two_runs() {
  std::vector<run_result> runs(2);
  run_result& a = runs[0];
  a.driver = "redcoro";
  a.duration_s = 10;
  a.requests = 1000;
  a.ops = 10000;
  a.ops_per_s = 1000;
  a.cpu_us_per_op = 2.5;
  a.hits = 600;
  a.misses = 400;
  a.errors = {{"timeout", 3}, {"ERR", 1}};
  for (std::uint64_t v = 1; v <= 10000; ++v)
    a.latency.record(v * 100);  // 100 ns .. 1 ms
  for (int s = 1; s <= 10; ++s)
    a.timeline.push_back({double(s), 1000.0 + s, 500'000, 990'000, s == 3 ? 4u : 0u});

  run_result& b = runs[1];
  b.driver = "hiredis";
  b.duration_s = 10;
  b.requests = 500;
  b.ops = 5000;
  b.ops_per_s = 500;
  b.cpu_us_per_op = 5;
  b.hits = 300;
  b.misses = 200;
  b.verify_failures = 2;
  for (std::uint64_t v = 1; v <= 10000; ++v)
    b.latency.record(v * 200);
  for (int s = 1; s <= 10; ++s)
    b.timeline.push_back({double(s), 500.0, 1'000'000, 1'980'000, 0});
  return runs;
}

const settings some_settings = {
    {"host", "127.0.0.1"}, {"port", "6379"}, {"threads", "2"}, {"pipeline", "1"}};

std::string json_of(const settings& s, const std::vector<run_result>& runs) {
  std::ostringstream out;
  write_json(out, s, runs);
  return out.str();
}

std::string html_of(const settings& s, const std::vector<run_result>& runs) {
  std::ostringstream out;
  write_html(out, s, runs);
  return out.str();
}

std::string summary_of(const std::vector<run_result>& runs) {
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  print_summary(f, runs);
  std::rewind(f);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  std::fclose(f);
  return text;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Whether every element opened in `html` is closed, innermost first; void elements and
// self-closing ones (<line .../>) need no end tag. Returns what is wrong, empty when nothing.
std::string check_tags(std::string_view html) {
  static const std::vector<std::string_view> void_elements = {
      "area",  "base", "br",   "col",    "embed", "hr", "img",
      "input", "link", "meta", "source", "track", "wbr"};
  std::vector<std::string> open;
  std::size_t pos = 0;
  while ((pos = html.find('<', pos)) != std::string_view::npos) {
    if (html.substr(pos, 4) == "<!--") {
      pos = html.find("-->", pos);
      if (pos == std::string_view::npos) return "unterminated comment";
      continue;
    }
    const std::size_t end = html.find('>', pos);
    if (end == std::string_view::npos) return "unterminated tag at " + std::to_string(pos);
    std::string_view tag = html.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.starts_with("!")) continue;  // <!DOCTYPE html>
    const bool closing = tag.starts_with("/");
    if (closing) tag.remove_prefix(1);
    const std::size_t name_end = tag.find_first_of(" \t\n/");
    const std::string name(tag.substr(0, name_end));
    if (name.empty()) return "a tag without a name near " + std::to_string(pos);
    if (closing) {
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes <" + (open.empty() ? "nothing" : open.back()) + ">";
      open.pop_back();
    } else if (!tag.ends_with("/") &&
               std::find(void_elements.begin(), void_elements.end(), name) == void_elements.end()) {
      open.push_back(name);
    }
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

}  // namespace

TEST_CASE("report: the JSON parses and holds the runs' figures") {
  const auto runs = two_runs();
  const std::string text = json_of(some_settings, runs);
  CHECK(contains(text, "\"ops_per_s\": 1000,"));  // whole numbers as such, not 1e+03
  const simdjson::padded_string json(text);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);

  CHECK(std::string_view(doc["settings"]["host"]) == "127.0.0.1");
  CHECK(std::string_view(doc["settings"]["pipeline"]) == "1");
  CHECK(simdjson::dom::object(doc["settings"]).size() == some_settings.size());

  const simdjson::dom::array json_runs = doc["runs"];
  REQUIRE(json_runs.size() == 2);
  const simdjson::dom::element a = json_runs.at(0), b = json_runs.at(1);
  CHECK(std::string_view(a["driver"]) == "redcoro");
  CHECK(std::uint64_t(a["ops"]) == 10000);
  CHECK(std::uint64_t(a["requests"]) == 1000);
  CHECK(double(a["ops_per_s"]) == 1000);
  CHECK(double(a["duration_s"]) == 10);
  CHECK(double(a["cpu_us_per_op"]) == 2.5);
  CHECK(std::uint64_t(a["hits"]) == 600);
  CHECK(std::uint64_t(a["misses"]) == 400);
  CHECK(std::uint64_t(a["verify_failures"]) == 0);
  CHECK(bool(a["partial"]) == false);
  CHECK(std::uint64_t(b["verify_failures"]) == 2);

  const simdjson::dom::element lat = a["latency_us"];
  CHECK(double(lat["p99"]) == double(runs[0].latency.percentile(99)) / 1e3);
  CHECK(double(lat["p99"]) == Approx(990).epsilon(0.01));
  CHECK(double(lat["p50"]) == Approx(500).epsilon(0.01));
  CHECK(double(lat["p99_9"]) == double(runs[0].latency.percentile(99.9)) / 1e3);
  CHECK(double(lat["p99_99"]) == double(runs[0].latency.percentile(99.99)) / 1e3);
  CHECK(double(lat["p90"]) == double(runs[0].latency.percentile(90)) / 1e3);
  CHECK(double(lat["min"]) == 0.1);
  CHECK(double(lat["max"]) == 1000);
  CHECK(double(lat["mean"]) == Approx(500.05));
  CHECK(std::uint64_t(lat["count"]) == 10000);

  const simdjson::dom::object errors = a["errors"];
  CHECK(errors.size() == 2);
  CHECK(std::uint64_t(errors["timeout"]) == 3);
  CHECK(std::uint64_t(errors["ERR"]) == 1);
  CHECK(simdjson::dom::object(b["errors"]).size() == 0);

  const simdjson::dom::array timeline = a["timeline"];
  REQUIRE(timeline.size() == 10);
  CHECK(double(timeline.at(2)["t_s"]) == 3);
  CHECK(double(timeline.at(2)["ops_per_s"]) == 1003);
  CHECK(double(timeline.at(2)["p50_us"]) == 500);
  CHECK(double(timeline.at(2)["p99_us"]) == 990);
  CHECK(std::uint64_t(timeline.at(2)["errors"]) == 4);

  const simdjson::dom::array percentiles = a["percentiles"];
  const auto curve = runs[0].latency.percentile_curve();
  REQUIRE(percentiles.size() == curve.size());
  for (std::size_t i = 0; i < curve.size(); ++i) {
    const simdjson::dom::array point = percentiles.at(i);
    REQUIRE(point.size() == 2);
    CHECK(double(point.at(0)) == curve[i].first);
    CHECK(double(point.at(1)) == double(curve[i].second) / 1e3);
  }
}

TEST_CASE("report: the JSON's unknowns are null") {
  run_result r;
  r.driver = "redis-benchmark";
  r.cpu_us_per_op = -1;
  r.reported_percentiles_us = {{"p50", 120.5}, {"p99", 800}, {"max", 2000}};
  run_result empty;
  empty.driver = "nothing";
  const simdjson::padded_string json(json_of({}, {r, empty}));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(simdjson::dom::object(doc["settings"]).size() == 0);
  const simdjson::dom::element a = doc["runs"].at(0);
  CHECK(a["cpu_us_per_op"].is_null());
  CHECK(double(a["latency_us"]["p50"]) == 120.5);
  CHECK(double(a["latency_us"]["p99"]) == 800);
  CHECK(double(a["latency_us"]["max"]) == 2000);
  CHECK(a["latency_us"]["p90"].is_null());
  CHECK(a["latency_us"]["min"].is_null());
  CHECK(std::uint64_t(a["latency_us"]["count"]) == 0);
  CHECK(double(a["reported_percentiles_us"]["p99"]) == 800);
  CHECK(simdjson::dom::array(a["percentiles"]).size() == 0);
  CHECK(simdjson::dom::array(a["timeline"]).size() == 0);
  const simdjson::dom::element e = doc["runs"].at(1);
  CHECK(e["latency_us"]["p99"].is_null());
  CHECK(double(e["cpu_us_per_op"]) == 0);
  CHECK(e["reported_percentiles_us"].error() == simdjson::NO_SUCH_FIELD);

  const simdjson::padded_string none(json_of({}, {}));
  REQUIRE(parser.parse(none).get(doc) == simdjson::SUCCESS);
  CHECK(simdjson::dom::array(doc["runs"]).size() == 0);
}

TEST_CASE("report: JSON strings are escaped") {
  const std::string tricky = "say \"hi\" to C:\\dir\\\nnext line\ttab \x01 \x1f end é";
  const std::string tricky_name = "name \"with\" \\ quotes";
  auto runs = two_runs();
  runs[0].driver = "a<b&\"c\"";
  runs[0].errors["ERR \"unknown\"\ncommand"] = 7;
  const settings s = {{"command", tricky},
                      {tricky_name, "x"},
                      {"bad utf-8",
                       "a\xff"
                       "b"}};
  const simdjson::padded_string json(json_of(s, runs));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(json).get(doc) == simdjson::SUCCESS);
  CHECK(std::string_view(doc["settings"]["command"]) == tricky);
  CHECK(std::string_view(doc["settings"][tricky_name]) == "x");
  CHECK(std::string_view(doc["settings"]["bad utf-8"]) ==
        "a\xEF\xBF\xBD"
        "b");  // U+FFFD
  CHECK(std::string_view(doc["runs"].at(0)["driver"]) == "a<b&\"c\"");
  CHECK(std::uint64_t(doc["runs"].at(0)["errors"]["ERR \"unknown\"\ncommand"]) == 7);
}

TEST_CASE("report: the HTML page") {
  auto runs = two_runs();
  runs[1].driver = "a<b&c";
  runs[1].partial = true;
  settings s = some_settings;
  s.emplace_back("command", "SET <key> \"v\" & more");
  const std::string html = html_of(s, runs);

  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(contains(html, "<svg"));
  CHECK(contains(html, "id=\"throughput\""));
  CHECK(contains(html, "id=\"latency\""));
  CHECK(contains(html, "<title>"));
  CHECK(check_tags(html) == "");
  CHECK(contains(html, "redcoro"));
  CHECK(contains(html, "a&lt;b&amp;c"));
  CHECK_FALSE(contains(html, "a<b"));
  CHECK(contains(html, "SET &lt;key&gt; &quot;v&quot; &amp; more"));
  // Nothing fetched, nothing run.
  CHECK_FALSE(contains(html, "<script"));
  CHECK_FALSE(contains(html, "http://www.w3.org/2000/svg\" src"));
  CHECK_FALSE(contains(html, "https://"));
  // The latency axis labels, and the summary's ratio column.
  CHECK(contains(html, ">99.9<"));
  CHECK(contains(html, ">vs redcoro<"));

  SECTION("the tag checker finds what is wrong") {
    CHECK(check_tags("<p><b></p></b>") != "");
    CHECK(check_tags("<div><p></p>") != "");
    CHECK(check_tags("<div><br><line x=\"1\"/></div>") == "");
  }
  SECTION("a run without histogram or timeline, and no runs at all") {
    run_result r;
    r.driver = "redis-benchmark";
    r.ops_per_s = 700;
    r.duration_s = 5;
    r.reported_percentiles_us = {{"p50", 300}, {"p95", 600}, {"p99", 900}, {"max", 3000}};
    runs.push_back(r);
    const std::string with = html_of(s, runs);
    CHECK(check_tags(with) == "");
    CHECK(contains(with, "redis-benchmark (average)"));
    CHECK(contains(with, "redis-benchmark (reported)"));
    // Long names are cut in the legends, whole in the table.
    const std::string long_name(50, 'n');
    runs[0].driver = long_name;
    const std::string cut = html_of(s, runs);
    CHECK(contains(cut, ">" + long_name + "<"));
    CHECK(contains(cut, ">" + std::string(31, 'n') + "…<"));
    const std::string none = html_of({}, {});
    CHECK(check_tags(none) == "");
    CHECK(contains(none, "no data"));
  }
}

TEST_CASE("report: the summary table") {
  const auto runs = two_runs();
  const std::string text = summary_of(runs);
  INFO(text);
  CHECK(contains(text, "redcoro"));
  CHECK(contains(text, "hiredis"));
  CHECK(contains(text, "vs redcoro"));  // the ratio column
  CHECK(contains(text, "ops/s"));
  CHECK(contains(text, "1,000"));
  CHECK(contains(text, "0.50x"));  // ops/s
  CHECK(contains(text, "2.00x"));  // CPU per op
  const double p99_ratio =
      double(runs[1].latency.percentile(99)) / double(runs[0].latency.percentile(99));
  char want[32];
  std::snprintf(want, sizeof want, "%.2fx", p99_ratio);
  CHECK(contains(text, want));
  for (const char* row : {"requests/s", "latency p50", "latency p90", "latency p99",
                          "latency p99.9", "latency p99.99", "latency max", "errors", "timeout",
                          "hits / misses", "600 / 400", "verify failures", "CPU µs/op"})
    CHECK(contains(text, row));
  // redcoro's p99: 990 µs to within the histogram's resolution.
  std::snprintf(want, sizeof want, "%.1f µs", double(runs[0].latency.percentile(99)) / 1e3);
  CHECK(contains(text, want));
  CHECK(contains(text, "991.2 µs"));

  // A control character in an error kind does not break the table's lines.
  auto odd = runs;
  odd[0].errors["two\nlines"] = 1;
  const std::string flat = summary_of(odd);
  CHECK(contains(flat, "two lines"));

  // One run: no ratio column.
  const std::string one = summary_of({runs[0]});
  CHECK_FALSE(contains(one, "vs "));
  CHECK_FALSE(contains(one, "x\n"));
}

TEST_CASE("report: the live line") {
  CHECK(live_line(3, 812345, 210'000, 950'000, 0) ==
        "[  3s] 812,345 ops/s  p50 0.21 ms  p99 0.95 ms  errors 0");
  CHECK(live_line(120, 999.6, 45'000, 12'345'678, 1234) ==
        "[120s] 1,000 ops/s  p50 0.045 ms  p99 12.35 ms  errors 1,234");
  CHECK(live_line(0, 0, 0, 0, 0) == "[  0s] 0 ops/s  p50 0.000 ms  p99 0.000 ms  errors 0");
}
