#include "tool/report.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <optional>
#include <set>
#include <string_view>
#include <type_traits>

namespace redcoro::bench {

namespace {

// --- text ------------------------------------------------------------------------------

[[gnu::format(printf, 1, 2)]] std::string format(const char* f, ...) {
  char buf[256];
  va_list args;
  va_start(args, f);
  const int n = std::vsnprintf(buf, sizeof buf, f, args);
  va_end(args);
  if (n < 0) return {};
  return std::string(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

// A number for SVG or JSON: '.' as the decimal point whatever the locale.
std::string fixed(double v, int precision) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  return r.ec == std::errc{} ? std::string(buf, r.ptr) : "0";
}

// "812345" -> "812,345".
std::string group_thousands(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string group_thousands(double v) {
  if (!(v > 0) || v >= 1.8e19) return "0";
  return group_thousands(static_cast<std::uint64_t>(std::llround(v)));
}

// A latency for people: "12.34 µs" or "123.4 µs" below 1 ms, "1.23 ms" below 10 s, else "12.35 s".
std::string format_latency(double ns) {
  if (ns < 1e6) {
    const double us = ns / 1e3;
    return us < 99.995 ? format("%.2f µs", us) : format("%.1f µs", us);
  }
  if (ns < 1e10) return format("%.2f ms", ns / 1e6);
  return format("%.2f s", ns / 1e9);
}

// A latency in ms for the live line: "0.21 ms", "0.045 ms" below 0.1 ms.
std::string format_ms(std::uint64_t ns) {
  const double ms = static_cast<double>(ns) / 1e6;
  return ms < 0.0995 ? format("%.3f ms", ms) : format("%.2f ms", ms);
}

// The columns a string takes in a terminal: its UTF-8 code points.
std::size_t display_width(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `s` with every byte that does not belong to a valid UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are not valid) replaced by U+FFFD.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t len = c < 0x80              ? 1
                            : (c >> 5) == 0b110   ? 2
                            : (c >> 4) == 0b1110  ? 3
                            : (c >> 3) == 0b11110 ? 4
                                                  : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t j = 1; ok && j < len; ++j)
      ok = (static_cast<unsigned char>(s[i + j]) & 0xC0) == 0x80;
    if (ok && len > 1) {
      std::uint32_t cp = c & (0x7Fu >> len);
      for (std::size_t j = 1; j < len; ++j)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + j]) & 0x3Fu);
      constexpr std::uint32_t shortest[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= shortest[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : valid_utf8(s)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// --- figures of a run ------------------------------------------------------------------

// A latency figure of a run in ns by name ("min", "mean", "max", "p50", "p99.9", ...): from
// its histogram, or for a run without one from what its driver reported; nothing when unknown.
std::optional<double> latency_ns(const run_result& r, const std::string& name) {
  const histogram& h = r.latency;
  if (h.count() > 0) {
    if (name == "min") return static_cast<double>(h.min());
    if (name == "mean") return h.mean();
    if (name == "max") return static_cast<double>(h.max());
    return static_cast<double>(h.percentile(std::strtod(name.c_str() + 1, nullptr)));
  }
  const auto it = r.reported_percentiles_us.find(name);
  if (it != r.reported_percentiles_us.end() && std::isfinite(it->second) && it->second >= 0)
    return it->second * 1e3;
  return std::nullopt;
}

std::optional<double> cpu_per_op(const run_result& r) {
  if (r.cpu_us_per_op < 0 || !std::isfinite(r.cpu_us_per_op)) return std::nullopt;
  return r.cpu_us_per_op;
}

// "1.23x": `value` over `base`; "-" when either is unknown or base is 0.
std::string ratio(std::optional<double> value, std::optional<double> base) {
  if (!value || !base || !(*base > 0)) return "-";
  return format("%.2fx", *value / *base);
}

std::uint64_t total_errors(const run_result& r) {
  std::uint64_t n = 0;
  for (const auto& [kind, count] : r.errors)
    n += count;
  return n;
}

std::string run_label(const run_result& r) {
  return r.partial ? r.driver + " *" : r.driver;
}

// --- the summary table -----------------------------------------------------------------

// The summary as cells, for the terminal and for HTML. Column 0 holds the row names; then
// each run has a column, followed (for every run but the first) by its ratio column.
struct summary_table {
  std::vector<std::string> header;
  std::vector<bool> ratio_column;  // by column
  std::vector<std::vector<std::string>> rows;
  std::string footnote;
};

summary_table make_summary(const std::vector<run_result>& runs) {
  summary_table t;
  const bool compare = runs.size() > 1;
  t.header.push_back("");
  t.ratio_column.push_back(false);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    t.header.push_back(run_label(runs[i]));
    t.ratio_column.push_back(false);
    if (compare && i > 0) {
      t.header.push_back("vs " + runs[0].driver);
      t.ratio_column.push_back(true);
    }
  }

  // A row: `cell` gives each run's text; `value`, unless nullptr, a figure whose ratio to the
  // first run's goes in the ratio columns.
  auto add_row = [&](std::string name, auto&& cell, auto&& value) {
    std::vector<std::string> row{std::move(name)};
    for (std::size_t i = 0; i < runs.size(); ++i) {
      row.push_back(cell(runs[i]));
      if (compare && i > 0) {
        if constexpr (std::is_same_v<std::decay_t<decltype(value)>, std::nullptr_t>)
          row.push_back("");
        else
          row.push_back(ratio(value(runs[i]), value(runs[0])));
      }
    }
    t.rows.push_back(std::move(row));
  };

  add_row(
      "duration", [](const run_result& r) { return format("%.1f s", r.duration_s); }, nullptr);
  add_row(
      "ops", [](const run_result& r) { return group_thousands(r.ops); }, nullptr);
  add_row(
      "ops/s", [](const run_result& r) { return group_thousands(r.ops_per_s); },
      [](const run_result& r) { return std::optional<double>(r.ops_per_s); });
  add_row(
      "requests/s",
      [](const run_result& r) {
        return r.duration_s > 0 ? group_thousands(static_cast<double>(r.requests) / r.duration_s)
                                : std::string("-");
      },
      nullptr);
  for (const char* name : {"p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"}) {
    const std::string n = name;
    auto cell = [n](const run_result& r) {
      const auto v = latency_ns(r, n);
      return v ? format_latency(*v) : std::string("-");
    };
    if (n == "p99")
      add_row("latency " + n, cell, [n](const run_result& r) { return latency_ns(r, n); });
    else
      add_row("latency " + n, cell, nullptr);
  }
  add_row(
      "errors", [](const run_result& r) { return group_thousands(total_errors(r)); }, nullptr);
  std::set<std::string> kinds;
  for (const auto& r : runs)
    for (const auto& [kind, count] : r.errors)
      kinds.insert(kind);
  for (const auto& kind : kinds) {
    add_row(
        "  " + kind,
        [&kind](const run_result& r) {
          const auto it = r.errors.find(kind);
          return group_thousands(it == r.errors.end() ? std::uint64_t{0} : it->second);
        },
        nullptr);
  }
  add_row(
      "hits / misses",
      [](const run_result& r) {
        return group_thousands(r.hits) + " / " + group_thousands(r.misses);
      },
      nullptr);
  if (std::any_of(runs.begin(), runs.end(), [](const run_result& r) { return r.local_reads; }))
    add_row(
        "answered locally",
        [](const run_result& r) {
          if (!r.local_reads) return std::string("-");
          return format("%.1f%%", 100.0 * static_cast<double>(r.local_hits) /
                                      static_cast<double>(r.local_reads));
        },
        nullptr);
  add_row(
      "verify failures", [](const run_result& r) { return group_thousands(r.verify_failures); },
      nullptr);
  add_row(
      "CPU µs/op",
      [](const run_result& r) {
        const auto v = cpu_per_op(r);
        return v ? format("%.2f", *v) : std::string("n/a");
      },
      [](const run_result& r) { return cpu_per_op(r); });

  if (std::any_of(runs.begin(), runs.end(), [](const run_result& r) { return r.partial; }))
    t.footnote = "* interrupted: partial results";
  return t;
}

// --- JSON ------------------------------------------------------------------------------

void json_string(std::ostream& o, std::string_view s) {
  o << '"';
  for (char ch : valid_utf8(s)) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        o << "\\\"";
        break;
      case '\\':
        o << "\\\\";
        break;
      case '\b':
        o << "\\b";
        break;
      case '\f':
        o << "\\f";
        break;
      case '\n':
        o << "\\n";
        break;
      case '\r':
        o << "\\r";
        break;
      case '\t':
        o << "\\t";
        break;
      default:
        if (c < 0x20)
          o << format("\\u%04x", c);
        else
          o << ch;
    }
  }
  o << '"';
}

