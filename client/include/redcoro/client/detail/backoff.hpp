#pragma once

#include <redcoro/client/config.hpp>

#include <chrono>
#include <cstdint>
#include <optional>

namespace redcoro::detail {

/// The delays between reconnection attempts (sans-I/O: the caller sleeps).
class backoff {
 public:
  explicit backoff(const reconnect_policy& policy, std::uint64_t seed = 0x9e3779b97f4a7c15ull)
      : policy_(policy), state_(seed | 1) {}

  /// The delay before the next attempt, or nullopt once max_attempts failed in a row.
  std::optional<std::chrono::milliseconds> next() noexcept;
  /// A connection succeeded: start again from min_delay.
  void reset() noexcept { failures_ = 0; }
  std::size_t failures() const noexcept { return failures_; }

 private:
  double random_unit() noexcept;  // in [0, 1)

  reconnect_policy policy_;
  std::uint64_t state_;
  std::size_t failures_ = 0;
};

}  // namespace redcoro::detail
