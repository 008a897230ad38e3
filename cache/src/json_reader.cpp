// Decoding: simdjson's on-demand API walked by the type description, writing each value
// straight into its place in the C++ object. No DOM: simdjson indexes the structure of the
// document (stage 1, vectorized), then each value is parsed once, when the walk reaches it.

#include "core.hpp"

#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <limits>
#include <memory>

namespace redcoro::cache::detail {
namespace {

namespace od = simdjson::ondemand;

// A parser and a padded copy of the input per thread. simdjson reads up to
// SIMDJSON_PADDING bytes past the end of its input, and the bytes we are given (a view into
// a reply buffer) promise nothing past their end; copying also lets us wrap the input in
// brackets (below). The parser keeps its buffers between calls: after the first value of a
// given size, decoding allocates nothing but what the C++ object needs.
struct scratch {
  od::parser parser;
  std::string buffer;
  bool busy = false;
};

// A document above this size has its buffers released afterwards, so that one large value
// does not pin megabytes to a thread for good.
constexpr std::size_t keep_bytes = std::size_t{1} << 20;

// The thread's scratch, or a new one when it is in use: a user codec of a member may decode
// JSON itself, in the middle of the document that holds the member.
class scratch_lease {
 public:
  scratch_lease() {
    thread_local scratch local;
    if (local.busy) {
      own_ = std::make_unique<scratch>();
      s_ = own_.get();
    } else {
      s_ = &local;
    }
    s_->busy = true;
  }
  scratch_lease(const scratch_lease&) = delete;
  scratch_lease& operator=(const scratch_lease&) = delete;
  ~scratch_lease() {
    s_->busy = false;
    if (s_->buffer.size() > keep_bytes) {
      s_->parser = od::parser();
      s_->buffer = std::string();
    }
  }
  scratch& operator*() const { return *s_; }