// Numbers in their shortest exact form, locale-independent; null when not finite.
void json_number(std::ostream& o, double v) {
  if (!std::isfinite(v)) {
    o << "null";
    return;
  }
  // Whole numbers as such: 800000, not the shortest form's 8e+05.
  if (v == std::trunc(v) && std::abs(v) < 1e15) {
    o << fixed(v, 0);
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  o.write(buf, r.ptr - buf);
}

void json_number(std::ostream& o, std::uint64_t v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  o.write(buf, r.ptr - buf);
}

void json_number(std::ostream& o, std::optional<double> v) {
  if (v)
    json_number(o, *v);
  else
    o << "null";
}

double to_us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

void json_run(std::ostream& o, const run_result& r) {
  o << "    {\n      \"driver\": ";
  json_string(o, r.driver);
  o << ",\n      \"duration_s\": ";
  json_number(o, r.duration_s);
  o << ",\n      \"requests\": ";
  json_number(o, r.requests);
  o << ",\n      \"ops\": ";
  json_number(o, r.ops);
  o << ",\n      \"ops_per_s\": ";
  json_number(o, r.ops_per_s);
  o << ",\n      \"cpu_us_per_op\": ";
  json_number(o, cpu_per_op(r));
  o << ",\n      \"hits\": ";
  json_number(o, r.hits);
  o << ",\n      \"misses\": ";
  json_number(o, r.misses);
  o << ",\n      \"local_hits\": ";
  json_number(o, r.local_hits);
  o << ",\n      \"local_reads\": ";
  json_number(o, r.local_reads);
  o << ",\n      \"verify_failures\": ";
  json_number(o, r.verify_failures);
  o << ",\n      \"partial\": " << (r.partial ? "true" : "false");

  o << ",\n      \"errors\": {";
  bool first = true;
  for (const auto& [kind, count] : r.errors) {
    o << (first ? "" : ", ");
    first = false;
    json_string(o, kind);
    o << ": ";
    json_number(o, count);
  }
  o << "}";

  // JSON's names for the figures, and the reports' own.
  static const std::pair<const char*, const char*> figures[] = {
      {"min", "min"}, {"mean", "mean"},   {"p50", "p50"},       {"p90", "p90"},
      {"p99", "p99"}, {"p99_9", "p99.9"}, {"p99_99", "p99.99"}, {"max", "max"}};
  o << ",\n      \"latency_us\": {";
  for (const auto& [key, name] : figures) {
    o << '"' << key << "\": ";
    const auto ns = latency_ns(r, name);
    json_number(o, ns ? std::optional<double>(*ns / 1e3) : std::nullopt);
    o << ", ";
  }
  o << "\"count\": ";
  json_number(o, r.latency.count());
  o << "}";

  if (!r.reported_percentiles_us.empty()) {
    o << ",\n      \"reported_percentiles_us\": {";
    first = true;
    for (const auto& [name, us] : r.reported_percentiles_us) {
      o << (first ? "" : ", ");
      first = false;
      json_string(o, name);
      o << ": ";
      json_number(o, us);
    }
    o << "}";
  }

  o << ",\n      \"percentiles\": [";
  first = true;
  for (const auto& [p, ns] : r.latency.percentile_curve()) {
    o << (first ? "" : ", ") << '[';
    first = false;
    json_number(o, p);
    o << ", ";
    json_number(o, to_us(ns));
    o << ']';
  }
  o << "]";

  o << ",\n      \"timeline\": [";
  first = true;
  for (const timeline_point& p : r.timeline) {
    o << (first ? "\n" : ",\n") << "        {\"t_s\": ";
    first = false;
    json_number(o, p.t_s);
    o << ", \"ops_per_s\": ";
    json_number(o, p.ops_per_s);
    o << ", \"p50_us\": ";
    json_number(o, to_us(p.p50_ns));
    o << ", \"p99_us\": ";
    json_number(o, to_us(p.p99_ns));
    o << ", \"errors\": ";
    json_number(o, p.errors);
    o << "}";
  }
  o << (r.timeline.empty() ? "]" : "\n      ]") << "\n    }";
}

// --- SVG charts ------------------------------------------------------------------------

constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c",
                                   "#ff7f0e", "#9467bd", "#8c564b"};

