#pragma once

// Helpers for the protocol tests: feed wire bytes to the parser in chunks, the way a socket
// delivers them, and collect owned copies of the nodes.

#include <redcoro/proto/error.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/response.hpp>

#include <catch2/catch.hpp>

#include <ostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace redcoro::test {

struct owned_node {
  proto::type data_type;
  std::size_t depth;
  std::size_t aggregate_size;
  std::string value;
  bool in_attribute = false;
  std::string format = {};  // verbatim strings only

  friend bool operator==(const owned_node&, const owned_node&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const owned_node& n) {
  os << "{" << proto::to_string(n.data_type) << " d=" << n.depth << " n=";
  if (n.aggregate_size == proto::node::unbounded)
    os << "?";
  else
    os << n.aggregate_size;
  os << " '" << n.value << "'" << (n.in_attribute ? " attr" : "");
  if (!n.format.empty()) os << " fmt=" << n.format;
  return os << "}";
}

inline owned_node own(const proto::node& n) {
  return {n.data_type,          n.depth,        n.aggregate_size,
          std::string(n.value), n.in_attribute, std::string(n.verbatim_format())};
}

struct feed_result {
  std::vector<owned_node> nodes;
  std::size_t messages = 0;  // complete top-level messages
  std::error_code ec;
  bool complete = false;  // every byte consumed and the last message done

  friend bool operator==(const feed_result&, const feed_result&) = default;
};

inline std::ostream& operator<<(std::ostream& os, const feed_result& r) {
  os << "messages=" << r.messages << " ec=" << r.ec.message() << " complete=" << r.complete
     << " nodes=[";
  for (const auto& n : r.nodes)
    os << n << " ";
  return os << "]";
}

/// Which parser entry point feed() drives.
enum class parse_api { consume, consume_message };

/// Feeds `wire` in chunks ending at each of `cuts` (then the rest), compacting the buffer once
/// per chunk as the client does. Stops at the first error.
inline feed_result feed(std::string_view wire, const std::vector<std::size_t>& cuts,
                        const proto::parser_config& limits = {},
                        parse_api api = parse_api::consume) {
  feed_result out;
  proto::parser p(limits);
  std::string buffer;
  std::size_t pos = 0;
  std::size_t fed = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  for (std::size_t end : ends) {
    if (end < fed || end > wire.size()) continue;
    buffer.append(wire.substr(fed, end - fed));
    fed = end;
    const auto keep = [&](const proto::node& n) {
      // Views must point into the buffer: the parser never copies payload bytes.
      if (!n.value.empty()) {
        REQUIRE(n.value.data() >= buffer.data());
        REQUIRE(n.value.data() + n.value.size() <= buffer.data() + buffer.size());
      }
      out.nodes.push_back(own(n));
    };
    if (api == parse_api::consume_message) {
      while (p.consume_message(buffer, pos, keep, out.ec))
        ++out.messages;
      if (out.ec) return out;
    } else {
      for (;;) {
        auto n = p.consume(buffer, pos, out.ec);
        if (out.ec) return out;
        if (n) keep(*n);
        if (p.done())
          ++out.messages;
        else if (!n)
          break;
      }
    }
    buffer.erase(0, pos);
    pos = 0;
  }
  out.complete =
      buffer.empty() && p.depth() == 0 && fed == wire.size() && (out.messages > 0 || wire.empty());
  return out;
}

inline feed_result feed_whole(std::string_view wire, const proto::parser_config& limits = {}) {
  return feed(wire, {}, limits);
}

/// Checks that every way of splitting `wire` (one cut at each offset, and one byte at a time)
/// gives the same result as feeding it whole, and returns that result.
inline feed_result feed_all_splits(std::string_view wire, const proto::parser_config& limits = {}) {
  const feed_result whole = feed_whole(wire, limits);
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    INFO("split at byte " << cut);
    CHECK(feed(wire, {cut}, limits) == whole);
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < wire.size(); ++i)
    every.push_back(i);
  INFO("one byte at a time");
  CHECK(feed(wire, every, limits) == whole);
  INFO("consume_message, whole and one byte at a time");
  CHECK(feed(wire, {}, limits, parse_api::consume_message) == whole);
  CHECK(feed(wire, every, limits, parse_api::consume_message) == whole);
  return whole;
}

/// Decodes every reply in `wire` into `response`, as the connection does: each top-level
/// non-push message is the next reply. Returns the parser error, if any.
template <class Response>
std::error_code decode(std::string_view wire, Response& response,
                       const std::vector<std::size_t>& cuts = {}) {
  proto::parser p;
  proto::response_adapter<Response> adapter(response);
  std::string buffer;
  std::size_t pos = 0, fed = 0, index = 0;
  std::error_code ec;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(wire.size());
  for (std::size_t end : ends) {
    buffer.append(wire.substr(fed, end - fed));
    fed = end;
    for (;;) {
      auto n = p.consume(buffer, pos, ec);
      if (ec) return ec;
      if (n) adapter.on_node(index, *n);
      if (p.done())
        ++index;
      else if (!n)
        break;
    }
    buffer.erase(0, pos);
    pos = 0;
  }
  return adapter.error();
}

}  // namespace redcoro::test

namespace Catch {
template <>
struct StringMaker<redcoro::proto::value> {
  static std::string convert(const redcoro::proto::value& v) {
    std::string out = v.to_display();
    if (!v.attributes.empty()) {
      redcoro::proto::value a(redcoro::proto::type::attribute, v.attributes);
      out = a.to_display() + " " + out;
    }
    for (const auto& e : v.elements)
      if (!e.attributes.empty()) out += " (element attributes omitted)";
    return out;
  }
};
}  // namespace Catch
