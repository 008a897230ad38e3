// redcoro-bench's latency histogram against exact percentiles of known sample sets.
//
// Not checked here: that record() does not allocate. It cannot (the counters are a vector
// sized in the constructor, and record() only indexes it), but counting allocations would
// mean replacing the global operator new in a test executable other tests share.

#include "tool/histogram.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

using redcoro::bench::histogram;

namespace {

// A percentile in millionths of the samples, so that the reference needs no floating point.
struct percentile_case {
  double p;
  std::uint64_t millionths;
};
constexpr percentile_case cases[] = {
    {50, 500000}, {90, 900000}, {99, 990000}, {99.9, 999000}, {99.99, 999900}};

// The exact percentile of sorted samples: the smallest v with at least p% of them <= v, that
// is the sample of rank ceil(n * p / 100).
std::uint64_t exact(const std::vector<std::uint64_t>& sorted, std::uint64_t millionths) {
  const std::uint64_t n = sorted.size();
  const std::uint64_t rank = std::max<std::uint64_t>(1, (n * millionths + 999999) / 1000000);
  return sorted[rank - 1];
}

// Checks the histogram of `samples` (all >= 1, in range) against the exact figures.
void check_against_exact(std::vector<std::uint64_t> samples) {
  histogram h;
  for (std::uint64_t v : samples)
    h.record(v);
  std::sort(samples.begin(), samples.end());

  REQUIRE(h.count() == samples.size());
  CHECK(h.min() == samples.front());
  CHECK(h.max() == samples.back());
  CHECK(h.percentile(100) == samples.back());
  CHECK(h.percentile(0) == samples.front());
  const double sum = std::accumulate(samples.begin(), samples.end(), 0.0);
  CHECK(h.mean() == Approx(sum / static_cast<double>(samples.size())).epsilon(1e-12));

  for (const percentile_case& c : cases) {
    const std::uint64_t want = exact(samples, c.millionths);
    const std::uint64_t got = h.percentile(c.p);
    INFO("p" << c.p << ": histogram " << got << ", exact " << want);
    // Within 1%, and never below: a value reports as the top of its bucket.
    CHECK(got >= want);
    CHECK(static_cast<double>(got - want) <= 0.01 * static_cast<double>(want));
  }
}

}  // namespace

TEST_CASE("histogram: uniform 1..100000 against exact percentiles") {
  std::vector<std::uint64_t> samples(100000);
  std::iota(samples.begin(), samples.end(), std::uint64_t{1});
  std::shuffle(samples.begin(), samples.end(), std::mt19937_64(7));
  check_against_exact(samples);
}

TEST_CASE("histogram: log-normal latencies against exact percentiles") {
  std::mt19937_64 rng(42);
  // Around 200 µs with a long tail.
  std::lognormal_distribution<double> dist(std::log(200e3), 0.8);
  std::vector<std::uint64_t> samples(200000);
  for (auto& v : samples)
    v = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(dist(rng)));
  check_against_exact(samples);
}

TEST_CASE("histogram: values from 10 ns to 10 s against exact percentiles") {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> exponent(1, 10);  // 10^1 .. 10^10 ns
  std::vector<std::uint64_t> samples(100000);
  for (auto& v : samples)
    v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
  samples.push_back(10);
  samples.push_back(10'000'000'000);
  check_against_exact(samples);
}

TEST_CASE("histogram: every value reports within 1% of itself") {
  // With a far larger second sample, p50 is the first one's bucket top.
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> exponent(0, 43);
  histogram h;
  for (int i = 0; i < 3000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::pow(2.0, exponent(rng)));
    h.reset();
    h.record(v);
    h.record(histogram::highest_trackable);
    const std::uint64_t got = h.percentile(50);
    INFO("value " << v << " reports as " << got);
    REQUIRE(got >= v);
    REQUIRE(static_cast<double>(got - v) <= static_cast<double>(v) / 128);
  }
  // Below 256 ns every value has a bucket of its own.
  for (std::uint64_t v = 1; v < 256; ++v) {
    h.reset();
    h.record(v);
    h.record(1000);
    REQUIRE(h.percentile(50) == v);
  }
}

