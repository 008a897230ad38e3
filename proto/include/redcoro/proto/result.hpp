#pragma once

#include <redcoro/proto/error.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace redcoro::proto {

/// Why one reply holds no value: the server answered with an error, or the reply could not
/// be stored in the requested C++ type. Either way the connection is fine and the next reply
/// is read normally.
struct reply_error {
  /// error::server_error for a server's `-` or `!` reply; otherwise a conversion error such
  /// as error::type_mismatch.
  std::error_code code;
  /// The server's text ("WRONGTYPE Operation against a key holding the wrong kind of value"),
  /// or a diagnostic naming the expected and received types ("expected integer, got array").
  std::string message;

  bool is_server_error() const noexcept { return code == error::server_error; }

  /// The error code of a server error: the first word of its message ("ERR", "WRONGTYPE",
  /// "MOVED", "NOSCRIPT"). Empty for conversion errors.
  std::string_view server_code() const noexcept {
    if (!is_server_error()) return {};
    const std::string_view m = message;
    return m.substr(0, m.find(' '));
  }

  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  void clear() noexcept {
    code.clear();
    message.clear();
  }
};

/// Thrown by result::value() when the result holds an error.
class reply_exception : public std::system_error {
 public:
  explicit reply_exception(const reply_error& e)
      : std::system_error(e.code, e.message), error_(e) {}
  const reply_error& reply() const noexcept { return error_; }

 private:
  reply_error error_;
};

/// One reply: a T, or the reply_error that took its place.
///
/// The T is kept even while an error is held, so that a result reused across requests keeps
/// its containers' capacity: steady-state use does not allocate.
template <class T>
class result {
 public:
  using value_type = T;

  result() = default;
  explicit result(T v) : value_(std::move(v)) {}

  bool has_value() const noexcept { return !error_.code; }
  bool has_error() const noexcept { return static_cast<bool>(error_.code); }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws reply_exception when the reply was an error.
  T& value() & {
    check();
    return value_;
  }
  const T& value() const& {
    check();
    return value_;
  }
  T&& value() && {
    check();
    return std::move(value_);
  }

  /// Unchecked access.
  T& operator*() noexcept { return value_; }
  const T& operator*() const noexcept { return value_; }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }

  const reply_error& error() const noexcept { return error_; }

  /// For adapters: the storage they write into.
  T& storage() noexcept { return value_; }
  reply_error& error_storage() noexcept { return error_; }

 private:
  void check() const {
    if (error_.code) throw reply_exception(error_);
  }

  T value_{};
  reply_error error_;
};

}  // namespace redcoro::proto
