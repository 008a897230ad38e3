#include <redcoro/client/histogram.hpp>

#include <algorithm>
#include <bit>
#include <cmath>

namespace redcoro {

namespace {

// record_corrected adds its synthetic samples one by one up to this many, by bucket above.
constexpr std::uint64_t loop_limit = 64;

}  // namespace

histogram::histogram() : counts_(bucket_count, 0) {}

std::uint64_t histogram::lowest_in(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  const std::uint64_t shift = index / sub_count - 1;
  const std::uint64_t sub = sub_count + index % sub_count;
  return sub << shift;
}

std::uint64_t histogram::highest_in(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  const std::uint64_t shift = index / sub_count - 1;
  return lowest_in(index) + (std::uint64_t{1} << shift) - 1;
}

void histogram::record_corrected(std::uint64_t ns, std::uint64_t expected_interval_ns) noexcept {
  ns = std::clamp<std::uint64_t>(ns, 1, highest_trackable);
  record(ns);
  const std::uint64_t interval = expected_interval_ns;
  if (interval == 0 || ns / interval < 2) return;
  // The missing samples ns - k * interval >= interval, k = 1 .. q - 1 with q = ns / interval:
  // from the smallest, (ns % interval) + interval, up to ns - interval, `interval` apart.
  const std::uint64_t n = ns / interval - 1;
  const std::uint64_t first = ns % interval + interval;
  if (n <= loop_limit) {
    for (std::uint64_t i = 0; i < n; ++i)
      record(first + i * interval);
  } else {
    add_sequence(first, interval, n);
  }
}

// Adds first, first + step, ..., first + (n - 1) * step (all within range, n >= 1), counting
// per bucket how many of them it holds rather than one by one.
void histogram::add_sequence(std::uint64_t first, std::uint64_t step, std::uint64_t n) noexcept {
  const std::uint64_t last = first + (n - 1) * step;
  const std::size_t end = index_of(last);
  for (std::size_t i = index_of(first); i <= end; ++i) {
    const std::uint64_t lo = std::max(lowest_in(i), first);
    const std::uint64_t hi = std::min(highest_in(i), last);
    // The j with lo <= first + j * step <= hi.
    const std::uint64_t j_lo = (lo - first + step - 1) / step;
    const std::uint64_t j_hi = (hi - first) / step;
    if (j_hi >= j_lo) counts_[i] += j_hi - j_lo + 1;
  }
  if (first < min_) min_ = first;
  if (last > max_) max_ = last;
  count_ += n;
  const double dn = static_cast<double>(n);
  sum_ += dn * static_cast<double>(first) + static_cast<double>(step) * dn * (dn - 1) / 2;
}

void histogram::merge(const histogram& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  if (other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = max_ = 0;
  min_ = no_min;
  sum_ = 0;
}

double histogram::mean() const noexcept {
  return count_ ? sum_ / static_cast<double>(count_) : 0;
}

std::uint64_t histogram::rank_for(double p, std::uint64_t n) noexcept {
  if (n == 0) return 0;
  if (!(p > 0)) return 1;  // also NaN
  if (p >= 100) return n;
  const double x = p / 100 * static_cast<double>(n);
  const double nearest = std::round(x);
  // 99.9% of 1000 is 999.0000000000001 in doubles: that is rank 999, not 1000.
  const double rank = std::abs(x - nearest) <= 1e-9 * std::max(1.0, x) ? nearest : std::ceil(x);
  return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(rank), 1, n);
}

std::uint64_t histogram::count_at_or_below(std::uint64_t ns) const noexcept {
  if (count_ == 0 || ns < min_) return 0;
  if (ns >= max_) return count_;
  std::uint64_t n = 0;
  // A bucket's reported value grows with its index: stop at the first one above `ns`.
  for (std::size_t i = 0; i < counts_.size() && std::clamp(highest_in(i), min_, max_) <= ns; ++i)
    n += counts_[i];
  return n;
}

std::uint64_t histogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  if (!(p > 0)) return min();
  if (p >= 100) return max_;
  const std::uint64_t rank = rank_for(p, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_in(i), min_, max_);
  }
  return max_;  // not reached: the counts add up to count_
}

std::vector<std::pair<double, std::uint64_t>> histogram::percentile_curve() const {
  std::vector<std::pair<double, std::uint64_t>> curve;
  if (count_ == 0) return curve;
  const double n = static_cast<double>(count_);
  for (int k = 0;; ++k) {
    const double rest = std::ldexp(1.0, -k);  // the part of the samples above p
    const double p = 100 * (1 - rest);
    if (p > 99.9999) break;
    // With less than one sample above p, p would name the largest one: that is the 100 below.
    if (k > 0 && rest * n < 1) break;
    curve.emplace_back(p, percentile(p));
  }
  curve.emplace_back(100.0, max_);
  return curve;
}

}  // namespace redcoro