TEST_CASE("histogram: the rank a percentile names") {
  CHECK(histogram::rank_for(99.9, 1000) == 999);  // 999.0000000000001 in doubles
  CHECK(histogram::rank_for(99.99, 100000) == 99990);
  CHECK(histogram::rank_for(50, 3) == 2);
  CHECK(histogram::rank_for(50, 4) == 2);
  CHECK(histogram::rank_for(0, 5) == 1);
  CHECK(histogram::rank_for(0.0001, 5) == 1);
  CHECK(histogram::rank_for(100, 7) == 7);
  CHECK(histogram::rank_for(1, 1) == 1);
  CHECK(histogram::rank_for(50, 0) == 0);
}

TEST_CASE("histogram: merging two halves equals one histogram of all") {
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> dist(std::log(50e3), 1.2);
  histogram all, first, second;
  for (int i = 0; i < 50000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    all.record(v);
    (i % 3 ? first : second).record(v);
  }
  histogram merged;
  merged.merge(first);
  merged.merge(second);
  merged.merge(histogram{});  // an empty one changes nothing

  CHECK(merged.count() == all.count());
  CHECK(merged.min() == all.min());
  CHECK(merged.max() == all.max());
  CHECK(merged.mean() == Approx(all.mean()).epsilon(1e-12));
  for (double p = 0; p <= 100; p += 0.25)
    REQUIRE(merged.percentile(p) == all.percentile(p));
  CHECK(merged.percentile_curve() == all.percentile_curve());

  // Into an empty histogram, min comes from the other.
  histogram empty;
  empty.merge(second);
  CHECK(empty.min() == second.min());
}