struct series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // in plot space
  bool dashed = false;
  std::size_t color = 0;
};

struct tick {
  double at;  // in plot space
  std::string label;
};

// A line chart. Coordinates are in "plot space": the caller takes log10 of a log axis.
struct chart {
  std::string id, title, x_label, y_label;
  double x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  std::vector<tick> x_ticks, y_ticks;
  std::vector<series> lines;
};

// The plot's area within the chart; the legend goes right of it.
constexpr double chart_w = 960, chart_h = 400;
constexpr double plot_x0 = 80, plot_x1 = chart_w - 250, plot_y0 = 44, plot_y1 = chart_h - 56;
constexpr std::size_t legend_chars = 32;  // longer names are cut, with "…"

// `s` cut to `n` code points, "…" marking the cut.
std::string shorten(const std::string& s, std::size_t n) {
  if (display_width(s) <= n) return s;
  std::size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((s[i] & 0xC0) != 0x80 && points++ == n - 1) break;
  }
  return s.substr(0, i) + "…";
}

std::string render(const chart& c) {
  auto px = [&](double x) {
    const double f = (std::clamp(x, c.x_lo, c.x_hi) - c.x_lo) / (c.x_hi - c.x_lo);
    return fixed(plot_x0 + f * (plot_x1 - plot_x0), 1);
  };
  auto py = [&](double y) {
    const double f = (std::clamp(y, c.y_lo, c.y_hi) - c.y_lo) / (c.y_hi - c.y_lo);
    return fixed(plot_y1 - f * (plot_y1 - plot_y0), 1);
  };
  const std::string x0 = fixed(plot_x0, 1), x1 = fixed(plot_x1, 1), y0 = fixed(plot_y0, 1),
                    y1 = fixed(plot_y1, 1);
  std::string s;
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"" + c.id + "\" class=\"chart\" width=\"" +
       fixed(chart_w, 0) + "\" height=\"" + fixed(chart_h, 0) + "\" viewBox=\"0 0 " +
       fixed(chart_w, 0) + " " + fixed(chart_h, 0) + "\" role=\"img\" aria-labelledby=\"" + c.id +
       "-title\">\n";
  s += "<title id=\"" + c.id + "-title\">" + html_escape(c.title) + "</title>\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + fixed(chart_w, 0) + "\" height=\"" + fixed(chart_h, 0) +
       "\" fill=\"#fff\"/>\n";
  s += "<text class=\"caption\" x=\"" + fixed((plot_x0 + plot_x1) / 2, 1) +
       "\" y=\"24\" text-anchor=\"middle\">" + html_escape(c.title) + "</text>\n";

  for (const tick& t : c.y_ticks) {
    const std::string y = py(t.at);
    s += "<line class=\"grid\" x1=\"" + x0 + "\" x2=\"" + x1 + "\" y1=\"" + y + "\" y2=\"" + y +
         "\"/>\n";
    s += "<text x=\"" + fixed(plot_x0 - 8, 1) + "\" y=\"" + y + "\" dy=\"4\" text-anchor=\"end\">" +
         html_escape(t.label) + "</text>\n";
  }
  for (const tick& t : c.x_ticks) {
    const std::string x = px(t.at);
    s += "<line class=\"grid\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + y0 + "\" y2=\"" + y1 +
         "\"/>\n";
    s += "<text x=\"" + x + "\" y=\"" + fixed(plot_y1 + 18, 1) + "\" text-anchor=\"middle\">" +
         html_escape(t.label) + "</text>\n";
  }
  s += "<line class=\"axis\" x1=\"" + x0 + "\" x2=\"" + x1 + "\" y1=\"" + y1 + "\" y2=\"" + y1 +
       "\"/>\n";
  s += "<line class=\"axis\" x1=\"" + x0 + "\" x2=\"" + x0 + "\" y1=\"" + y0 + "\" y2=\"" + y1 +
       "\"/>\n";
  s += "<text x=\"" + fixed((plot_x0 + plot_x1) / 2, 1) + "\" y=\"" + fixed(chart_h - 14, 1) +
       "\" text-anchor=\"middle\">" + html_escape(c.x_label) + "</text>\n";
  s += "<text transform=\"translate(18 " + fixed((plot_y0 + plot_y1) / 2, 1) +
       ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(c.y_label) + "</text>\n";

  bool any = false;
  for (const series& line : c.lines) {
    if (line.points.empty()) continue;
    any = true;
    const char* color = palette[line.color % std::size(palette)];
    s += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\"";
    if (line.dashed) s += " stroke-dasharray=\"6 4\"";
    s += " points=\"";
    for (const auto& [x, y] : line.points)
      s += px(x) + "," + py(y) + " ";
    s += "\"/>\n";
    // Markers, so that a line of one point still shows.
    if (!line.dashed && line.points.size() <= 120) {
      for (const auto& [x, y] : line.points)
        s += "<circle cx=\"" + px(x) + "\" cy=\"" + py(y) + "\" r=\"2.5\" fill=\"" + color +
             "\"/>\n";
    }
  }
  if (!any) {
    s += "<text x=\"" + fixed((plot_x0 + plot_x1) / 2, 1) + "\" y=\"" +
         fixed((plot_y0 + plot_y1) / 2, 1) + "\" text-anchor=\"middle\">no data</text>\n";
  }

  // The legend, right of the plot.
  double ly = plot_y0 + 8;
  for (const series& line : c.lines) {
    const char* color = palette[line.color % std::size(palette)];
    const std::string y = fixed(ly, 1);
    s += "<line x1=\"" + fixed(plot_x1 + 16, 1) + "\" x2=\"" + fixed(plot_x1 + 40, 1) + "\" y1=\"" +
         y + "\" y2=\"" + y + "\" stroke=\"" + color + "\" stroke-width=\"2\"" +
         (line.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    s += "<text x=\"" + fixed(plot_x1 + 46, 1) + "\" y=\"" + y + "\" dy=\"4\">" +
         html_escape(shorten(line.name, legend_chars)) + "</text>\n";
    ly += 20;
  }
  s += "</svg>\n";
  return s;
}

// A round step (1, 2 or 5 times a power of ten) that cuts `range` into about `parts`.
double nice_step(double range, int parts) {
  const double raw = range / parts;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double f = raw / magnitude;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
}

// Ticks from 0 to `top` (made round and returned) on a linear axis.
std::vector<tick> linear_ticks(double& top, std::string (*label)(double)) {
  if (!(top > 0) || !std::isfinite(top)) top = 1;
  const double step = nice_step(top, 5);
  const long n = std::lround(std::ceil(top / step - 1e-9));
  top = static_cast<double>(n) * step;
  std::vector<tick> ticks;
  for (long i = 0; i <= n; ++i)
    ticks.push_back({static_cast<double>(i) * step, label(static_cast<double>(i) * step)});
  return ticks;
}

// "250k", "1.5M".
std::string si_label(double v) {
  if (v >= 1e6) return format("%gM", v / 1e6);
  if (v >= 1e3) return format("%gk", v / 1e3);
  return format("%g", v);
}

std::string seconds_label(double v) {
  return format("%g", v);
}

std::string legend_name(const run_result& r) {
  return r.partial ? r.driver + " (partial)" : r.driver;
}

chart throughput_chart(const std::vector<run_result>& runs) {
  chart c;
  c.id = "throughput";
  c.title = "Throughput over time";
  c.x_label = "time (s)";
  c.y_label = "ops/s";
  double t_max = 0, ops_max = 0;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const run_result& r = runs[i];
    series line;
    line.name = legend_name(r);
    line.color = i;
    for (const timeline_point& p : r.timeline) {
      if (!std::isfinite(p.t_s) || !std::isfinite(p.ops_per_s)) continue;
      line.points.emplace_back(p.t_s, p.ops_per_s);
      t_max = std::max(t_max, p.t_s);
      ops_max = std::max(ops_max, p.ops_per_s);
    }
    // A run without a timeline (redis-benchmark): its average, dashed, over its duration.
    if (line.points.empty() && r.ops_per_s > 0 && std::isfinite(r.ops_per_s)) {
      const double end = r.duration_s > 0 && std::isfinite(r.duration_s) ? r.duration_s : 1;
      line.points = {{0, r.ops_per_s}, {end, r.ops_per_s}};
      line.dashed = true;
      line.name += " (average)";
      t_max = std::max(t_max, end);
      ops_max = std::max(ops_max, r.ops_per_s);
    }
    c.lines.push_back(std::move(line));
  }
  c.x_hi = t_max;
  c.x_ticks = linear_ticks(c.x_hi, seconds_label);
  c.y_hi = ops_max * 1.05;
  c.y_ticks = linear_ticks(c.y_hi, si_label);
  return c;
}

