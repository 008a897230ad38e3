#include "core.hpp"
#include <redcoro/cache/error.hpp>

#include <charconv>

namespace redcoro::cache {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redcoro.cache"; }

  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::invalid_json:
        return "malformed JSON";
      case error::trailing_data:
        return "unexpected data after the value";
      case error::wrong_type:
        return "value of the wrong type";
      case error::missing_field:
        return "missing field";
      case error::out_of_range:
        return "value out of range for the C++ type";
      case error::invalid_text:
        return "text does not read as the expected value";
      case error::unknown_enum_name:
        return "no enumerator has this name";
      case error::too_deep:
        return "arrays and objects nested too deeply";
      case error::unnamed_enum_value:
        return "enum value without a described name";
      case error::invalid_utf8:
        return "string is not valid UTF-8";
      case error::load_failed:
        return "the loader failed";
      case error::invalid_ttl:
        return "a TTL must be positive";
      case error::no_prefix:
        return "the cache has no prefix";
      case error::write_failed:
        return "the writer of the source failed";
      case error::invalid_tag:
        return "a tag must not be empty nor hold a brace";
      case error::queue_full:
        return "the write-behind queue is full";
      case error::not_written:
        return "closed before the write could be written";
    }
    return "unknown redcoro.cache error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

std::string codec_error::to_string() const {
  std::string s = code ? code.message() : std::string("no error");
  if (!path.empty()) {
    s += " at ";
    s += path;
  }
  if (!key.empty()) {
    s += " (key ";
    s += detail::quote(key, 200);
    s += ')';
  }
  if (!message.empty()) {
    s += ": ";
    s += message;
  }
  return s;
}

namespace detail {

bool fail(codec_error& where, error e, std::string message, std::size_t offset) {
  where.code = e;
  where.path.clear();
  where.message = std::move(message);
  where.offset = offset;
  return false;
}

bool too_deep(codec_error& where) {
  return fail(where, error::too_deep,
              "more than " + std::to_string(max_depth) + " levels of arrays and objects");
}

void prepend_field(codec_error& where, std::string_view name) {
  // Members are joined by dots; a bracket already starts a segment of its own.
  std::string s(name);
  if (!where.path.empty() && where.path.front() != '[') s += '.';
  where.path.insert(0, s);
}

void prepend_index(codec_error& where, std::size_t index) {
  char buf[24];
  buf[0] = '[';
  char* end = std::to_chars(buf + 1, buf + sizeof buf - 1, index).ptr;
  *end++ = ']';
  std::string s(buf, end);
  if (!where.path.empty() && where.path.front() != '[') s += '.';
  where.path.insert(0, s);
}

void prepend_key(codec_error& where, std::string_view key) {
  std::string s = "[\"";
  for (char c : key) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  s += "\"]";
  if (!where.path.empty() && where.path.front() != '[') s += '.';
  where.path.insert(0, s);
}

std::string quote(std::string_view text, std::size_t max) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s = "\"";
  const std::size_t n = text.size() < max ? text.size() : max;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      s += '\\';
      s += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    } else {
      s += static_cast<char>(c);
    }
  }
  s += '"';
  if (n < text.size()) s += "...";
  return s;
}

std::size_t first_invalid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += len;
  }
  return n;
}

}  // namespace detail
}  // namespace redcoro::cache