TEST_CASE("histogram: coordinated-omission correction") {
  SECTION("interval 0 is a plain record") {
    histogram h;
    h.record_corrected(5000, 0);
    CHECK(h.count() == 1);
    CHECK(h.min() == 5000);
  }
  SECTION("below twice the interval nothing is added") {
    histogram h;
    h.record_corrected(150, 100);
    h.record_corrected(100, 100);
    h.record_corrected(50, 100);
    CHECK(h.count() == 3);
    CHECK(h.min() == 50);
  }
  SECTION("a multiple of the interval") {
    histogram h;
    h.record_corrected(1000, 100);  // and 900, 800, ..., 100
    CHECK(h.count() == 10);
    CHECK(h.min() == 100);
    CHECK(h.max() == 1000);
    CHECK(h.mean() == Approx(550));
    CHECK(h.percentile(50) == Approx(500).epsilon(0.01));
    CHECK(h.percentile(10) == 100);
  }
  SECTION("not a multiple") {
    histogram h;
    h.record_corrected(1050, 100);  // and 950, ..., 150
    CHECK(h.count() == 10);
    CHECK(h.min() == 150);
    CHECK(h.max() == 1050);
    CHECK(h.percentile(50) == Approx(550).epsilon(0.01));
  }
  SECTION("many samples added by bucket equal them added one by one") {
    for (const auto& [ns, interval] : {std::pair<std::uint64_t, std::uint64_t>{10'000'000, 1000},
                                       {123'456'789, 777},
                                       {1'000'000, 3},
                                       {70'000, 1}}) {
      INFO(ns << " ns every " << interval << " ns");
      histogram bulk, one_by_one;
      bulk.record(42);
      one_by_one.record(42);
      bulk.record_corrected(ns, interval);
      one_by_one.record(ns);
      for (std::uint64_t v = ns - interval; v >= interval; v -= interval)
        one_by_one.record(v);
      CHECK(bulk.count() == one_by_one.count());
      CHECK(bulk.count() == 2 + (ns / interval - 1));
      CHECK(bulk.min() == one_by_one.min());
      CHECK(bulk.max() == one_by_one.max());
      CHECK(bulk.mean() == Approx(one_by_one.mean()).epsilon(1e-9));
      for (double p = 0; p <= 100; p += 0.5)
        REQUIRE(bulk.percentile(p) == one_by_one.percentile(p));
    }
  }
  SECTION("a 10 s stall at 1 ms per request") {
    histogram h;
    for (int i = 0; i < 10000; ++i)
      h.record_corrected(100'000, 1'000'000);  // 100 µs, no correction
    h.record_corrected(10'000'000'000, 1'000'000);
    CHECK(h.count() == 10000 + 10000);
    // Half the samples are now the stall's: 1 ms .. 10 s.
    CHECK(h.percentile(75) == Approx(5e9).epsilon(0.01));
    CHECK(h.percentile(99) == Approx(9.8e9).epsilon(0.01));
    CHECK(h.max() == 10'000'000'000);
  }
}

TEST_CASE("histogram: empty, reset, 0 and out of range") {
  histogram h;
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0);
  CHECK(h.percentile(0) == 0);
  CHECK(h.percentile(50) == 0);
  CHECK(h.percentile(100) == 0);
  CHECK(h.percentile_curve().empty());

  h.record(0);  // counts as 1
  CHECK(h.count() == 1);
  CHECK(h.min() == 1);
  h.record(~std::uint64_t{0});  // clamps to the top
  CHECK(h.max() == histogram::highest_trackable);
  CHECK(h.percentile(100) == histogram::highest_trackable);
  CHECK(histogram::highest_trackable >= std::uint64_t{1} << 40);

  h.reset();
  CHECK(h.count() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.mean() == 0);
  CHECK(h.percentile(99) == 0);
  h.record(500);
  h.record(700);
  CHECK(h.min() == 500);  // not the 1 from before the reset
  CHECK(h.max() == 700);
  CHECK(h.count() == 2);
  CHECK(h.mean() == Approx(600));

  // Copies are independent.
  histogram copy = h;
  copy.record(900);
  CHECK(h.count() == 2);
  CHECK(copy.count() == 3);
}

TEST_CASE("histogram: the percentile curve") {
  SECTION("as far as 1000 samples go") {
    histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v)
      h.record(v * 1000);
    const auto curve = h.percentile_curve();
    // 0, 50, 75, ... while a sample is left above p: 2^9 <= 1000 < 2^10; then 100.
    REQUIRE(curve.size() == 11);
    CHECK(curve.front() == std::pair<double, std::uint64_t>(0.0, 1000));
    CHECK(curve[1].first == 50);
    CHECK(curve[2].first == 75);
    CHECK(curve[3].first == 87.5);
    CHECK(curve[9].first == Approx(100 * (1 - 1.0 / 512)));
    CHECK(curve.back() == std::pair<double, std::uint64_t>(100.0, 1000000));
    for (std::size_t i = 1; i < curve.size(); ++i) {
      CHECK(curve[i].first > curve[i - 1].first);
      CHECK(curve[i].second >= curve[i - 1].second);
      CHECK(curve[i].second == h.percentile(curve[i].first));
    }
  }
  SECTION("up to 99.9999 with many samples") {
    histogram h;
    h.record_corrected(1'000'000'000, 10);  // 10^8 samples
    const auto curve = h.percentile_curve();
    REQUIRE(curve.size() == 21);  // k = 0 .. 19, and 100
    CHECK(curve[19].first <= 99.9999);
    CHECK(curve[19].first > 99.9998);
    CHECK(curve.back().first == 100);
  }
  SECTION("one sample") {
    histogram h;
    h.record(123);
    const auto curve = h.percentile_curve();
    REQUIRE(curve.size() == 2);
    CHECK(curve[0] == std::pair<double, std::uint64_t>(0.0, 123));
    CHECK(curve[1] == std::pair<double, std::uint64_t>(100.0, 123));
  }
}

TEST_CASE("histogram: counts at or below a bound, as a Prometheus bucket") {
  histogram h;
  std::vector<std::uint64_t> samples;
  std::mt19937_64 random(11);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t v = 1 + random() % 50'000'000;  // up to 50 ms
    samples.push_back(v);
    h.record(v);
  }
  double sum = 0;
  for (auto v : samples)
    sum += static_cast<double>(v);
  CHECK(h.sum() == sum);
  CHECK(h.count_at_or_below(0) == 0);
  CHECK(h.count_at_or_below(h.max()) == h.count());
  std::uint64_t previous = 0;
  for (std::uint64_t bound = 50'000; bound <= 100'000'000; bound *= 2) {
    INFO("bound " << bound);
    const auto n = h.count_at_or_below(bound);
    CHECK(n >= previous);  // cumulative
    previous = n;
    // Exact for the samples, but for those within the bound's bucket (reported at the
    // bucket's top, at most 1/128 above themselves): between the exact counts at
    // bound * (1 - 1/128) and at bound.
    const auto exact_at = [&](double b) {
      return static_cast<std::uint64_t>(std::count_if(
          samples.begin(), samples.end(), [&](auto v) { return static_cast<double>(v) <= b; }));
    };
    CHECK(n <= exact_at(static_cast<double>(bound)));
    CHECK(n >= exact_at(static_cast<double>(bound) * (1 - 1.0 / 128) - 1));
    // The same count the percentiles imply: the value at rank n is within the bound.
    if (n > 0) CHECK(h.percentile(100.0 * static_cast<double>(n) / h.count()) <= bound);
  }
}
