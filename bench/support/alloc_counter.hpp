#pragma once

// Counts heap allocations (malloc, calloc, realloc; operator new goes through malloc, and so
// does hiredis) by interposing the C allocator. Counting is off by default and meant for
// untimed passes: an atomic increment per allocation would tax allocation-heavy contenders
// in timed runs.

#include <cstdint>

namespace redcoro::bench {

/// Turns counting on or off (process-wide).
void count_allocations(bool on) noexcept;

/// Allocations counted so far.
std::uint64_t allocations() noexcept;

/// Counts allocations while alive.
class allocation_scope {
 public:
  allocation_scope() noexcept : start_(allocations()) { count_allocations(true); }
  ~allocation_scope() { count_allocations(false); }
  allocation_scope(const allocation_scope&) = delete;
  allocation_scope& operator=(const allocation_scope&) = delete;
  std::uint64_t count() const noexcept { return allocations() - start_; }

 private:
  std::uint64_t start_;
};

}  // namespace redcoro::bench