 private:
  std::unique_ptr<scratch> own_;
  scratch* s_;
};

std::string_view json_type_name(od::json_type t) {
  switch (t) {
    case od::json_type::array:
      return "an array";
    case od::json_type::object:
      return "an object";
    case od::json_type::number:
      return "a number";
    case od::json_type::string:
      return "a string";
    case od::json_type::boolean:
      return "a boolean";
    case od::json_type::null:
      return "null";
  }
  return "something else";
}

std::string_view expected_name(const type_desc& type) {
  switch (type.kind) {
    case value_kind::string:
    case value_kind::custom:
      return "a string";
    case value_kind::boolean:
      return "true or false";
    case value_kind::integer:
      return "an integer";
    case value_kind::floating:
      return "a number";
    case value_kind::enumeration:
      return "a string (an enumerator name)";
    case value_kind::duration:
      return "a number of milliseconds";
    case value_kind::time_point:
      return "a string (an ISO-8601 time)";
    case value_kind::sequence:
    case value_kind::bool_sequence:
      return "an array";
    case value_kind::map:
    case value_kind::object:
      return "an object";
    case value_kind::optional:
      return expected_name(*type.element);
  }
  return "a value";
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0')
    ++i;
  else if (!digits())
    return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A raw (still escaped) key against a member name. Names are C++ identifiers, so a match
// needs no unescaping. The bytes are compared before the length is checked: a name holds no
// quote, so the loop stops at the key's closing quote at the latest and never reads past it.
// PERF: inline, rather than simdjson's unsafe_is_equal() and its call to memcmp.
bool key_is(const od::raw_json_string& key, std::string_view name) {
  const char* raw = key.raw();
  for (std::size_t i = 0; i < name.size(); ++i)
    if (raw[i] != name[i]) return false;
  return raw[name.size()] == '"';
}

bool is_integer_token(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

class reader {
 public:
  reader(const char* base, std::size_t size, codec_error& where)
      : base_(base), size_(size), where_(where) {}

  bool decode_root(od::document& doc, const type_desc& type, void* out);

 private:
  bool decode(const type_desc& type, od::value& v, void* out);
  bool decode_object(const type_desc& type, od::value& v, void* out);
  bool decode_map(const type_desc& type, od::value& v, void* out);
  bool decode_sequence(const type_desc& type, od::value& v, void* out);
  bool decode_bool_sequence(const type_desc& type, od::value& v, void* out);
  bool decode_floating(const type_desc& type, od::value& v, void* out);

  // Where `p` is in the caller's input (the buffer has a '[' in front of it).
  std::size_t offset_of(const char* p) const {
    if (p < base_) return 0;
    const auto off = static_cast<std::size_t>(p - base_);
    return off < size_ ? off : size_;
  }
  std::size_t offset_of(od::value& v) {
    const char* p = nullptr;
    if (v.current_location().get(p)) return size_;
    return offset_of(p);
  }

  bool malformed(simdjson::error_code e, std::size_t offset) {
    return fail(
        where_, error::invalid_json,
        std::string(simdjson::error_message(e)) + " (at byte " + std::to_string(offset) + ")",
        offset);
  }

  // A getter failed on `v`: say whether the document is broken there or holds another type.
  bool mismatch(const type_desc& type, od::value& v, simdjson::error_code e);

  // Counts the arrays and objects being decoded, around one container's decoding.
  class level {
   public:
    explicit level(int& depth) : depth_(++depth) {}
    ~level() { --depth_; }
    level(const level&) = delete;
    level& operator=(const level&) = delete;
    bool too_deep() const { return depth_ > max_depth; }

   private:
    int& depth_;
  };

  const char* base_;
  std::size_t size_;
  codec_error& where_;
  // simdjson's on-demand reader has no depth limit of its own (release builds ignore
  // parser::max_depth), so this one bounds the recursion.
  int depth_ = 0;
};

bool reader::mismatch(const type_desc& type, od::value& v, simdjson::error_code e) {
  const std::size_t offset = offset_of(v);
  od::json_type t;
  if (v.type().get(t)) return malformed(e, offset);
  std::string message =
      "expected " + std::string(expected_name(type)) + ", got " + std::string(json_type_name(t));
  if (t == od::json_type::object || t == od::json_type::array) {
    if (e != simdjson::INCORRECT_TYPE) return malformed(e, offset);
    return fail(where_, error::wrong_type, std::move(message));
  }
  const std::string_view token = trim_right(v.raw_json_token());
  // simdjson types a token by its first byte: "tru" looks like a boolean and "-" like a
  // number until they are read.
  if ((t == od::json_type::boolean && token != "true" && token != "false") ||
      (t == od::json_type::null && token != "null") ||
      (t == od::json_type::number && !is_json_number(token)))
    return fail(where_, error::invalid_json,
                quote(token) + " is not a JSON value (at byte " + std::to_string(offset) + ")",
                offset);
  if (t == od::json_type::number) {
    // A well-formed number the getter refused: too large, or not an integer.
    if (type.kind == value_kind::integer && is_integer_token(token))
      return fail(where_, error::out_of_range,
                  std::string(token) + " does not fit in " + std::string(type.name));
    if (type.kind == value_kind::floating && e != simdjson::INCORRECT_TYPE)
      return fail(where_, error::out_of_range,
                  std::string(token) + " does not fit in " + std::string(type.name));
  } else if (e != simdjson::INCORRECT_TYPE) {
    return malformed(e, offset);
  }
  message += ": ";
  message += quote(token);
  return fail(where_, error::wrong_type, std::move(message));
}

bool reader::decode_root(od::document& doc, const type_desc& type, void* out) {
  // The input was wrapped in [ ]: the root is always an array, whose first element is the
  // value. On-demand cannot take a scalar document as a value, and the wrapper makes any
  // second value or stray byte after the first show up as an error of the array.
  od::array root;
  // Before the walk, simdjson checks that the brackets balance: when they do not, the
  // document ended early (or has a stray closing bracket), and no position is known.
  if (auto e = doc.get_array().get(root))
    return malformed(e, e == simdjson::INCOMPLETE_ARRAY_OR_OBJECT ? size_ : 0);
  std::size_t count = 0;
  for (auto element : root) {
    od::value v;
    if (auto e = std::move(element).get(v)) {
      const char* p = nullptr;
      const std::size_t offset = doc.current_location().get(p) ? size_ : offset_of(p);
      // At the end of the input, the value was cut short: its last bracket is our wrapper's
      // (as in "[1,2", read as "[[1,2]").
      if (count == 0 || offset >= size_) return malformed(e, offset);
      return fail(where_, error::trailing_data,
                  "unexpected data after the value (at byte " + std::to_string(offset) + ")",
                  offset);
    }
    if (count == 1) {
      const std::size_t offset = offset_of(v);
      return fail(where_, error::trailing_data,
                  "a second value after the first (at byte " + std::to_string(offset) + ")",
                  offset);
    }
    if (!decode(type, v, out)) return false;
    ++count;
  }
  if (count == 0) return fail(where_, error::invalid_json, "no value (the input is empty)", 0);
  // The brackets closed, but stage 1 does not check that the document ends there: "1],[2"
  // becomes "[1],[2]".
  const char* p = nullptr;
  if (!doc.current_location().get(p)) {
    const std::size_t offset = offset_of(p);
    return fail(where_, error::trailing_data,
                "unexpected data after the value (at byte " + std::to_string(offset) + ")", offset);
  }
  return true;
}

bool reader::decode(const type_desc& type, od::value& v, void* out) {
  switch (type.kind) {
    case value_kind::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return mismatch(type, v, e);
      static_cast<std::string*>(out)->assign(s);
      return true;
    }
    case value_kind::boolean: {
      bool b;
      if (auto e = v.get_bool().get(b)) return mismatch(type, v, e);
      *static_cast<bool*>(out) = b;
      return true;
    }
    case value_kind::integer: {
      if (type.is_signed) {
        std::int64_t i;
        if (auto e = v.get_int64().get(i)) return mismatch(type, v, e);
        if (type.size == sizeof i) {
          std::memcpy(out, &i, sizeof i);  // the common case, without a call
          return true;
        }
        if (!store_integer(out, type.size, true, i))
          return fail(where_, error::out_of_range,
                      std::to_string(i) + " does not fit in " + std::string(type.name));
      } else {
        std::uint64_t u;
        if (auto e = v.get_uint64().get(u)) return mismatch(type, v, e);
        if (!store_integer(out, type.size, false, u))
          return fail(where_, error::out_of_range,
                      std::to_string(u) + " does not fit in " + std::string(type.name));
      }
      return true;
    }
    case value_kind::floating:
      return decode_floating(type, v, out);
    case value_kind::enumeration: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return mismatch(type, v, e);
      return parse_enum(type, s, out, where_);
    }
    case value_kind::duration: {
      od::json_type t;
      if (auto e = v.type().get(t)) return malformed(e, offset_of(v));
      const std::string_view token = trim_right(v.raw_json_token());
      if (t != od::json_type::number || !is_json_number(token))
        return mismatch(type, v, simdjson::INCORRECT_TYPE);
      // The token itself, read exactly: a double would round sub-millisecond digits.
      return parse_duration(type, token, out, where_, error::invalid_json);
    }
    case value_kind::time_point: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return mismatch(type, v, e);
      return parse_time(type, s, out, where_);
    }
    case value_kind::optional: {
      bool null = false;
      if (auto e = v.is_null().get(null)) return malformed(e, offset_of(v));
      if (null) {
        type.optional->reset(out);
        return true;
      }
      return decode(*type.element, v, type.optional->emplace(out));
    }
    case value_kind::sequence:
      return decode_sequence(type, v, out);
    case value_kind::bool_sequence:
      return decode_bool_sequence(type, v, out);
    case value_kind::map:
      return decode_map(type, v, out);
    case value_kind::object:
      return decode_object(type, v, out);
    case value_kind::custom: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return mismatch(type, v, e);
      return call_user_codec(where_, [&] { return type.custom->decode(s, out, where_); });
    }
  }
  return fail(where_, error::wrong_type, "unknown value kind");
}