// x of the latency chart for percentile p: log10(1 / (1 - p)), 0 for p = 0, 2 for 99.
double percentile_x(double p) {
  return -std::log10(1 - p / 100);
}

std::string percentile_label(int decade) {
  if (decade == 0) return "0";
  if (decade == 1) return "90";
  return "99" + (decade > 2 ? "." + std::string(static_cast<std::size_t>(decade - 2), '9') : "");
}

chart latency_chart(const std::vector<run_result>& runs) {
  constexpr double x_cap = 6;  // 99.9999
  chart c;
  c.id = "latency";
  c.title = "Latency by percentile";
  c.x_label = "percentile";
  c.y_label = "latency (ms, log scale)";
  double x_max = 0, y_min = HUGE_VAL, y_max = -HUGE_VAL;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const run_result& r = runs[i];
    series line;
    line.name = legend_name(r);
    line.color = i;
    auto add = [&](double x, double ns) {
      if (!(ns > 0) || !std::isfinite(ns)) return;
      const double y = std::log10(ns / 1e6);
      x = std::min(x, x_cap);
      line.points.emplace_back(x, y);
      x_max = std::max(x_max, x);
      y_min = std::min(y_min, y);
      y_max = std::max(y_max, y);
    };
    if (r.latency.count() > 0) {
      double last_x = -1;
      for (const auto& [p, ns] : r.latency.percentile_curve()) {
        // p = 100 cannot be placed on this axis: the largest sample goes where one sample in
        // `count` is left, 1 / (1 - p) = count.
        const double x =
            p < 100 ? percentile_x(p) : std::log10(static_cast<double>(r.latency.count()));
        if (x <= last_x) continue;
        last_x = x;
        add(x, static_cast<double>(ns));
      }
    } else {
      // What the driver reported: "p50", "p99.9"...; not the max (no sample count to place it).
      std::vector<std::pair<double, double>> reported;
      for (const auto& [name, us] : r.reported_percentiles_us) {
        if (name.size() < 2 || name[0] != 'p') continue;
        char* end = nullptr;
        const double p = std::strtod(name.c_str() + 1, &end);
        if (*end != '\0' || !(p >= 0 && p < 100)) continue;
        reported.emplace_back(percentile_x(p), us * 1e3);
      }
      std::sort(reported.begin(), reported.end());
      for (const auto& [x, ns] : reported)
        add(x, ns);
      if (!reported.empty()) line.name += " (reported)";
    }
    c.lines.push_back(std::move(line));
  }

  // x: the decades the data reaches, 0 to 99 at least.
  const int decades =
      std::clamp(static_cast<int>(std::ceil(x_max - 1e-9)), 2, static_cast<int>(x_cap));
  c.x_hi = decades;
  for (int d = 0; d <= decades; ++d)
    c.x_ticks.push_back({static_cast<double>(d), percentile_label(d)});

  // y: whole decades of ms around the data; with few of them, 2 and 5 times as well.
  if (!(y_min <= y_max)) y_min = y_max = 0;
  const int lo = static_cast<int>(std::floor(y_min + 1e-9));
  int hi = static_cast<int>(std::ceil(y_max - 1e-9));
  if (hi <= lo) hi = lo + 1;
  c.y_lo = lo;
  c.y_hi = hi;
  for (int d = lo; d <= hi; ++d) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m > 1 && (hi - lo > 2 || d == hi)) continue;
      const double v = m * std::pow(10, d);
      c.y_ticks.push_back({std::log10(v), format("%g", v)});
    }
  }
  return c;
}

