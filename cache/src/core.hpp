#pragma once

// Helpers shared by the JSON reader and writer and the text codec. Not installed.

#include <redcoro/cache/detail/schema.hpp>
#include <redcoro/cache/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace redcoro::cache::detail {

__extension__ using int128 = __int128;

// --- errors ---------------------------------------------------------------------------------

// Starts an error at the innermost value: the path is built as the error travels out.
std::error_code fail(codec_error& where, error e, std::string message,
                     std::size_t offset = codec_error::npos);

// A value nested past max_depth.
std::error_code too_deep(codec_error& where);

// Path segments, prepended on the way out of each container.
void prepend_field(codec_error& where, std::string_view name);
void prepend_index(codec_error& where, std::size_t index);
void prepend_key(codec_error& where, std::string_view key);

// Some input quoted for a message: at most `max` bytes, control characters escaped.
std::string quote(std::string_view text, std::size_t max = 40);

// The offset of the first byte that is not part of valid UTF-8 (size() when it is all valid).
std::size_t first_invalid_utf8(std::string_view text) noexcept;

// --- integers behind a void* ----------------------------------------------------------------

int128 load_integer(const void* p, std::uint8_t size, bool is_signed) noexcept;
// False (and nothing stored) when v does not fit.
bool store_integer(void* p, std::uint8_t size, bool is_signed, int128 v) noexcept;
// "int16", "uint64": the C++ integer of that size and signedness.
std::string_view integer_name(std::uint8_t size, bool is_signed) noexcept;
std::string to_string(int128 v);
void append_int128(std::string& out, int128 v);

// --- scalars shared by JSON and text --------------------------------------------------------

// The name of the enumerator holding the enum at `value`, or an unnamed_enum_value error.
std::error_code enum_name(const type_desc& type, const void* value, std::string_view& name,
                          codec_error& where);
std::error_code parse_enum(const type_desc& type, std::string_view name, void* value,
                           codec_error& where);

// Durations as decimal milliseconds, exact: "1500", "-0.25", "0.000001".
void append_duration(const type_desc& type, const void* value, std::string& out);
// `syntax` is the error for text that is not a decimal number (invalid_text for plain text,
// invalid_json inside a JSON document).
std::error_code parse_duration(const type_desc& type, std::string_view text, void* value,
                               codec_error& where, error syntax);

// system_clock time points as ISO-8601 UTC: "2026-12-06T07:00:00.123Z" (6 or 9 fractional
// digits when the value has them).
std::error_code append_time(const type_desc& type, const void* value, std::string& out,
                            codec_error& where);
std::error_code parse_time(const type_desc& type, std::string_view text, void* value,
                           codec_error& where);

}  // namespace redcoro::cache::detail