bool reader::decode_floating(const type_desc& type, od::value& v, void* out) {
  // A float is read from its text (below), taken before get_double() moves past it.
  const bool is_float = type.size == sizeof(float);
  const std::string_view token = is_float ? trim_right(v.raw_json_token()) : std::string_view();
  double d;
  if (auto e = v.get_double().get(d)) {
    // Non-finite values arrive as strings, the way the writer (and protobuf) puts them.
    std::string_view s;
    if (e != simdjson::INCORRECT_TYPE || v.get_string().get(s)) return mismatch(type, v, e);
    if (s == "NaN")
      d = std::numeric_limits<double>::quiet_NaN();
    else if (s == "Infinity")
      d = std::numeric_limits<double>::infinity();
    else if (s == "-Infinity")
      d = -std::numeric_limits<double>::infinity();
    else
      return fail(
          where_, error::wrong_type,
          "expected a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got a string: " + quote(s));
    if (type.size == sizeof(float))
      *static_cast<float*>(out) = static_cast<float>(d);
    else
      *static_cast<double*>(out) = d;
    return true;
  }
  if (!is_float) {
    *static_cast<double*>(out) = d;
    return true;
  }
  // Straight from the text to float: through double, a value could round twice.
  float f;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), f);
  if (ec == std::errc::result_out_of_range)
    return fail(where_, error::out_of_range, std::string(token) + " does not fit in float");
  if (ec != std::errc{} || end != token.data() + token.size())
    return malformed(simdjson::NUMBER_ERROR, offset_of(token.data()));
  *static_cast<float*>(out) = f;
  return true;
}

