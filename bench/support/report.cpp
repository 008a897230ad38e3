#include "support/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string_view>

namespace redcoro::bench {

void collecting_reporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
    std::map<std::string, double> values;
    for (const auto& [key, counter] : run.counters)
      values[key] = counter.value;
    values["cpu_time"] = run.GetAdjustedCPUTime();
    samples_[run.benchmark_name()].push_back(std::move(values));
  }
  ConsoleReporter::ReportRuns(runs);
}

double collecting_reporter::median(const std::string& name, const std::string& counter) const {
  const auto it = samples_.find(name);
  if (it == samples_.end()) return 0;
  std::vector<double> v;
  for (const auto& s : it->second) {
    const auto c = s.find(counter);
    if (c != s.end()) v.push_back(c->second);
  }
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::size_t collecting_reporter::runs(const std::string& name) const {
  const auto it = samples_.find(name);
  return it == samples_.end() ? 0 : it->second.size();
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  };
  measure(header);
  for (const auto& r : rows)
    measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      const std::string pad(width[i] - cell.size(), ' ');
      std::cout << (i == 0 ? cell + pad : pad + cell) << (i + 1 < width.size() ? "  " : "\n");
    }
  };
  print(header);
  std::size_t total = 0;
  for (std::size_t w : width)
    total += w + 2;
  std::cout << std::string(total - 2, '-') << "\n";
  for (const auto& r : rows)
    print(r);
}

std::string format_number(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  const std::string_view s(buf, static_cast<std::size_t>(n));
  const std::size_t sign = !s.empty() && s[0] == '-' ? 1 : 0;
  const std::size_t end = std::min(s.find('.'), s.size());
  std::string out;
  out.reserve(s.size() + s.size() / 3);
  for (std::size_t i = 0; i < s.size(); ++i) {
    // A separator before each group of three integral digits, except the first group.
    if (i > sign && i < end && (end - i) % 3 == 0) out.push_back(',');
    out.push_back(s[i]);
  }
  return out;
}

std::string format_ratio(double v) {
  if (!std::isfinite(v) || v <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", v);
  return buf;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace redcoro::bench
