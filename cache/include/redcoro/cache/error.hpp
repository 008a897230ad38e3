#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <type_traits>

namespace redcoro::cache {

/// Why a value could not be encoded or decoded. Values start at 1; 0 means success.
enum class error {
  // Decoding: the stored bytes do not hold a value of the requested type.
  invalid_json = 1,   ///< not JSON: truncated, a malformed token, invalid UTF-8 (see offset)
  trailing_data,      ///< a complete value followed by more than whitespace (see offset)
  wrong_type,         ///< a JSON value of another type than the C++ one (null included)
  missing_field,      ///< a member of a described struct, not optional, absent from the object
  out_of_range,       ///< a number, duration or time that the C++ type cannot hold exactly
  invalid_text,       ///< text that does not read as the expected number, bool or timestamp
  unknown_enum_name,  ///< a name that no enumerator of the described enum has

  // Both ways.
  too_deep,  ///< arrays and objects nested deeper than max_depth (a recursive type's value)

  // Encoding: the C++ value has no representation in the stored form.
  unnamed_enum_value,  ///< an enum value that no described enumerator names
  invalid_utf8,        ///< a string that is not valid UTF-8, which JSON cannot carry

  // The cache (cache.hpp).
  load_failed,   ///< get_or_load: the loader threw (its message is the error's message)
  invalid_ttl,   ///< a TTL that is not positive (use no_ttl for none)
  no_prefix,     ///< clear() on a cache without a prefix: it would remove every key
  write_failed,  ///< write_through: the writer of the source threw (its message is the error's)
  invalid_tag,   ///< a tag that is empty or holds a brace (it would move its set to another slot)
  queue_full,    ///< write_behind with when_full::fail: the queue holds `capacity` writes
  not_written,   ///< write_behind: closed before this accepted write could be written
};

/// How deeply arrays and objects may nest in a JSON value, both ways. The reader and the
/// writer recurse once per level (a few hundred bytes of stack each), and a recursive type
/// (a struct holding a std::vector of itself) or a hostile value could otherwise nest until
/// the stack overflows.
inline constexpr int max_depth = 256;

/// The category of redcoro::cache::error; its name is "redcoro.cache".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// What went wrong with one value, and where. Codecs fill it only when they fail; the cache
/// layer adds the key.
struct codec_error {
  /// No byte offset: the error is not about a position in the input.
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// The same code the failing call returned (a cache::error, or a user codec's own).
  std::error_code code;
  /// The Redis key of the value; empty when the codec is used without a key.
  std::string key;
  /// Where in the value: empty for the value itself, else members joined by dots, sequence
  /// indices and map keys in brackets: `address.zip`, `tags[3]`, `limits["daily"]`.
  std::string path;
  /// What was wrong, for people: "expected an integer, got a string: \"12a\"".
  std::string message;
  /// For invalid_json and trailing_data, the byte offset in the input; npos otherwise.
  std::size_t offset = npos;

  /// One line with everything above, for logs:
  /// `out of range at address.zip (key "user:1"): 70000 does not fit in uint16`.
  std::string to_string() const;
};

}  // namespace redcoro::cache

template <>
struct std::is_error_code_enum<redcoro::cache::error> : std::true_type {};
