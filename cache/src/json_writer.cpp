// Encoding: a walk over the type description that appends JSON text straight to the output
// string. No document is built; the only allocations are the output string's growth.

#include "core.hpp"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>

namespace redcoro::cache::detail {
namespace {

// 0: copied as is; 1: escaped; 2: a byte of a multi-byte UTF-8 sequence (copied, but the
// string is validated once it has been seen).
constexpr std::array<std::uint8_t, 256> byte_class = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c)
    t[static_cast<std::size_t>(c)] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int c = 0x80; c < 0x100; ++c)
    t[static_cast<std::size_t>(c)] = 2;
  return t;
}();

std::error_code append_string(std::string& out, std::string_view s, codec_error& where) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  const char* p = s.data();
  const char* const end = p + s.size();
  const char* run = p;
  bool multibyte = false;
  for (; p != end; ++p) {
    const std::uint8_t cls = byte_class[static_cast<unsigned char>(*p)];
    if (cls == 0) continue;
    if (cls == 2) {
      multibyte = true;
      continue;
    }
    out.append(run, p);
    run = p + 1;
    switch (*p) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        const auto c = static_cast<unsigned char>(*p);
        const char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        out.append(u, 6);
      }
    }
  }
  out.append(run, end);
  out += '"';
  // Bytes above 0x7f pass through unchanged, so they must form UTF-8: a JSON reader (ours
  // included) rejects the whole document otherwise. simdjson checks it at tens of GB/s.
  if (multibyte && !simdjson::validate_utf8(s.data(), s.size()))
    return fail(
        where, error::invalid_utf8,
        "invalid UTF-8 at byte " + std::to_string(first_invalid_utf8(s)) + " of " + quote(s));
  return {};
}

template <class F>
void append_float(std::string& out, F v) {
  // JSON has no NaN or infinities; they are written as the strings protobuf's JSON mapping
  // uses, which the reader accepts back.
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v < 0 ? "\"-Infinity\"" : "\"Infinity\"";
  } else {
    char buf[32];
    // Shortest text that reads back as the same value.
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }
}

std::error_code encode_value(const type_desc& type, const void* value, std::string& out,
                             codec_error& where, int depth);

struct map_context {
  const type_desc* element;
  std::string* out;
  codec_error* where;
  int depth;
  bool first;
};

std::error_code encode_entry(void* context, std::string_view key, const void* value) {
  auto& c = *static_cast<map_context*>(context);
  if (!c.first) *c.out += ',';
  c.first = false;
  std::error_code ec = append_string(*c.out, key, *c.where);
  if (ec) {
    c.where->message.insert(0, "in the key: ");
  } else {
    *c.out += ':';
    ec = encode_value(*c.element, value, *c.out, *c.where, c.depth);
  }
  if (ec) prepend_key(*c.where, key);
  return ec;
}

std::error_code encode_value(const type_desc& type, const void* value, std::string& out,
                             codec_error& where, int depth) {
  switch (type.kind) {
    case value_kind::string:
      return append_string(out, *static_cast<const std::string*>(value), where);
    case value_kind::boolean:
      out += *static_cast<const bool*>(value) ? "true" : "false";
      return {};
    case value_kind::integer: {
      char buf[24];
      const int128 v = load_integer(value, type.size, type.is_signed);
      char* const end =
          type.is_signed ? std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v)).ptr
                         : std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(v)).ptr;
      out.append(buf, end);
      return {};
    }
    case value_kind::floating:
      if (type.size == sizeof(float))
        append_float(out, *static_cast<const float*>(value));
      else
        append_float(out, *static_cast<const double*>(value));
      return {};
    case value_kind::enumeration: {
      std::string_view name;
      if (auto ec = enum_name(type, value, name, where)) return ec;
      // Enumerator names are C++ identifiers: nothing to escape.
      out += '"';
      out += name;
      out += '"';
      return {};
    }
    case value_kind::duration:
      append_duration(type, value, out);
      return {};
    case value_kind::time_point:
      out += '"';
      if (auto ec = append_time(type, value, out, where)) return ec;
      out += '"';
      return {};
    case value_kind::optional:
      if (!type.optional->has_value(value)) {
        out += "null";
        return {};
      }
      return encode_value(*type.element, type.optional->value(value), out, where, depth);
    case value_kind::sequence: {
      // The reader refuses what nests deeper than max_depth: the writer does not produce it.
      if (++depth > max_depth) return too_deep(where);
      out += '[';
      const std::size_t n = type.sequence->size(value);
      for (std::size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        if (auto ec = encode_value(*type.element, type.sequence->at(value, i), out, where, depth)) {
          prepend_index(where, i);
          return ec;
        }
      }
      out += ']';
      return {};
    }
    case value_kind::bool_sequence: {
      if (depth + 1 > max_depth) return too_deep(where);
      out += '[';
      const std::size_t n = type.bool_sequence->size(value);
      for (std::size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        out += type.bool_sequence->at(value, i) ? "true" : "false";
      }
      out += ']';
      return {};
    }
    case value_kind::map: {
      if (++depth > max_depth) return too_deep(where);
      out += '{';
      map_context c{type.element, &out, &where, depth, true};
      if (auto ec = type.map->for_each(value, &encode_entry, &c)) return ec;
      out += '}';
      return {};
    }
    case value_kind::object: {
      if (++depth > max_depth) return too_deep(where);
      out += '{';
      // An object is a const view here: member() only computes an address.
      void* object = const_cast<void*>(value);
      for (std::size_t i = 0; i < type.field_count; ++i) {
        const field_desc& f = type.fields[i];
        if (i) out += ',';
        out += f.json_key;
        if (auto ec = encode_value(*f.type, f.member(object), out, where, depth)) {
          prepend_field(where, f.name);
          return ec;
        }
      }
      out += '}';
      return {};
    }
    case value_kind::custom: {
      // A user codec's output, carried as a JSON string.
      std::string text;
      where.path.clear();
      where.message.clear();
      where.offset = codec_error::npos;
      if (auto ec = type.custom->encode(value, text, where)) {
        where.code = ec;
        return ec;
      }
      return append_string(out, text, where);
    }
  }
  return fail(where, error::wrong_type, "unknown value kind");
}

}  // namespace

std::error_code encode_json(const type_desc& type, const void* value, std::string& out,
                            codec_error& where) {
  return encode_value(type, value, out, where, 0);
}

}  // namespace redcoro::cache::detail
