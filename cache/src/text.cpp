// Scalars as plain text, the way redis-cli shows them and INCR reads them.

#include "core.hpp"

#include <charconv>

namespace redcoro::cache::detail {
namespace {

template <class F>
bool parse_float(std::string_view in, void* value, std::string_view name, codec_error& where) {
  F v = 0;
  const auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), v);
  if (ec == std::errc::invalid_argument || end != in.data() + in.size())
    return fail(where, error::invalid_text, quote(in) + " is not a number");
  if (ec == std::errc::result_out_of_range)
    return fail(where, error::out_of_range, quote(in) + " does not fit in " + std::string(name));
  *static_cast<F*>(value) = v;
  return true;
}

bool parse_integer(const type_desc& type, std::string_view in, void* value, codec_error& where) {
  // from_chars: decimal digits with an optional '-', nothing else (no '+', no spaces), which
  // is what Redis's own INCR accepts.
  const char* const first = in.data();
  const char* const last = first + in.size();
  int128 v;
  std::from_chars_result r;
  if (!in.empty() && in.front() == '-') {
    std::int64_t s = 0;
    r = std::from_chars(first, last, s);
    v = s;
  } else {
    std::uint64_t u = 0;
    r = std::from_chars(first, last, u);
    v = u;
  }
  if (r.ec == std::errc::invalid_argument || r.ptr != last)
    return fail(where, error::invalid_text, quote(in) + " is not an integer");
  if (r.ec == std::errc::result_out_of_range || !store_integer(value, type.size, type.is_signed, v))
    return fail(where, error::out_of_range,
                quote(in) + " does not fit in " + std::string(type.name));
  return true;
}

bool write_text(const type_desc& type, const void* value, std::string& out, codec_error& where) {
  char buf[max_scalar_text];
  switch (type.kind) {
    case value_kind::string:
      out += *static_cast<const std::string*>(value);
      return true;
    case value_kind::boolean:
      out += *static_cast<const bool*>(value) ? '1' : '0';
      return true;
    case value_kind::integer:
      append_int128(out, load_integer(value, type.size, type.is_signed));
      return true;
    case value_kind::floating:
      // Shortest round-trip text; infinities and NaN come out as "inf", "-inf" and "nan",
      // the spelling Redis uses for sorted-set scores.
      if (type.size == sizeof(float))
        out.append(buf,
                   std::to_chars(buf, buf + sizeof buf, *static_cast<const float*>(value)).ptr);
      else
        out.append(buf,
                   std::to_chars(buf, buf + sizeof buf, *static_cast<const double*>(value)).ptr);
      return true;
    case value_kind::enumeration: {
      std::string_view name;
      if (!enum_name(type, value, name, where)) return false;
      out += name;
      return true;
    }
    case value_kind::duration:
      out.append(buf, format_duration(type, value, buf));
      return true;
    case value_kind::time_point: {
      char* end = format_time(type, value, buf, where);
      if (!end) return false;
      out.append(buf, end);
      return true;
    }
    default:
      return !encode_json(type, value, out, where);
  }
}

bool read_text(const type_desc& type, std::string_view in, void* value, codec_error& where) {
  switch (type.kind) {
    case value_kind::string:
      static_cast<std::string*>(value)->assign(in);
      return true;
    case value_kind::boolean:
      if (in == "1" || in == "true") {
        *static_cast<bool*>(value) = true;
      } else if (in == "0" || in == "false") {
        *static_cast<bool*>(value) = false;
      } else {
        return fail(where, error::invalid_text, quote(in) + " is not 1, 0, true or false");
      }
      return true;
    case value_kind::integer:
      return parse_integer(type, in, value, where);
    case value_kind::floating:
      if (type.size == sizeof(float)) return parse_float<float>(in, value, type.name, where);
      return parse_float<double>(in, value, type.name, where);
    case value_kind::enumeration:
      return parse_enum(type, in, value, where);
    case value_kind::duration:
      return parse_duration(type, in, value, where, error::invalid_text);
    case value_kind::time_point:
      return parse_time(type, in, value, where);
    default:
      return !decode_json(type, in, value, where);
  }
}

}  // namespace

std::error_code encode_text(const type_desc& type, const void* value, std::string& out,
                            codec_error& where) {
  return write_text(type, value, out, where) ? std::error_code() : where.code;
}

std::error_code decode_text(const type_desc& type, std::string_view in, void* value,
                            codec_error& where) {
  return read_text(type, in, value, where) ? std::error_code() : where.code;
}

}  // namespace redcoro::cache::detail