constexpr const char* css = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e4e4e4; }
th { text-align: left; font-weight: 600; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td.ratio { color: #555; font-style: italic; }
table.settings td { font-family: ui-monospace, monospace; }
.chart text { font-size: 12px; fill: #333; }
.chart text.caption { font-size: 15px; font-weight: 600; }
.chart .grid { stroke: #e6e6e6; }
.chart .axis { stroke: #444; }
.note { color: #555; }
)";

}  // namespace

void print_summary(std::FILE* out, const std::vector<run_result>& runs) {
  summary_table t = make_summary(runs);
  // A newline in an error kind would break the table's lines.
  auto flatten = [](std::vector<std::string>& row) {
    for (std::string& cell : row)
      std::replace_if(
          cell.begin(), cell.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; },
          ' ');
  };
  flatten(t.header);
  for (auto& row : t.rows)
    flatten(row);
  std::vector<std::size_t> width(t.header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], display_width(row[i]));
  };
  measure(t.header);
  for (const auto& row : t.rows)
    measure(row);

  std::string text;
  auto line = [&](const std::vector<std::string>& row) {
    std::string l;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - display_width(row[i]), ' ');
      l += i == 0 ? row[i] + pad : "  " + pad + row[i];  // names left, figures right
    }
    while (!l.empty() && l.back() == ' ')
      l.pop_back();
    text += l + "\n";
  };
  line(t.header);
  for (const auto& row : t.rows)
    line(row);
  if (!t.footnote.empty()) text += t.footnote + "\n";
  std::fputs(text.c_str(), out);
  std::fflush(out);
}