bool reader::decode_sequence(const type_desc& type, od::value& v, void* out) {
  const level nested(depth_);
  if (nested.too_deep()) return too_deep(where_);
  od::array a;
  if (auto e = v.get_array().get(a)) return mismatch(type, v, e);
  // PERF: a new vector is sized once instead of doubling its way up (a counting pass over
  // the array's structure is cheaper than the allocations and moves it saves). Bounded, so
  // that a long array of small JSON values cannot reserve much more memory than its text.
  if (type.sequence->capacity(out) == 0) {
    std::size_t count = 0;
    if (auto e = a.count_elements().get(count)) return malformed(e, offset_of(v));
    const std::size_t bound = 64 * 1024 / type.sequence->element_size + 1;
    if (count > 1) type.sequence->reserve(out, count < bound ? count : bound);
  }
  std::size_t n = 0;
  for (auto element : a) {
    if (auto e = element.error()) {
      const char* p = nullptr;
      return malformed(e, v.current_location().get(p) ? size_ : offset_of(p));
    }
    od::value& ev = element.value_unsafe();
    if (!decode(*type.element, ev, type.sequence->slot(out, n))) {
      prepend_index(where_, n);
      return false;
    }
    ++n;
  }
  type.sequence->truncate(out, n);
  return true;
}

bool reader::decode_bool_sequence(const type_desc& type, od::value& v, void* out) {
  const level nested(depth_);
  if (nested.too_deep()) return too_deep(where_);
  od::array a;
  if (auto e = v.get_array().get(a)) return mismatch(type, v, e);
  type.bool_sequence->clear(out);
  std::size_t n = 0;
  for (auto element : a) {
    if (auto e = element.error()) {
      const char* p = nullptr;
      return malformed(e, v.current_location().get(p) ? size_ : offset_of(p));
    }
    od::value& ev = element.value_unsafe();
    bool b;
    if (auto e = ev.get_bool().get(b)) {
      mismatch(*type.element, ev, e);
      prepend_index(where_, n);
      return false;
    }
    type.bool_sequence->push(out, b);
    ++n;
  }
  return true;
}

bool reader::decode_map(const type_desc& type, od::value& v, void* out) {
  const level nested(depth_);
  if (nested.too_deep()) return too_deep(where_);
  od::object o;
  if (auto e = v.get_object().get(o)) return mismatch(type, v, e);
  type.map->clear(out);
  for (auto field : o) {
    if (auto e = field.error()) {
      const char* p = nullptr;
      return malformed(e, v.current_location().get(p) ? size_ : offset_of(p));
    }
    od::field& f = field.value_unsafe();
    std::string_view key;
    if (auto e = f.unescaped_key().get(key)) return malformed(e, offset_of(f.value()));
    // A repeated key: the last one wins, as in most JSON readers.
    if (!decode(*type.element, f.value(), type.map->slot(out, key))) {
      prepend_key(where_, key);
      return false;
    }
  }
  return true;
}

