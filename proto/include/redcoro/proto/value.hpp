#pragma once

#include <redcoro/proto/node.hpp>
#include <redcoro/proto/type.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro::proto {

/// A generic, owning RESP3 value: what an untyped call (`redcoro::command(...)`) returns.
///
/// Aggregates keep their elements in order; maps and attributes store them flattened as
/// key, value, key, value. Streamed strings arrive as one blob_string. Attributes that
/// preceded an element are attached to it. Costs an allocation per string and aggregate;
/// use typed responses on hot paths.
class value {
 public:
  type data_type = type::null;
  /// Payload of simple types (numbers and doubles as sent), text of verbatim strings.
  std::string text;
  /// Elements of aggregates.
  std::vector<value> elements;
  /// Key/value pairs of the attribute that preceded this element, flattened; usually empty.
  std::vector<value> attributes;
  /// Format of a verbatim string ("txt", "mkd").
  std::array<char, 3> format{};

  value() = default;
  value(type t, std::string s) : data_type(t), text(std::move(s)) {}
  value(type t, std::vector<value> e) : data_type(t), elements(std::move(e)) {}

  bool is_null() const noexcept { return data_type == type::null; }
  bool is_error() const noexcept { return proto::is_error(data_type); }
  bool is_aggregate() const noexcept { return proto::is_aggregate(data_type); }
  bool is_map() const noexcept { return data_type == type::map; }

  /// Number of elements (twice the number of pairs for maps).
  std::size_t size() const noexcept { return elements.size(); }
  const value& operator[](std::size_t i) const noexcept { return elements[i]; }
  value& operator[](std::size_t i) noexcept { return elements[i]; }

  /// For maps, and for RESP2 flat key/value arrays: the value stored under a string key.
  const value* find(std::string_view key) const noexcept;

  /// Numbers, and strings holding a decimal integer.
  std::optional<std::int64_t> to_integer() const noexcept;
  /// Doubles, numbers, and strings holding a decimal (including inf and nan).
  std::optional<double> to_double() const noexcept;

  /// A readable rendering in the style of redis-cli, for logs and examples.
  std::string to_display() const;

  friend bool operator==(const value&, const value&) = default;
};

/// Encodes a value as RESP3 (attributes included). Useful for tests and mock servers.
std::string to_resp3(const value& v);
void append_resp3(std::string& out, const value& v);

/// Calls `f(node)` for each node of `v`, as the parser would have produced them from its
/// RESP3 form (attributes first, aggregates before their elements; streamed strings come as
/// one blob), without encoding and parsing it: how a value read from one place is fed to
/// an adapter meant for replies. The nodes view `v`'s strings, and for a verbatim string a
/// buffer that lives for the call.
void for_each_node(const value& v, const std::function<void(const node&)>& f);

}  // namespace redcoro::proto
