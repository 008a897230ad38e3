#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace redcoro::proto {

/// Protocol and reply-conversion errors. Values start at 1; 0 means success.
enum class error {
  // Malformed input: the connection carrying it cannot be trusted any more.
  invalid_data_type = 1,  ///< a byte that starts no RESP3 type where an element must start
  missing_crlf,           ///< a line or blob not ended by CRLF, or a line holding a lone CR or LF
  invalid_length,         ///< a length or count that is not a non-negative decimal (or `?`)
  length_overflow,        ///< a length or count that does not fit in 64 bits
  invalid_number,         ///< a `:` number that is not a decimal integer
  number_overflow,        ///< a `:` number outside the signed 64-bit range
  invalid_double,         ///< a `,` double that is not a decimal, inf or nan
  invalid_boolean,        ///< a `#` boolean other than `t` or `f`
  invalid_big_number,     ///< a `(` big number that is not a decimal integer
  invalid_null,           ///< a `_` null with a payload
  invalid_verbatim,       ///< a `=` verbatim string without its `xxx:` format prefix
  invalid_chunk,          ///< a streamed string part that does not start with `;`
  unexpected_end,         ///< a `.` end marker outside a streamed aggregate or after an attribute
  unpaired_map_element,   ///< a streamed map or attribute that ends after a key
  nesting_too_deep,       ///< more nested aggregates than parser_config::max_depth
  blob_too_large,         ///< a blob longer than parser_config::max_blob_length
  aggregate_too_large,    ///< an aggregate larger than parser_config::max_aggregate_size
  line_too_long,          ///< a line longer than parser_config::max_line_length

  // Per-reply conversion errors: recorded in that reply's result, the stream stays in sync.
  server_error,            ///< the server answered with an error (`-` or `!`); see reply_error
  type_mismatch,           ///< the reply's type cannot be stored in the requested C++ type
  not_a_number,            ///< a string reply that should hold a number does not
  out_of_range,            ///< a number that does not fit the requested C++ type
  size_mismatch,           ///< an aggregate whose size differs from a fixed-size C++ type
  response_size_mismatch,  ///< a response with a different number of slots than replies
};

/// The category of redcoro::proto::error; its name is "redcoro.proto".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// True for the errors that mean the input stream is malformed (as opposed to a reply that
/// did not fit the caller's type).
constexpr bool is_protocol_error(error e) noexcept {
  return e >= error::invalid_data_type && e <= error::line_too_long;
}

}  // namespace redcoro::proto

template <>
struct std::is_error_code_enum<redcoro::proto::error> : std::true_type {};
