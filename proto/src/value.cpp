#include <redcoro/proto/value.hpp>

#include <charconv>
#include <string>

namespace redcoro::proto {
namespace {

bool is_text(type t) noexcept {
  return t == type::simple_string || t == type::blob_string || t == type::verbatim_string;
}

void append_count(std::string& out, char prefix, std::size_t n) {
  out += prefix;
  out += std::to_string(n);
  out += "\r\n";
}

void append_line(std::string& out, char prefix, const std::string& text) {
  out += prefix;
  out += text;
  out += "\r\n";
}

void append_blob(std::string& out, char prefix, std::string_view text) {
  append_count(out, prefix, text.size());
  out += text;
  out += "\r\n";
}

void display(std::string& out, const value& v) {
  auto list = [&](char open, char close) {
    out += open;
    for (std::size_t i = 0; i < v.elements.size(); ++i) {
      if (i != 0) out += ", ";
      display(out, v.elements[i]);
    }
    out += close;
  };
  switch (v.data_type) {
    case type::array:
      list('[', ']');
      return;
    case type::set:
      out += '~';
      list('{', '}');
      return;
    case type::push:
      out += '>';
      list('[', ']');
      return;
    case type::map:
    case type::attribute:
      out += v.data_type == type::attribute ? "|{" : "{";
      for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        if (i != 0) out += ", ";
        display(out, v.elements[i]);
        out += ": ";
        display(out, v.elements[i + 1]);
      }
      out += '}';
      return;
    case type::null:
      out += "(nil)";
      return;
    case type::simple_error:
    case type::blob_error:
      out += "(error) ";
      out += v.text;
      return;
    case type::boolean:
      out += v.text == "t" ? "true" : "false";
      return;
    case type::number:
    case type::double_:
    case type::big_number:
      out += v.text;
      return;
    default:
      break;
  }
  out += '"';
  for (unsigned char c : v.text) {
    switch (c) {
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
      default:
        if (c < 0x20 || c >= 0x7f) {
          constexpr char hex[] = "0123456789abcdef";
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

const value* value::find(std::string_view key) const noexcept {
  if (data_type != type::map && data_type != type::array && data_type != type::attribute)
    return nullptr;
  for (std::size_t i = 0; i + 1 < elements.size(); i += 2) {
    const value& k = elements[i];
    if (!k.is_aggregate() && k.text == key) return &elements[i + 1];
  }
  return nullptr;
}

std::optional<std::int64_t> value::to_integer() const noexcept {
  if (data_type != type::number && !is_text(data_type)) return std::nullopt;
  std::int64_t v;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc{} || r.ptr != end) return std::nullopt;
  return v;
}

std::optional<double> value::to_double() const noexcept {
  if (data_type != type::double_ && data_type != type::number && !is_text(data_type))
    return std::nullopt;
  std::string_view s = text;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc{} || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string value::to_display() const {
  std::string out;
  display(out, *this);
  return out;
}

void append_resp3(std::string& out, const value& v) {
  if (!v.attributes.empty()) {
    append_count(out, '|', v.attributes.size() / 2);
    for (const value& e : v.attributes)
      append_resp3(out, e);
  }
  switch (v.data_type) {
    case type::array:
    case type::push:
    case type::set:
    case type::map:
    case type::attribute: {
      const char prefix = v.data_type == type::array  ? '*'
                          : v.data_type == type::push ? '>'
                          : v.data_type == type::set  ? '~'
                          : v.data_type == type::map  ? '%'
                                                      : '|';
      append_count(out, prefix, v.elements.size() / element_multiplicity(v.data_type));
      for (const value& e : v.elements)
        append_resp3(out, e);
      return;
    }
    case type::simple_string:
      return append_line(out, '+', v.text);
    case type::simple_error:
      return append_line(out, '-', v.text);
    case type::number:
      return append_line(out, ':', v.text);
    case type::double_:
      return append_line(out, ',', v.text);
    case type::boolean:
      return append_line(out, '#', v.text);
    case type::big_number:
      return append_line(out, '(', v.text);
    case type::null:
      out += "_\r\n";
      return;
    case type::blob_error:
      return append_blob(out, '!', v.text);
    case type::verbatim_string: {
      append_count(out, '=', v.text.size() + 4);
      out.append(v.format.data(), v.format.size());
      out += ':';
      out += v.text;
      out += "\r\n";
      return;
    }
    case type::blob_string:
    case type::streamed_string:
    case type::streamed_string_part:
      return append_blob(out, '$', v.text);
  }
}

std::string to_resp3(const value& v) {
  std::string out;
  append_resp3(out, v);
  return out;
}

namespace {

void walk(const value& v, std::uint32_t depth, bool in_attribute,
          const std::function<void(const node&)>& f) {
  if (!v.attributes.empty()) {
    f(node(type::attribute, true, depth, v.attributes.size() / 2, {}));
    for (const value& a : v.attributes)
      walk(a, depth + 1, true, f);
  }
  if (is_aggregate(v.data_type)) {
    const std::size_t size = v.elements.size() / element_multiplicity(v.data_type);
    f(node(v.data_type, in_attribute, depth, size, {}));
    for (const value& e : v.elements)
      walk(e, depth + 1, in_attribute, f);
    return;
  }
  if (v.data_type == type::verbatim_string) {
    // node::verbatim_format() reads the format just before the text, as on the wire.
    std::string wire(v.format.data(), v.format.size());
    wire += ':';
    wire += v.text;
    f(node(type::verbatim_string, in_attribute, depth, 1, std::string_view(wire).substr(4)));
    return;
  }
  const type t = v.data_type == type::streamed_string || v.data_type == type::streamed_string_part
                     ? type::blob_string
                     : v.data_type;
  f(node(t, in_attribute, depth, 1, v.text));
}

}  // namespace

void for_each_node(const value& v, const std::function<void(const node&)>& f) {
  walk(v, 0, false, f);
}

}  // namespace redcoro::proto
