#include <redcoro/client/detail/backoff.hpp>

#include <algorithm>
#include <cmath>

namespace redcoro::detail {

double backoff::random_unit() noexcept {
  // xorshift64*: plenty for jitter, and no shared state between connections.
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return static_cast<double>((state_ * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
}

std::optional<std::chrono::milliseconds> backoff::next() noexcept {
  ++failures_;
  if (policy_.max_attempts != 0 && failures_ >= policy_.max_attempts) return std::nullopt;
  const double min = static_cast<double>(std::max<std::int64_t>(0, policy_.min_delay.count()));
  const double max = std::max(min, static_cast<double>(policy_.max_delay.count()));
  const double grown =
      min * std::pow(std::max(1.0, policy_.multiplier), static_cast<double>(failures_ - 1));
  const double delay = std::min(max, grown);
  const double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  const double drawn = delay * (1.0 - jitter * random_unit());
  return std::chrono::milliseconds(static_cast<std::int64_t>(drawn));
}

}  // namespace redcoro::detail
