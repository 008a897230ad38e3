#pragma once

#include <redcoro/proto/type.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redcoro::proto {

/// One element of a reply, as the parser yields it.
///
/// `value` is a view into the caller's input buffer. It stays valid while the bytes it
/// points to stay where they are: in the client that means until the connection reads from
/// the socket again (it compacts its read buffer once per read). Copy what must live longer.
struct node {
  /// `aggregate_size` of a streamed aggregate (`*?`, `%?`, ...) or streamed string (`$?`).
  static constexpr std::size_t unbounded = static_cast<std::size_t>(-1);

  constexpr node() noexcept = default;
  constexpr node(type t, bool attribute, std::uint32_t d, std::size_t size,
                 std::string_view v) noexcept
      : data_type(t), in_attribute(attribute), depth(d), aggregate_size(size), value(v) {}

  type data_type = type::null;

  /// True for an attribute header and every node inside the attribute: auxiliary data, not
  /// part of the reply. Adapters skip these nodes unless they ask for attributes.
  bool in_attribute = false;

  /// Nesting level: 0 for the top-level element, 1 for its elements, and so on.
  std::uint32_t depth = 0;

  /// Aggregates: the count announced on the wire (pairs for map and attribute) or
  /// `unbounded`. Simple types: 1.
  std::size_t aggregate_size = 1;

  /// Payload of simple types: the text after the type byte, the blob bytes, "t"/"f" for
  /// booleans, the text of a verbatim string without its format prefix. Empty for
  /// aggregates and null.
  std::string_view value;

  /// Number of element nodes that follow at depth + 1: aggregate_size times 2 for maps.
  /// `unbounded` for streamed aggregates.
  constexpr std::size_t element_count() const noexcept {
    if (aggregate_size == unbounded) return unbounded;
    return aggregate_size * element_multiplicity(data_type);
  }

  /// The three-byte format of a verbatim string ("txt", "mkd"); empty for other types.
  /// It lies just before `value` in the same buffer, so it shares value's lifetime.
  std::string_view verbatim_format() const noexcept {
    if (data_type != type::verbatim_string) return {};
    return std::string_view(value.data() - 4, 3);
  }

  friend bool operator==(const node&, const node&) = default;
};

}  // namespace redcoro::proto