std::string live_line(double t_s, double ops_per_s, std::uint64_t p50_ns, std::uint64_t p99_ns,
                      std::uint64_t errors) {
  return format("[%3.0fs] ", std::isfinite(t_s) ? t_s : 0) + group_thousands(ops_per_s) +
         " ops/s  p50 " + format_ms(p50_ns) + "  p99 " + format_ms(p99_ns) + "  errors " +
         group_thousands(errors);
}

void write_json(std::ostream& out, const settings& s, const std::vector<run_result>& runs) {
  out << "{\n  \"settings\": {";
  bool first = true;
  for (const auto& [name, value] : s) {
    out << (first ? "\n    " : ",\n    ");
    first = false;
    json_string(out, name);
    out << ": ";
    json_string(out, value);
  }
  out << (s.empty() ? "},\n" : "\n  },\n") << "  \"runs\": [";
  first = true;
  for (const run_result& r : runs) {
    out << (first ? "\n" : ",\n");
    first = false;
    json_run(out, r);
  }
  out << (runs.empty() ? "]\n}\n" : "\n  ]\n}\n");
}

void write_html(std::ostream& out, const settings& s, const std::vector<run_result>& runs) {
  std::string drivers;
  for (const run_result& r : runs)
    drivers += (drivers.empty() ? "" : " vs ") + r.driver;
  const std::string title =
      html_escape("redcoro-bench" + (drivers.empty() ? std::string() : ": " + drivers));

  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<title>" + title + "</title>\n<style>" + css + "</style>\n</head>\n<body>\n";
  h += "<h1>" + title + "</h1>\n";

  h += "<h2>Settings</h2>\n<table class=\"settings\">\n";
  for (const auto& [name, value] : s)
    h += "<tr><th>" + html_escape(name) + "</th><td>" + html_escape(value) + "</td></tr>\n";
  h += "</table>\n";

  h += "<h2>Summary</h2>\n<table class=\"summary\">\n<thead><tr>";
  const summary_table t = make_summary(runs);
  for (const std::string& cell : t.header)
    h += "<th>" + html_escape(cell) + "</th>";
  h += "</tr></thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    h += "<tr><th>" + html_escape(row[0]) + "</th>";
    for (std::size_t i = 1; i < row.size(); ++i)
      h += (t.ratio_column[i] ? "<td class=\"ratio\">" : "<td>") + html_escape(row[i]) + "</td>";
    h += "</tr>\n";
  }
  h += "</tbody>\n</table>\n";
  if (!t.footnote.empty()) h += "<p class=\"note\">" + html_escape(t.footnote) + "</p>\n";

  h += "<h2>Throughput</h2>\n" + render(throughput_chart(runs));
  h += "<h2>Latency</h2>\n" + render(latency_chart(runs));
  h += "<p class=\"note\">Latency per request. The x axis is 1/(1 - percentile) on a log "
       "scale; a run's last point is its largest sample.</p>\n";
  h += "</body>\n</html>\n";
  out << h;
}

}  // namespace redcoro::bench
