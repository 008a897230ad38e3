#pragma once

#include <cstdint>
#include <string_view>

namespace redcoro::proto {

/// The RESP3 data types, as announced by the first byte of each element.
enum class type : std::uint8_t {
  // Aggregates: a header node followed by their elements one level deeper.
  array,      ///< `*`; also RESP2's multi-bulk reply
  push,       ///< `>`; out-of-band data (pub/sub messages, invalidations), top level only
  set,        ///< `~`
  map,        ///< `%`; `node::aggregate_size` counts key/value pairs
  attribute,  ///< `|`; auxiliary data attached to the element that follows it

  // Simple types: one node each.
  simple_string,    ///< `+`
  simple_error,     ///< `-`
  number,           ///< `:` a signed 64-bit integer
  double_,          ///< `,` including `inf`, `-inf` and `nan`
  boolean,          ///< `#t` / `#f`; the node's value is "t" or "f"
  big_number,       ///< `(` an integer outside the 64-bit range, kept as text
  null,             ///< `_`, and RESP2's `$-1` and `*-1`
  blob_string,      ///< `$`
  blob_error,       ///< `!`
  verbatim_string,  ///< `=`; the value is the text, node::verbatim_format() gives "txt"/"mkd"

  // Streamed strings (`$?`): a header node, then one node per `;N` chunk one level deeper.
  // The closing `;0` produces no node.
  streamed_string,
  streamed_string_part,
};

/// True for the types whose node is followed by element nodes: the five aggregates and the
/// streamed string header.
constexpr bool has_children(type t) noexcept {
  return t <= type::attribute || t == type::streamed_string;
}

/// True for array, push, set, map and attribute.
constexpr bool is_aggregate(type t) noexcept {
  return t <= type::attribute;
}

/// True for simple and blob errors: a server's error reply.
constexpr bool is_error(type t) noexcept {
  return t == type::simple_error || t == type::blob_error;
}

/// Elements per counted entry: 2 for map and attribute (pairs), 1 otherwise.
constexpr std::size_t element_multiplicity(type t) noexcept {
  return (t == type::map || t == type::attribute) ? 2 : 1;
}

/// A short lowercase name ("array", "blob_string", ...), for messages and logs.
std::string_view to_string(type t) noexcept;

/// The RESP3 type for a leading byte, or false when the byte starts no element type.
/// `;` and `.` (chunk and end markers) are not element types.
bool type_from_byte(char c, type& out) noexcept;

}  // namespace redcoro::proto
