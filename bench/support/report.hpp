#pragma once

// Collects Google Benchmark runs so a benchmark can print its own summary: medians over
// rounds (contenders are registered round-robin, so they alternate in time on a noisy
// machine) and ratios against a baseline measured in the same run.

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace redcoro::bench {

class collecting_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;

  /// Median over the recorded runs of `name` of counter `counter` ("items_per_second",
  /// "bytes_per_second", or a user counter); "cpu_time" gives the CPU time per iteration in
  /// the benchmark's time unit. 0 when absent.
  double median(const std::string& name, const std::string& counter) const;

  /// Number of runs recorded for `name`.
  std::size_t runs(const std::string& name) const;

 private:
  std::map<std::string, std::vector<std::map<std::string, double>>> samples_;
};

/// Prints an aligned text table (first column left-aligned, the rest right-aligned).
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

/// "1234567" -> "1,234,567"; fractional values keep `decimals` digits.
std::string format_number(double v, int decimals = 0);

/// "3.21x"
std::string format_ratio(double v);

/// The median of `v` (the upper one for an even count); 0 when empty.
double median(std::vector<double> v);

}  // namespace redcoro::bench