bool reader::decode_object(const type_desc& type, od::value& v, void* out) {
  const level nested(depth_);
  if (nested.too_deep()) return too_deep(where_);
  od::object o;
  if (auto e = v.get_object().get(o)) return mismatch(type, v, e);
  const std::size_t n = type.field_count;
  const field_desc* const fields = type.fields;
  // Which members were seen, to find the missing ones at the end.
  std::uint64_t small[4] = {};
  std::unique_ptr<std::uint64_t[]> large;
  std::uint64_t* seen = small;
  if (n > 256) {
    large = std::make_unique<std::uint64_t[]>((n + 63) / 64);
    seen = large.get();
  }
  std::size_t expected = 0;
  for (auto field : o) {
    // PERF: the field is used in place (a copy out of the result costs a store-forwarding
    // stall on every member), and values are passed by reference for the same reason.
    if (auto e = field.error()) {
      const char* p = nullptr;
      return malformed(e, v.current_location().get(p) ? size_ : offset_of(p));
    }
    od::field& f = field.value_unsafe();
    // PERF: members usually come in declaration order (our writer emits them so), so the
    // next member is tried first and a key costs one comparison of its raw bytes. Out of
    // order, a linear scan; a key with escapes is unescaped only when nothing matched raw.
    const od::raw_json_string key = f.key();
    std::size_t index = n;
    if (expected < n && key_is(key, fields[expected].name)) {
      index = expected;
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (key_is(key, fields[i].name)) {
          index = i;
          break;
        }
      }
      if (index == n) {
        bool escaped = false;
        for (const char* p = key.raw(); *p != '"'; ++p) {
          if (*p == '\\') {
            escaped = true;
            break;
          }
        }
        if (escaped) {
          std::string_view unescaped;
          if (auto e = f.unescaped_key().get(unescaped)) return malformed(e, offset_of(f.value()));
          for (std::size_t i = 0; i < n; ++i) {
            if (fields[i].name == unescaped) {
              index = i;
              break;
            }
          }
        }
      }
    }
    // Unknown members are skipped (forward compatibility: a newer writer may add some); the
    // iterator steps over their values.
    if (index == n) continue;
    seen[index / 64] |= std::uint64_t{1} << (index % 64);
    expected = index + 1;
    const field_desc& fd = fields[index];
    if (!decode(*fd.type, f.value(), fd.member(out))) {
      prepend_field(where_, fd.name);
      return false;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (seen[i / 64] & (std::uint64_t{1} << (i % 64))) continue;
    const field_desc& fd = fields[i];
    if (fd.type->kind == value_kind::optional) {
      fd.type->optional->reset(fd.member(out));
      continue;
    }
    fail(where_, error::missing_field,
         "missing member (expected " + std::string(expected_name(*fd.type)) + ")");
    prepend_field(where_, fd.name);
    return false;
  }
  return true;
}

}  // namespace

std::error_code decode_json(const type_desc& type, std::string_view in, void* value,
                            codec_error& where) {
  const scratch_lease lease;
  scratch& s = *lease;
  const std::size_t length = in.size() + 2;
  if (s.buffer.size() < length + simdjson::SIMDJSON_PADDING)
    s.buffer.resize(length + simdjson::SIMDJSON_PADDING);
  s.buffer[0] = '[';
  in.copy(s.buffer.data() + 1, in.size());
  s.buffer[length - 1] = ']';

  bool ok;
  auto result = s.parser.iterate(s.buffer.data(), length, s.buffer.size());
  if (result.error()) {
    const simdjson::error_code e = result.error();
    std::string message = simdjson::error_message(e);
    std::size_t offset = codec_error::npos;
    if (e == simdjson::UTF8_ERROR) {
      offset = first_invalid_utf8(in);
      message += " (at byte " + std::to_string(offset) + ")";
    }
    ok = fail(where, error::invalid_json, std::move(message), offset);
  } else {
    od::document doc = std::move(result).value_unsafe();
    reader r(s.buffer.data() + 1, in.size(), where);
    ok = r.decode_root(doc, type, value);
  }
  return ok ? std::error_code() : where.code;
}

}  // namespace redcoro::cache::detail
