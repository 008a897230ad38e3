#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>

namespace redcoro::detail {

/// The connection's read buffer: `used()` bytes at the front hold what was read and not
/// parsed yet (the start of an incomplete message). Never zero-filled, and resized only to a
/// size asked for, copying just the bytes in use: a 500 MB reply announced by its header
/// costs one allocation of its size, not a doubling series with a 2x peak and a copy of
/// everything at each step.
class read_buffer {
 public:
  explicit read_buffer(std::size_t size) { resize(std::max<std::size_t>(size, 512)); }

  char* data() noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t used() const noexcept { return used_; }
  /// Free space after the bytes in use.
  char* free_data() noexcept { return data_.get() + used_; }
  std::size_t free_size() const noexcept { return size_ - used_; }

  void commit(std::size_t n) noexcept { used_ += n; }
  /// Forgets what is in use (a new connection starts with nothing read).
  void clear() noexcept { used_ = 0; }

  /// Drops the first `n` bytes in use (parsed), moving the rest to the front.
  void consume(std::size_t n) noexcept {
    if (n == 0) return;
    std::memmove(data_.get(), data_.get() + n, used_ - n);
    used_ -= n;
  }

  /// Makes room for at least `total` bytes in all (bytes in use included).
  void reserve(std::size_t total) {
    if (total > size_) resize(total);
  }

  /// Gives memory back: back to `size` when it is larger than `keep` and what is in use fits.
  void shrink(std::size_t size, std::size_t keep) {
    size = std::max<std::size_t>(size, 512);
    if (size_ > std::max(keep, size) && used_ <= size) resize(size);
  }

 private:
  void resize(std::size_t size) {
    std::unique_ptr<char[]> bigger(new char[size]);  // default-initialized: not zeroed
    if (used_ != 0) std::memcpy(bigger.get(), data_.get(), used_);
    data_ = std::move(bigger);
    size_ = size;
  }

  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t used_ = 0;
};

}  // namespace redcoro::detail
