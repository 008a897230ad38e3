#pragma once

// A log-linear latency histogram in nanoseconds, in the manner of HdrHistogram.
//
// Values below 256 ns have a bucket each (exact). Above, every power of two [2^e, 2^(e+1)) is
// split into 128 equal sub-buckets, so a bucket is at most 1/128 (0.79%) of its values wide.
// A reported value is the highest value of its bucket, clamped to the exact min and max: never
// below the true value and at most 0.79% above it. Values up to 2^44 - 1 ns (about 4.9 hours)
// are tracked; larger ones count as that. The 4864 counters are allocated once, in the
// constructor: record() never allocates, and a copy costs one allocation of 38 KiB.
//
// The benchmarks record their latencies in it, and the library its own (the cache's get and
// load latencies): one type, so that figures from both merge and print the same way.

#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

namespace redcoro {

class histogram {
 public:
  /// The largest value the histogram tells apart; record() clamps larger ones to it.
  static constexpr std::uint64_t highest_trackable = (std::uint64_t{1} << 44) - 1;

  histogram();

  /// Records one sample. 0 counts as 1; values above highest_trackable count as it. Inline:
  /// the connections record every request (connection_config::metrics).
  void record(std::uint64_t ns) noexcept {
    ns = ns < 1 ? 1 : (ns > highest_trackable ? highest_trackable : ns);
    ++counts_[index_of(ns)];
    if (ns < min_) min_ = ns;
    if (ns > max_) max_ = ns;
    ++count_;
    sum_ += static_cast<double>(ns);
  }

  /// Coordinated-omission correction, as HdrHistogram's recordValueWithExpectedInterval:
  /// records `ns`, and also ns - k * interval for k = 1, 2, ... while that value is >= interval
  /// (the samples a load generator sending every `interval` would have taken during a stall).
  /// Costs O(buckets) however many samples it adds. An interval of 0 is a plain record().
  void record_corrected(std::uint64_t ns, std::uint64_t expected_interval_ns) noexcept;

  /// Adds every sample of `other` (another thread's histogram, say).
  void merge(const histogram& other) noexcept;
  /// Empties the histogram; keeps its storage.
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  /// The smallest sample, exact; 0 when empty.
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  /// The largest sample, exact (once clamped to highest_trackable); 0 when empty.
  std::uint64_t max() const noexcept { return max_; }
  /// The exact mean of the (clamped) samples; 0 when empty.
  double mean() const noexcept;
  /// The sum of the (clamped) samples, in ns (exact below 2^53).
  double sum() const noexcept { return sum_; }
  /// How many samples are at most `ns`, as percentile() reports them (each at the highest
  /// value of its bucket, clamped to min() and max()): a cumulative bucket of a Prometheus
  /// histogram. One pass over the buckets up to `ns`.
  std::uint64_t count_at_or_below(std::uint64_t ns) const noexcept;

  /// The value at percentile p in [0, 100]: the smallest sample v (to within its bucket's
  /// resolution) such that at least p% of the samples are <= v. p <= 0 gives min(), p >= 100
  /// gives max(); 0 when empty.
  std::uint64_t percentile(double p) const noexcept;

  /// Points of the percentile curve, (p, value) for p = 0, 50, 75, 87.5, ... (halving what
  /// remains each step) while p <= 99.9999 and the tail beyond p still holds a sample, then
  /// (100, max()). Empty when the histogram is.
  std::vector<std::pair<double, std::uint64_t>> percentile_curve() const;

  /// The samples' rank (1-based) that percentile p names: ceil(p% of n), at least 1, with p%
  /// of n that is an integer but for floating-point noise (99.9% of 1000) taken as that integer.
  static std::uint64_t rank_for(double p, std::uint64_t n) noexcept;

 private:
  // Buckets: values below 2^(sub_bits + 1) = 256 have one each (index = value). Above, a
  // value v with highest bit e (e >= 8) falls in sub-bucket (v >> (e - sub_bits)) in
  // [128, 256) of its power of two, and index = (e - sub_bits) * 128 + (v >> (e - sub_bits)):
  // the powers follow one another with no gap, and 2^8 = 256 lands on index 256.
  static constexpr unsigned sub_bits = 7;
  static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;  // 128 per power
  static constexpr std::uint64_t linear_limit = sub_count * 2;              // 256: exact below
  static constexpr unsigned top_bit = 43;  // highest bit of highest_trackable
  static constexpr std::size_t bucket_count =
      (top_bit - sub_bits) * sub_count + (linear_limit - 1) + 1;
  static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < linear_limit) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - sub_bits;
    return static_cast<std::size_t>(shift * sub_count + (v >> shift));
  }
  static std::uint64_t lowest_in(std::size_t index) noexcept;
  static std::uint64_t highest_in(std::size_t index) noexcept;
  void add_sequence(std::uint64_t first, std::uint64_t step, std::uint64_t n) noexcept;

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  // The smallest sample; no_min while empty, so that record() compares once.
  static constexpr std::uint64_t no_min = ~std::uint64_t{0};
  std::uint64_t min_ = no_min;
  std::uint64_t max_ = 0;
  // A double: corrected stalls can add ~2^44 samples of ~2^43 ns, beyond any integer sum.
  // Exact below 2^53 ns in all (104 days).
  double sum_ = 0;
};

}  // namespace redcoro
