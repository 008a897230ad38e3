// Encoding: a walk over the type description that writes JSON text straight into the output
// string. No document is built; the only allocations are the output string's growth.

#include "core.hpp"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

namespace redcoro::cache::detail {
namespace {

// PERF: writes through a raw pointer into the string, grown ahead of need. Appending to the
// std::string piece by piece (a capacity check and a size update per call, a call per comma)
// was half of the encoder's time.
class writer {
 public:
  explicit writer(std::string& out) : out_(out) {
    const std::size_t used = out.size();
    // The string's own capacity is free to use; otherwise start with room for a small value.
    out_.resize(std::max(out_.capacity(), used + 256));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;
  ~writer() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

  // Room for n more bytes at the returned pointer; hand the new end back with advance().
  char* reserve(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
    return p_;
  }
  void advance(char* p) { p_ = p; }

  void put(char c) {
    if (p_ == end_) grow(1);
    *p_++ = c;
  }
  void put(std::string_view s) {
    char* p = reserve(s.size());
    std::memcpy(p, s.data(), s.size());
    p_ = p + s.size();
  }

 private:
  [[gnu::noinline]] void grow(std::size_t n) {
    const auto used = static_cast<std::size_t>(p_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + n));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  char* p_;
  char* end_;
};

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

constexpr std::uint64_t ones = 0x0101010101010101;
constexpr std::uint64_t highs = 0x8080808080808080;

// Nonzero when some byte of w is below n (n <= 128): the borrow of the subtraction reaches
// that byte's high bit.
constexpr std::uint64_t has_less(std::uint64_t w, std::uint64_t n) {
  return (w - ones * n) & ~w & highs;
}

constexpr std::uint64_t has_byte(std::uint64_t w, unsigned char c) {
  return has_less(w ^ (ones * c), 1);
}

bool put_string(writer& w, std::string_view s, codec_error& where) {
  static constexpr char hex[] = "0123456789abcdef";
  const char* p = s.data();
  const char* const end = p + s.size();
  // Room for the common case, nothing to escape; an escape asks for more.
  char* q = w.reserve(s.size() + 2);
  *q++ = '"';
  bool multibyte = false;
  while (p != end) {
    // PERF: eight bytes at a time while none needs escaping.
    while (end - p >= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, 8);
      if (has_less(word, 0x20) | has_byte(word, '"') | has_byte(word, '\\')) break;
      multibyte |= (word & highs) != 0;
      std::memcpy(q, p, 8);
      q += 8;
      p += 8;
    }
    if (p == end) break;
    const char c = *p++;
    const std::uint8_t cls = byte_class[static_cast<unsigned char>(c)];
    if (cls != 1) {
      multibyte |= cls == 2;
      *q++ = c;
      continue;
    }
    // An escape is at most 6 bytes where there was 1: make room for it and the rest.
    w.advance(q);
    q = w.reserve(6 + static_cast<std::size_t>(end - p) + 1);
    *q++ = '\\';
    switch (c) {
      case '"':
        *q++ = '"';
        break;
      case '\\':
        *q++ = '\\';
        break;
      case '\n':
        *q++ = 'n';
        break;
      case '\r':
        *q++ = 'r';
        break;
      case '\t':
        *q++ = 't';
        break;
      case '\b':
        *q++ = 'b';
        break;
      case '\f':
        *q++ = 'f';
        break;
      default:
        *q++ = 'u';
        *q++ = '0';
        *q++ = '0';
        *q++ = hex[static_cast<unsigned char>(c) >> 4];
        *q++ = hex[c & 15];
    }
  }
  *q++ = '"';
  w.advance(q);
  // Bytes above 0x7f pass through unchanged, so they must form UTF-8: a JSON reader (ours
  // included) rejects the whole document otherwise. simdjson checks it at tens of GB/s.
  if (multibyte && !simdjson::validate_utf8(s.data(), s.size()))
    return fail(
        where, error::invalid_utf8,
        "invalid UTF-8 at byte " + std::to_string(first_invalid_utf8(s)) + " of " + quote(s));
  return true;
}

template <class F>
void put_float(writer& w, F v) {
  // JSON has no NaN or infinities; they are written as the strings protobuf's JSON mapping
  // uses, which the reader accepts back.
  if (std::isnan(v)) {
    w.put("\"NaN\"");
  } else if (std::isinf(v)) {
    w.put(v < 0 ? "\"-Infinity\"" : "\"Infinity\"");
  } else {
    // Shortest text that reads back as the same value (at most 24 bytes for a double).
    char* p = w.reserve(32);
    w.advance(std::to_chars(p, p + 32, v).ptr);
  }
}

bool encode_value(const type_desc& type, const void* value, writer& w, codec_error& where,
                  int depth);

struct map_context {
  const type_desc* element;
  writer* w;
  codec_error* where;
  int depth;
  bool first;
};

bool encode_entry(void* context, std::string_view key, const void* value) {
  auto& c = *static_cast<map_context*>(context);
  if (!c.first) c.w->put(',');
  c.first = false;
  bool ok = put_string(*c.w, key, *c.where);
  if (!ok) {
    c.where->message.insert(0, "in the key: ");
  } else {
    c.w->put(':');
    ok = encode_value(*c.element, value, *c.w, *c.where, c.depth);
  }
  if (!ok) prepend_key(*c.where, key);
  return ok;
}

bool encode_value(const type_desc& type, const void* value, writer& w, codec_error& where,
                  int depth) {
  switch (type.kind) {
    case value_kind::string:
      return put_string(w, *static_cast<const std::string*>(value), where);
    case value_kind::boolean:
      w.put(*static_cast<const bool*>(value) ? std::string_view("true") : "false");
      return true;
    case value_kind::integer: {
      char* p = w.reserve(24);
      const int128 v = load_integer(value, type.size, type.is_signed);
      w.advance(type.is_signed ? std::to_chars(p, p + 24, static_cast<std::int64_t>(v)).ptr
                               : std::to_chars(p, p + 24, static_cast<std::uint64_t>(v)).ptr);
      return true;
    }
    case value_kind::floating:
      if (type.size == sizeof(float))
        put_float(w, *static_cast<const float*>(value));
      else
        put_float(w, *static_cast<const double*>(value));
      return true;
    case value_kind::enumeration: {
      std::string_view name;
      if (!enum_name(type, value, name, where)) return false;
      // Enumerator names are C++ identifiers: nothing to escape.
      char* p = w.reserve(name.size() + 2);
      *p++ = '"';
      std::memcpy(p, name.data(), name.size());
      p += name.size();
      *p++ = '"';
      w.advance(p);
      return true;
    }
    case value_kind::duration:
      w.advance(format_duration(type, value, w.reserve(max_scalar_text)));
      return true;
    case value_kind::time_point: {
      char* p = w.reserve(max_scalar_text + 2);
      *p++ = '"';
      p = format_time(type, value, p, where);
      if (!p) return false;
      *p++ = '"';
      w.advance(p);
      return true;
    }
    case value_kind::optional:
      if (!type.optional->has_value(value)) {
        w.put("null");
        return true;
      }
      return encode_value(*type.element, type.optional->value(value), w, where, depth);
    case value_kind::sequence: {
      // The reader refuses what nests deeper than max_depth: the writer does not produce it.
      if (++depth > max_depth) return too_deep(where);
      w.put('[');
      const std::size_t n = type.sequence->size(value);
      for (std::size_t i = 0; i < n; ++i) {
        if (i) w.put(',');
        if (!encode_value(*type.element, type.sequence->at(value, i), w, where, depth)) {
          prepend_index(where, i);
          return false;
        }
      }
      w.put(']');
      return true;
    }
    case value_kind::bool_sequence: {
      if (depth + 1 > max_depth) return too_deep(where);
      w.put('[');
      const std::size_t n = type.bool_sequence->size(value);
      for (std::size_t i = 0; i < n; ++i) {
        if (i) w.put(',');
        w.put(type.bool_sequence->at(value, i) ? std::string_view("true") : "false");
      }
      w.put(']');
      return true;
    }
    case value_kind::map: {
      if (++depth > max_depth) return too_deep(where);
      w.put('{');
      map_context c{type.element, &w, &where, depth, true};
      if (!type.map->for_each(value, &encode_entry, &c)) return false;
      w.put('}');
      return true;
    }
    case value_kind::object: {
      if (++depth > max_depth) return too_deep(where);
      w.put('{');
      // An object is a const view here: member() only computes an address.
      void* object = const_cast<void*>(value);
      for (std::size_t i = 0; i < type.field_count; ++i) {
        const field_desc& f = type.fields[i];
        if (i) w.put(',');
        w.put(f.json_key);
        if (!encode_value(*f.type, f.member(object), w, where, depth)) {
          prepend_field(where, f.name);
          return false;
        }
      }
      w.put('}');
      return true;
    }
    case value_kind::custom: {
      // A user codec's output, carried as a JSON string.
      std::string text;
      if (!call_user_codec(where, [&] { return type.custom->encode(value, text, where); }))
        return false;
      return put_string(w, text, where);
    }
  }
  return fail(where, error::wrong_type, "unknown value kind");
}

}  // namespace

std::error_code encode_json(const type_desc& type, const void* value, std::string& out,
                            codec_error& where) {
  writer w(out);
  return encode_value(type, value, w, where, 0) ? std::error_code() : where.code;
}

}  // namespace redcoro::cache::detail
