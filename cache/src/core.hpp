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
// PERF: the functions below return true on success and false on failure, with everything in
// `where` (the code included). Returning a std::error_code would cost a call to
// std::system_category() for every value that succeeds.

// Starts an error at the innermost value (the path is built as the error travels out) and
// returns false, for `return fail(...)`.
bool fail(codec_error& where, error e, std::string message, std::size_t offset = codec_error::npos);

// A value nested past max_depth.
bool too_deep(codec_error& where);

// Calls a user codec's function: its error goes into `where` like ours.
template <class F>
bool call_user_codec(codec_error& where, F&& f) {
  where.path.clear();
  where.message.clear();
  where.offset = codec_error::npos;
  if (const std::error_code ec = f()) {
    where.code = ec;
    return false;
  }
  return true;
}

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
// Writes the decimal digits (at most 40 bytes) at `out`; returns the end.
char* format_int128(int128 v, char* out);
void append_int128(std::string& out, int128 v);

// --- scalars shared by JSON and text --------------------------------------------------------

// The name of the enumerator holding the enum at `value`, or an unnamed_enum_value error.
bool enum_name(const type_desc& type, const void* value, std::string_view& name,
               codec_error& where);
bool parse_enum(const type_desc& type, std::string_view name, void* value, codec_error& where);

// Room for the longest text of a duration or a time point below.
inline constexpr std::size_t max_scalar_text = 64;

// Durations as decimal milliseconds, exact: "1500", "-0.25", "0.000001". Writes at `out`
// (at most max_scalar_text bytes), returns the end.
char* format_duration(const type_desc& type, const void* value, char* out);
// `syntax` is the error for text that is not a decimal number (invalid_text for plain text,
// invalid_json inside a JSON document).
bool parse_duration(const type_desc& type, std::string_view text, void* value, codec_error& where,
                    error syntax);

// system_clock time points as ISO-8601 UTC: "2026-12-06T07:00:00.123Z" (6 or 9 fractional
// digits when the value has them). Writes at `out` (at most max_scalar_text bytes), returns
// the end, or nullptr with `where` filled for a year outside 0000-9999.
char* format_time(const type_desc& type, const void* value, char* out, codec_error& where);
bool parse_time(const type_desc& type, std::string_view text, void* value, codec_error& where);

}  // namespace redcoro::cache::detail
