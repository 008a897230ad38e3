#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <string_view>

namespace redcoro::proto::detail {

/// Bytes kept inside the object up to `inline_size`, on the heap beyond: a request of one
/// small command (a GET, a SET of a short value) allocates nothing. Grows like std::string;
/// clear() keeps the capacity.
class small_buffer {
 public:
  static constexpr std::size_t inline_size = 104;

  small_buffer() noexcept = default;
  small_buffer(const small_buffer& other) { append(other.data_, other.size_); }
  small_buffer(small_buffer&& other) noexcept { take(other); }
  small_buffer& operator=(const small_buffer& other) {
    if (this != &other) {
      size_ = 0;
      append(other.data_, other.size_);
    }
    return *this;
  }
  small_buffer& operator=(small_buffer&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  ~small_buffer() { release(); }

  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  std::string_view view() const noexcept { return {data_, size_}; }

  void clear() noexcept { size_ = 0; }
  void reserve(std::size_t bytes) {
    if (bytes > capacity_) grow(bytes, nullptr, 0);
  }
  /// `bytes` may point into this buffer.
  void append(const char* bytes, std::size_t n) {
    if (capacity_ - size_ < n) {
      grow(size_ + n, bytes, n);
      return;
    }
    if (n != 0) std::memcpy(data_ + size_, bytes, n);
    size_ += n;
  }
  void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }
  /// Room for `n` more bytes: where they go. Write up to `n` there, then say where they end
  /// with set_end(). Pointers into the buffer taken before are invalid after it.
  char* room(std::size_t n) {
    if (capacity_ - size_ < n) grow(size_ + n, nullptr, 0);
    return data_ + size_;
  }
  void set_end(const char* end) noexcept { size_ = static_cast<std::size_t>(end - data_); }
  /// True when `p` points into the bytes held.
  bool holds(const char* p) const noexcept {
    return std::less_equal<const char*>()(data_, p) && std::less<const char*>()(p, data_ + size_);
  }

 private:
  // Moves to a heap block of at least `need` bytes and appends `bytes` on the way (read
  // before the old block is freed, so they may come from it).
  void grow(std::size_t need, const char* bytes, std::size_t n);
  void release() noexcept {
    if (data_ != inline_) delete[] data_;
    data_ = inline_;
    capacity_ = inline_size;
    size_ = 0;
  }
  void take(small_buffer& other) noexcept {
    if (other.data_ == other.inline_) {
      std::memcpy(inline_, other.inline_, other.size_);
      size_ = other.size_;
    } else {
      data_ = other.data_;
      capacity_ = other.capacity_;
      size_ = other.size_;
      other.data_ = other.inline_;
      other.capacity_ = inline_size;
    }
    other.size_ = 0;
  }

  char* data_ = inline_;
  std::size_t size_ = 0;
  std::size_t capacity_ = inline_size;
  char inline_[inline_size];
};

}  // namespace redcoro::proto::detail
