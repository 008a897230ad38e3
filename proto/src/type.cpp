#include <redcoro/proto/type.hpp>

namespace redcoro::proto {

std::string_view to_string(type t) noexcept {
  switch (t) {
    case type::array:
      return "array";
    case type::push:
      return "push";
    case type::set:
      return "set";
    case type::map:
      return "map";
    case type::attribute:
      return "attribute";
    case type::simple_string:
      return "simple_string";
    case type::simple_error:
      return "simple_error";
    case type::number:
      return "number";
    case type::double_:
      return "double";
    case type::boolean:
      return "boolean";
    case type::big_number:
      return "big_number";
    case type::null:
      return "null";
    case type::blob_string:
      return "blob_string";
    case type::blob_error:
      return "blob_error";
    case type::verbatim_string:
      return "verbatim_string";
    case type::streamed_string:
      return "streamed_string";
    case type::streamed_string_part:
      return "streamed_string_part";
  }
  return "unknown";
}

bool type_from_byte(char c, type& out) noexcept {
  switch (c) {
    case '*':
      out = type::array;
      return true;
    case '>':
      out = type::push;
      return true;
    case '~':
      out = type::set;
      return true;
    case '%':
      out = type::map;
      return true;
    case '|':
      out = type::attribute;
      return true;
    case '+':
      out = type::simple_string;
      return true;
    case '-':
      out = type::simple_error;
      return true;
    case ':':
      out = type::number;
      return true;
    case ',':
      out = type::double_;
      return true;
    case '#':
      out = type::boolean;
      return true;
    case '(':
      out = type::big_number;
      return true;
    case '_':
      out = type::null;
      return true;
    case '$':
      out = type::blob_string;
      return true;
    case '!':
      out = type::blob_error;
      return true;
    case '=':
      out = type::verbatim_string;
      return true;
    default:
      return false;
  }
}

}  // namespace redcoro::proto
