// Integers behind a void*, enums, durations and time points: the parts of a scalar's
// representation that plain text and JSON share.

#include "core.hpp"

#include <chrono>
#include <cstring>

namespace redcoro::cache::detail {
namespace {

constexpr std::int64_t ns_per_ms = 1'000'000;
constexpr std::int64_t ns_per_s = 1'000'000'000;
constexpr std::int64_t s_per_day = 86'400;

template <class T>
T load(const void* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(void* p, T v) noexcept {
  std::memcpy(p, &v, sizeof v);
}

int128 pow10(int n) noexcept {
  int128 r = 1;
  while (n-- > 0)
    r *= 10;
  return r;
}

// The largest magnitude the exact decimal arithmetic below works with: 10^36 leaves room for
// one more multiplication by 100 inside an int128 (which holds about 1.7e38).
const int128 decimal_limit = pow10(36);

std::string period_name(std::int64_t period_ns) {
  switch (period_ns) {
    case 1:
      return "nanoseconds";
    case 1'000:
      return "microseconds";
    case ns_per_ms:
      return "milliseconds";
    case ns_per_s:
      return "seconds";
    case 60 * ns_per_s:
      return "minutes";
    case 3600 * ns_per_s:
      return "hours";
    case s_per_day* ns_per_s:
      return "days";
    default:
      return "ticks of " + to_string(period_ns) + " ns";
  }
}

// Total nanoseconds into the duration's ticks, exactly, in its rep.
bool store_ticks(const type_desc& type, int128 ns, std::string_view text, void* value,
                 codec_error& where) {
  if (ns % type.period_ns != 0)
    return fail(where, error::out_of_range,
                quote(text) + " is not a whole number of " + period_name(type.period_ns));
  if (!store_integer(value, type.size, type.is_signed, ns / type.period_ns))
    return fail(where, error::out_of_range,
                quote(text) + " does not fit in " + std::string(type.name) + " of " +
                    std::string(integer_name(type.size, type.is_signed)) + " " +
                    period_name(type.period_ns));
  return true;
}

int128 floor_div(int128 a, int128 b) noexcept {
  int128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

char* put_digits(char* out, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return out + width;
}

bool read_digits(std::string_view s, std::size_t pos, int width, unsigned& v) noexcept {
  if (pos + static_cast<std::size_t>(width) > s.size()) return false;
  v = 0;
  for (int i = 0; i < width; ++i) {
    const char c = s[pos + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

}  // namespace

// --- integers -------------------------------------------------------------------------------

int128 load_integer(const void* p, std::uint8_t size, bool is_signed) noexcept {
  switch (size) {
    case 1:
      return is_signed ? int128{load<std::int8_t>(p)} : int128{load<std::uint8_t>(p)};
    case 2:
      return is_signed ? int128{load<std::int16_t>(p)} : int128{load<std::uint16_t>(p)};
    case 4:
      return is_signed ? int128{load<std::int32_t>(p)} : int128{load<std::uint32_t>(p)};
    default:
      return is_signed ? int128{load<std::int64_t>(p)} : int128{load<std::uint64_t>(p)};
  }
}

bool store_integer(void* p, std::uint8_t size, bool is_signed, int128 v) noexcept {
  const unsigned bits = size * 8u;
  if (is_signed) {
    const int128 max = (int128{1} << (bits - 1)) - 1;
    if (v > max || v < -max - 1) return false;
  } else {
    if (v < 0 || v > (int128{1} << bits) - 1) return false;
  }
  switch (size) {
    case 1:
      is_signed ? store(p, static_cast<std::int8_t>(v)) : store(p, static_cast<std::uint8_t>(v));
      break;
    case 2:
      is_signed ? store(p, static_cast<std::int16_t>(v)) : store(p, static_cast<std::uint16_t>(v));
      break;
    case 4:
      is_signed ? store(p, static_cast<std::int32_t>(v)) : store(p, static_cast<std::uint32_t>(v));
      break;
    default:
      is_signed ? store(p, static_cast<std::int64_t>(v)) : store(p, static_cast<std::uint64_t>(v));
      break;
  }
  return true;
}

std::string_view integer_name(std::uint8_t size, bool is_signed) noexcept {
  switch (size) {
    case 1:
      return is_signed ? "int8" : "uint8";
    case 2:
      return is_signed ? "int16" : "uint16";
    case 4:
      return is_signed ? "int32" : "uint32";
    default:
      return is_signed ? "int64" : "uint64";
  }
}

char* format_int128(int128 v, char* out) {
  char buf[48];
  char* p = buf + sizeof buf;
  const bool negative = v < 0;
  // Digits of the magnitude, taken from the negative side so that the minimum has one too.
  do {
    const int digit = static_cast<int>(v % 10);
    *--p = static_cast<char>('0' + (digit < 0 ? -digit : digit));
    v /= 10;
  } while (v != 0);
  if (negative) *--p = '-';
  const auto n = static_cast<std::size_t>(buf + sizeof buf - p);
  std::memcpy(out, p, n);
  return out + n;
}

void append_int128(std::string& out, int128 v) {
  char buf[48];
  out.append(buf, format_int128(v, buf));
}

std::string to_string(int128 v) {
  std::string s;
  append_int128(s, v);
  return s;
}

// --- enums ----------------------------------------------------------------------------------

bool enum_name(const type_desc& type, const void* value, std::string_view& name,
               codec_error& where) {
  const auto v = static_cast<std::int64_t>(load_integer(value, type.size, type.is_signed));
  for (std::size_t i = 0; i < type.enumerator_count; ++i) {
    if (type.enumerators[i].value == v) {
      name = type.enumerators[i].name;
      return true;
    }
  }
  return fail(where, error::unnamed_enum_value,
              "enum value " + to_string(load_integer(value, type.size, type.is_signed)) +
                  " has no described name");
}

bool parse_enum(const type_desc& type, std::string_view name, void* value, codec_error& where) {
  for (std::size_t i = 0; i < type.enumerator_count; ++i) {
    const enumerator_desc& e = type.enumerators[i];
    if (e.name == name) {
      // The stored value came from this very enum, so it fits; the unsigned ones wrap back.
      const int128 v = type.is_signed ? int128{e.value}
                                      : int128{static_cast<std::uint64_t>(e.value)} &
                                            ((int128{1} << (type.size * 8)) - 1);
      store_integer(value, type.size, type.is_signed, v);
      return true;
    }
  }
  std::string message = "unknown name " + quote(name) + "; expected one of: ";
  constexpr std::size_t listed = 16;
  for (std::size_t i = 0; i < type.enumerator_count && i < listed; ++i) {
    if (i) message += ", ";
    message += type.enumerators[i].name;
  }
  if (type.enumerator_count > listed) message += ", ...";
  return fail(where, error::unknown_enum_name, std::move(message));
}

// --- durations ------------------------------------------------------------------------------

char* format_duration(const type_desc& type, const void* value, char* out) {
  // count * period_ns fits: |count| < 2^64 and period_ns < 2^63.
  const int128 ns = load_integer(value, type.size, type.is_signed) * type.period_ns;
  const int128 whole = ns / ns_per_ms;  // truncates toward zero, like the sign printed below
  int128 frac = ns % ns_per_ms;
  if (frac < 0) {
    frac = -frac;
    if (whole == 0) *out++ = '-';  // -0.5 ms: the integer part alone would lose the sign
  }
  out = format_int128(whole, out);
  if (frac != 0) {
    *out++ = '.';
    char digits[6];
    put_digits(digits, static_cast<unsigned>(frac), 6);
    std::size_t n = 6;
    while (digits[n - 1] == '0')
      --n;
    std::memcpy(out, digits, n);
    out += n;
  }
  return out;
}

bool parse_duration(const type_desc& type, std::string_view text, void* value, codec_error& where,
                    error syntax) {
  // -?digits(.digits)?([eE][+-]?digits)? read exactly: the mantissa into an int128, then
  // scaled by a power of ten. Binary floating point would turn 0.1 ms into 99999.99... ns.
  const auto bad = [&] {
    return fail(where, syntax, quote(text) + " is not a decimal number of milliseconds");
  };
  const auto too_large = [&] {
    return fail(where, error::out_of_range, quote(text) + " is too large for a duration");
  };
  std::size_t i = 0;
  const std::size_t n = text.size();
  const bool negative = i < n && text[i] == '-';
  if (negative) ++i;
  int128 mantissa = 0;
  int scale = 0;  // value = mantissa * 10^scale milliseconds
  std::size_t digits = 0;
  bool any_digit = false;
  for (; i < n && text[i] >= '0' && text[i] <= '9'; ++i, any_digit = true) {
    if (mantissa >= decimal_limit) return too_large();
    mantissa = mantissa * 10 + (text[i] - '0');
  }
  if (!any_digit) return bad();
  if (i < n && text[i] == '.') {
    ++i;
    for (; i < n && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (mantissa >= decimal_limit) {
        // Past 36 significant digits only zeros can follow and still be exact.
        if (text[i] != '0') return too_large();
        continue;
      }
      mantissa = mantissa * 10 + (text[i] - '0');
      --scale;
    }
    if (digits == 0) return bad();
  }
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    const bool negative_exponent = i < n && text[i] == '-';
    if (i < n && (text[i] == '-' || text[i] == '+')) ++i;
    int exponent = 0;
    bool any = false;
    for (; i < n && text[i] >= '0' && text[i] <= '9'; ++i, any = true)
      exponent = exponent < 10000 ? exponent * 10 + (text[i] - '0') : exponent;
    if (!any) return bad();
    scale += negative_exponent ? -exponent : exponent;
  }
  if (i != n) return bad();
  // Milliseconds to nanoseconds.
  scale += 6;
  int128 ns;
  if (mantissa == 0) {
    ns = 0;
  } else if (scale >= 0) {
    if (scale > 38) return too_large();
    const int128 factor = pow10(scale);
    if (mantissa > (decimal_limit * 100) / factor) return too_large();
    ns = mantissa * factor;
  } else {
    if (scale < -38)
      return fail(where, error::out_of_range, quote(text) + " is finer than a nanosecond");
    const int128 divisor = pow10(-scale);
    if (mantissa % divisor != 0)
      return fail(where, error::out_of_range, quote(text) + " is finer than a nanosecond");
    ns = mantissa / divisor;
  }
  return store_ticks(type, negative ? -ns : ns, text, value, where);
}

// --- time points ----------------------------------------------------------------------------

namespace {

// Days from 1970-01-01 of 0000-01-01 and of 9999-12-31: the years ISO-8601 writes in four
// digits without a sign.
constexpr std::int64_t first_day = -719'528;
constexpr std::int64_t last_day = 2'932'896;

}  // namespace

char* format_time(const type_desc& type, const void* value, char* out, codec_error& where) {
  const int128 ns = load_integer(value, type.size, type.is_signed) * type.period_ns;
  const int128 day_ns = int128{s_per_day} * ns_per_s;
  const int128 days = floor_div(ns, day_ns);
  if (days < first_day || days > last_day) {
    fail(where, error::out_of_range,
         "time point " + to_string(ns) + " ns from the epoch is outside years 0000-9999");
    return nullptr;
  }
  const int128 in_day = ns - days * day_ns;
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
  const auto seconds = static_cast<unsigned>(in_day / ns_per_s);
  const auto fraction = static_cast<unsigned>(in_day % ns_per_s);
  out = put_digits(out, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
  *out++ = '-';
  out = put_digits(out, static_cast<unsigned>(ymd.month()), 2);
  *out++ = '-';
  out = put_digits(out, static_cast<unsigned>(ymd.day()), 2);
  *out++ = 'T';
  out = put_digits(out, seconds / 3600, 2);
  *out++ = ':';
  out = put_digits(out, seconds / 60 % 60, 2);
  *out++ = ':';
  out = put_digits(out, seconds % 60, 2);
  *out++ = '.';
  // Milliseconds always; more digits only when the value has them, so that it round-trips.
  if (fraction % 1'000'000 == 0)
    out = put_digits(out, fraction / 1'000'000, 3);
  else if (fraction % 1'000 == 0)
    out = put_digits(out, fraction / 1'000, 6);
  else
    out = put_digits(out, fraction, 9);
  *out++ = 'Z';
  return out;
}

bool parse_time(const type_desc& type, std::string_view text, void* value, codec_error& where) {
  const auto bad = [&](const char* why) {
    return fail(where, error::invalid_text,
                quote(text) + " is not an ISO-8601 time (YYYY-MM-DDTHH:MM:SS[.fff]Z): " + why);
  };
  unsigned year, month, day, hour, minute, second;
  if (!read_digits(text, 0, 4, year) || text.size() < 19 || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, hour) || text[13] != ':' ||
      !read_digits(text, 14, 2, minute) || text[16] != ':' || !read_digits(text, 17, 2, second))
    return bad("malformed");
  const std::chrono::year_month_day ymd{std::chrono::year{static_cast<int>(year)},
                                        std::chrono::month{month}, std::chrono::day{day}};
  if (!ymd.ok()) return bad("no such date");
  if (hour > 23 || minute > 59) return bad("no such time of day");
  if (second > 59) return bad("leap seconds cannot be represented");
  std::size_t i = 19;
  int128 fraction = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    std::size_t digits = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (digits < 9)
        fraction = fraction * 10 + (text[i] - '0');
      else if (text[i] != '0')
        return fail(where, error::out_of_range, quote(text) + " is finer than a nanosecond");
    }
    if (digits == 0) return bad("no digits after the decimal point");
    for (; digits < 9; ++digits)
      fraction *= 10;
  }
  std::int64_t offset_s = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    unsigned oh, om;
    if (!read_digits(text, i + 1, 2, oh) || i + 3 >= text.size() || text[i + 3] != ':' ||
        !read_digits(text, i + 4, 2, om) || oh > 23 || om > 59)
      return bad("malformed UTC offset");
    offset_s = (text[i] == '-' ? -1 : 1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
    i += 6;
  } else {
    return bad("no Z or UTC offset");
  }
  if (i != text.size()) return bad("trailing characters");
  const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  const int128 s = int128{days} * s_per_day + hour * 3600 + minute * 60 + second - offset_s;
  // A UTC offset can move the time out of the years the writer can write back.
  if (s < int128{first_day} * s_per_day || s >= (int128{last_day} + 1) * s_per_day)
    return fail(where, error::out_of_range, quote(text) + " is outside years 0000-9999 in UTC");
  return store_ticks(type, s * ns_per_s + fraction, text, value, where);
}

}  // namespace redcoro::cache::detail
