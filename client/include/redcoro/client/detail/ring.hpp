#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace redcoro::detail {

/// A FIFO in a ring buffer that keeps its capacity: once it has grown to the largest size it
/// held, pushing and popping allocate nothing (where a deque allocates a block every few
/// elements). A popped element is reset so that it lets go of what it owned: by its own
/// reset() when it has one (which may keep its buffers for the next element in that place),
/// else to T{}.
template <class T>
class ring {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return items_[head_]; }
  const T& front() const noexcept { return items_[head_]; }
  /// Element `i` from the front.
  T& at(std::size_t i) noexcept { return items_[(head_ + i) & (items_.size() - 1)]; }

  void push_back(T v) {
    if (size_ == items_.size()) grow();
    items_[(head_ + size_) & (items_.size() - 1)] = std::move(v);
    ++size_;
  }
  /// Appends an element as a popped one is left (reset, or T{}) and returns it, to be filled
  /// in place.
  T& emplace_back() {
    if (size_ == items_.size()) grow();
    return items_[(head_ + size_++) & (items_.size() - 1)];
  }
  void pop_front() noexcept {
    reset(items_[head_]);
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
  }
  void clear() noexcept {
    while (size_ != 0)
      pop_front();
    head_ = 0;
  }

 private:
  static void reset(T& item) noexcept {
    if constexpr (requires { item.reset(); })
      item.reset();
    else
      item = T{};
  }

  // To the next power of two, unrolled so that head_ is 0.
  void grow() {
    std::vector<T> bigger(std::max<std::size_t>(16, items_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i)
      bigger[i] = std::move(at(i));
    items_.swap(bigger);
    head_ = 0;
  }

  std::vector<T> items_;  // size is a power of two (or 0)
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace redcoro::detail
