#include "support/paired.hpp"

#include "support/alloc_counter.hpp"
#include "support/report.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

namespace redcoro::bench {

std::pair<double, double> cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {static_cast<double>(u.ru_utime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec) / 1e6,
          static_cast<double>(u.ru_stime.tv_sec) + static_cast<double>(u.ru_stime.tv_usec) / 1e6};
}

sample measure(double ops, const std::function<void()>& drive, bool count_allocations) {
  std::unique_ptr<allocation_scope> window;
  if (count_allocations) window = std::make_unique<allocation_scope>();
  const auto cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  drive();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto cpu1 = cpu_seconds();
  const double user = cpu1.first - cpu0.first;
  const double cpu = user + cpu1.second - cpu0.second;
  sample s{ops / wall, cpu * 1e6 / ops, user * 1e6 / ops, 0};
  if (window) s.allocs_per_op = static_cast<double>(window->count()) / ops;
  return s;
}

void run_paired(const std::vector<paired_contender>& all, std::size_t per_group, int rounds,
                std::size_t min_ops,
                const std::function<sample(std::size_t, std::size_t, bool)>& run,
                const std::string& base) {
  const auto shorter = [&](std::size_t i, std::size_t by) {
    return std::max(min_ops, all[i].ops / by);
  };
  for (std::size_t i = 0; i < all.size(); ++i)  // warm-up
    run(i, shorter(i, 20), false);
  std::vector<std::vector<sample>> samples(all.size());
  for (int r = 0; r < rounds; ++r) {
    // Rotate which contender of a group goes first, so that none always follows another.
    for (std::size_t j = 0; j < all.size(); ++j) {
      const std::size_t first = j - j % per_group;
      const std::size_t k = first + (j - first + static_cast<std::size_t>(r)) % per_group;
      samples[k].push_back(run(k, all[k].ops, false));
    }
  }
  const auto medians = [&](std::size_t k, double sample::*field) {
    std::vector<double> v;
    for (const auto& s : samples[k])
      v.push_back(s.*field);
    return median(v);
  };
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < all.size(); i += per_group) {
    const double base_ops = medians(i, &sample::ops_per_second);
    const double base_cpu = medians(i, &sample::cpu_us_per_op);
    const double base_user = medians(i, &sample::user_us_per_op);
    for (std::size_t k = i; k < i + per_group && k < all.size(); ++k) {
      const double o = medians(k, &sample::ops_per_second);
      const double c = medians(k, &sample::cpu_us_per_op);
      const double u = medians(k, &sample::user_us_per_op);
      std::vector<double> paired;
      for (std::size_t r = 0; r < samples[k].size(); ++r)
        paired.push_back(samples[k][r].cpu_us_per_op / samples[i][r].cpu_us_per_op);
      const sample a = run(k, shorter(k, 10), true);
      rows.push_back({all[k].group, all[k].name, format_number(o), format_ratio(o / base_ops),
                      format_number(c, 2), format_ratio(c / base_cpu), format_ratio(median(paired)),
                      format_number(u, 2), format_ratio(u / base_user),
                      format_number(a.allocs_per_op, 2)});
    }
  }
  print_table({"shape", "client", "ops/s", "vs " + base, "CPU us/op", "CPU vs " + base, "paired",
               "user us/op", "user vs " + base, "allocs/op"},
              rows);
}

}  // namespace redcoro::bench
