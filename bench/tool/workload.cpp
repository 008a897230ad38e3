#include "tool/workload.hpp"

#include <redcoro/proto/request.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace redcoro::bench {

namespace {

// log1p(x)/x and expm1(x)/x, exact near 0.
double helper1(double x) {
  return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - x * 0.25));
}
double helper2(double x) {
  return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1 + x * 0.5 * (1 + x / 3 * (1 + x * 0.25));
}

std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// The pieces of rejection-inversion Zipf sampling for exponent s: h(x) = x^-s and its
// integral H with inverse.
double zipf_h(double s, double x) {
  return std::exp(-s * std::log(x));
}
double zipf_h_integral(double s, double x) {
  const double log_x = std::log(x);
  return helper2((1 - s) * log_x) * log_x;
}
double zipf_h_integral_inverse(double s, double x) {
  const double t = std::max(-1.0, x * (1 - s));
  return std::exp(helper1(t) * x);
}

}  // namespace

key_chooser::key_chooser(const options& o, std::uint64_t stream, std::uint64_t streams)
    : kind_(o.key_pattern),
      space_(o.key_space),
      rng_(mix64(o.seed * 0x9e3779b97f4a7c15ull + stream)),
      sequence_(stream % o.key_space),
      step_(std::max<std::uint64_t>(1, streams)),
      normal_(static_cast<double>(o.key_space) / 2, static_cast<double>(o.key_space) / 6) {
  if (kind_ == key_pattern_kind::zipf) {
    s_ = o.zipf_s;
    h_x1_ = zipf_h_integral(s_, 1.5) - 1;
    h_n_ = zipf_h_integral(s_, static_cast<double>(space_) + 0.5);
    shortcut_ = 2 - zipf_h_integral_inverse(s_, zipf_h_integral(s_, 2.5) - zipf_h(s_, 2));
  }
}

std::uint64_t key_chooser::zipf() {
  std::uniform_real_distribution<double> unit(0, 1);
  const double n = static_cast<double>(space_);
  for (;;) {
    const double u = h_n_ + unit(rng_) * (h_x1_ - h_n_);
    const double x = zipf_h_integral_inverse(s_, u);
    const double k = std::clamp(std::floor(x + 0.5), 1.0, n);
    if (k - x <= shortcut_ || u >= zipf_h_integral(s_, k + 0.5) - zipf_h(s_, k))
      return static_cast<std::uint64_t>(k) - 1;  // rank 1 is the hottest key, key 0
  }
}

std::uint64_t key_chooser::next() {
  switch (kind_) {
    case key_pattern_kind::uniform:
      return rng_() % space_;
    case key_pattern_kind::sequential: {
      const std::uint64_t k = sequence_;
      sequence_ = (sequence_ + step_) % space_;
      return k;
    }
    case key_pattern_kind::zipf:
      return zipf();
    case key_pattern_kind::gaussian: {
      const double v = std::round(normal_(rng_));
      return static_cast<std::uint64_t>(std::clamp(v, 0.0, static_cast<double>(space_ - 1)));
    }
  }
  return 0;
}

key_values::key_values(const options& o) : min_size(o.data_min), max_size(o.data_max) {}

void key_values::value(std::uint64_t k, std::string& out) const {
  const std::uint64_t h = mix64(k + 1);
  const std::size_t size = min_size + (max_size > min_size ? h % (max_size - min_size + 1) : 0);
  out.resize(size);
  // The key's number, then letters that depend on it: a value written under another key (or
  // truncated) does not pass for this one.
  char head[24];
  char* end = std::to_chars(head, head + sizeof head - 1, k).ptr;
  *end++ = ':';
  const std::size_t n = static_cast<std::size_t>(end - head);
  for (std::size_t i = 0; i < size; ++i)
    out[i] = i < n ? head[i] : static_cast<char>('a' + (h >> (i % 48)) % 26);
}

void key_values::key_name(std::uint64_t k, std::string& out) {
  out.assign("redcoro-bench:");
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, k).ptr);
}

request_maker::request_maker(const options& o, const key_values& kv, std::uint64_t stream,
                             std::uint64_t streams)
    : o_(o), kv_(kv), keys_(o, stream, streams), mix_(mix64(o.seed + 7 * stream + 1)) {
  for (const auto& c : o.commands)
    total_weight_ += c.weight;
}

void request_maker::next(proto::request& req, std::vector<sent_command>& sent) {
  req.clear();
  sent.clear();
  for (int i = 0; i < o_.pipeline; ++i) {
    const std::uint64_t k = keys_.next();
    key_values::key_name(k, key_);  // (reused: no allocation per request)
    if (o_.commands.empty()) {
      const bool is_set = mix_() % (o_.set_ratio + o_.get_ratio) < o_.set_ratio;
      if (is_set) {
        kv_.value(k, value_);
        req.push("SET", key_, value_);
        sent.push_back({sent_command::kind::set, k});
      } else {
        req.push("GET", key_);
        sent.push_back({sent_command::kind::get, k});
      }
      continue;
    }
    // A template, chosen by weight; its placeholders filled in.
    unsigned pick = static_cast<unsigned>(mix_() % total_weight_);
    const command_template* t = &o_.commands.front();
    for (const auto& c : o_.commands) {
      if (pick < c.weight) {
        t = &c;
        break;
      }
      pick -= c.weight;
    }
    words_.assign(t->words.begin(), t->words.end());
    for (auto& w : words_) {
      if (w == "__key__") {
        w = key_;
      } else if (w == "__data__") {
        kv_.value(k, value_);
        w = value_;
      }
    }
    req.push(words_[0], std::span<const std::string>(words_).subspan(1));
    sent.push_back({sent_command::kind::other, k});
  }
}

}  // namespace redcoro::bench
