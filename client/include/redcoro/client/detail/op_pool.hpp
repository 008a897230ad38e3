#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace redcoro::detail {

/// A pool of equal blocks for async operations: after warm-up, no request allocates. One
/// executor uses it; it takes no lock.
class op_pool {
 public:
  // Large enough for a typed command, pipeline or small transaction with its response.
  static constexpr std::size_t block_size = 768;

  void* allocate(std::size_t size) {
    if (size > block_size) return ::operator new(size);
    if (free_.empty()) return ::operator new(block_size);
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  void deallocate(void* p, std::size_t size) noexcept {
    if (size > block_size) {
      ::operator delete(p);
      return;
    }
    // The vector only grows while more ops are alive than ever before; when it cannot, the
    // block goes back to the heap instead.
    try {
      free_.push_back(p);
    } catch (...) {
      ::operator delete(p);
    }
  }
  ~op_pool() {
    for (void* p : free_)
      ::operator delete(p);
  }

 private:
  std::vector<void*> free_;
};

}  // namespace redcoro::detail
