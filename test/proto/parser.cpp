#include "support/proto_helpers.hpp"
#include <redcoro/proto/parser.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using redcoro::proto::error;
using redcoro::proto::node;
using redcoro::proto::parser;
using redcoro::proto::parser_config;
using redcoro::proto::type;
using redcoro::test::feed_all_splits;
using redcoro::test::feed_result;
using redcoro::test::feed_whole;
using redcoro::test::owned_node;

namespace {

constexpr std::size_t unbounded = node::unbounded;

owned_node S(type t, std::size_t depth, std::string v = {}, bool attr = false) {
  return {t, depth, 1, std::move(v), attr};
}

owned_node A(type t, std::size_t depth, std::size_t size, bool attr = false) {
  return {t, depth, size, {}, attr};
}

// Parses `wire` whole, split at every byte and one byte at a time; all must agree, consume
// everything and give `expected` in `messages` complete messages.
void expect_nodes(const std::string& wire, const std::vector<owned_node>& expected,
                  std::size_t messages = 1) {
  INFO("wire: " << wire);
  const feed_result r = feed_all_splits(wire);
  REQUIRE_FALSE(r.ec);
  CHECK(r.complete);
  CHECK(r.messages == messages);
  CHECK(r.nodes == expected);
}

void expect_error(const std::string& wire, error e, const parser_config& limits = {}) {
  INFO("wire: " << wire);
  const feed_result r = feed_all_splits(wire, limits);
  CHECK(r.ec == e);
}

}  // namespace

TEST_CASE("simple types from the RESP3 specification", "[parser]") {
  expect_nodes("$11\r\nhello world\r\n", {S(type::blob_string, 0, "hello world")});
  expect_nodes("$0\r\n\r\n", {S(type::blob_string, 0, "")});
  expect_nodes("+hello world\r\n", {S(type::simple_string, 0, "hello world")});
  expect_nodes("-ERR this is the error description\r\n",
               {S(type::simple_error, 0, "ERR this is the error description")});
  expect_nodes(":1234\r\n", {S(type::number, 0, "1234")});
  expect_nodes("_\r\n", {S(type::null, 0)});
  expect_nodes(",1.23\r\n", {S(type::double_, 0, "1.23")});
  expect_nodes(":10\r\n", {S(type::number, 0, "10")});
  expect_nodes(",10\r\n", {S(type::double_, 0, "10")});
  expect_nodes(",inf\r\n", {S(type::double_, 0, "inf")});
  expect_nodes(",-inf\r\n", {S(type::double_, 0, "-inf")});
  expect_nodes(",nan\r\n", {S(type::double_, 0, "nan")});
  expect_nodes("#t\r\n", {S(type::boolean, 0, "t")});
  expect_nodes("#f\r\n", {S(type::boolean, 0, "f")});
  expect_nodes("!21\r\nSYNTAX invalid syntax\r\n",
               {S(type::blob_error, 0, "SYNTAX invalid syntax")});
  expect_nodes("(3492890328409238509324850943850943825024385\r\n",
               {S(type::big_number, 0, "3492890328409238509324850943850943825024385")});
}

TEST_CASE("verbatim strings separate format and text", "[parser]") {
  const feed_result r = feed_all_splits("=15\r\ntxt:Some string\r\n");
  REQUIRE(r.nodes.size() == 1);
  CHECK(r.nodes[0].data_type == type::verbatim_string);
  CHECK(r.nodes[0].value == "Some string");
  CHECK(r.nodes[0].format == "txt");

  const feed_result md = feed_whole("=8\r\nmkd:# hi\r\n");
  REQUIRE(md.nodes.size() == 1);
  CHECK(md.nodes[0].value == "# hi");
  CHECK(md.nodes[0].format == "mkd");
}

TEST_CASE("doubles in every form Redis has sent", "[parser]") {
  // E notation (spec 1.6) and the NaN spellings of Redis before 7.2.
  for (const char* d : {"1.23e4", "1E-5", "-0.5", "+3.5", "-nan", "NAN", "nan(123)", "1e999",
                        "-1.5e+10", "0", "-inf", "inf"}) {
    expect_nodes(std::string(",") + d + "\r\n", {S(type::double_, 0, d)});
  }
}

TEST_CASE("numbers at the edges of the 64-bit range", "[parser]") {
  expect_nodes(":9223372036854775807\r\n", {S(type::number, 0, "9223372036854775807")});
  expect_nodes(":-9223372036854775808\r\n", {S(type::number, 0, "-9223372036854775808")});
  expect_nodes(":0\r\n", {S(type::number, 0, "0")});
  expect_nodes(":-1\r\n", {S(type::number, 0, "-1")});
  expect_nodes("(-12345678901234567890123\r\n",
               {S(type::big_number, 0, "-12345678901234567890123")});
}

TEST_CASE("aggregates from the RESP3 specification", "[parser]") {
  expect_nodes("*1\r\n$1\r\nA\r\n", {A(type::array, 0, 1), S(type::blob_string, 1, "A")});
  expect_nodes("*3\r\n:1\r\n:2\r\n:3\r\n", {A(type::array, 0, 3), S(type::number, 1, "1"),
                                            S(type::number, 1, "2"), S(type::number, 1, "3")});
  expect_nodes("*2\r\n*2\r\n:1\r\n:2\r\n#t\r\n",
               {A(type::array, 0, 2), A(type::array, 1, 2), S(type::number, 2, "1"),
                S(type::number, 2, "2"), S(type::boolean, 1, "t")});
  expect_nodes(
      "*2\r\n*3\r\n:1\r\n$5\r\nhello\r\n:2\r\n#f\r\n",
      {A(type::array, 0, 2), A(type::array, 1, 3), S(type::number, 2, "1"),
       S(type::blob_string, 2, "hello"), S(type::number, 2, "2"), S(type::boolean, 1, "f")});
  expect_nodes("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
               {A(type::map, 0, 2), S(type::simple_string, 1, "first"), S(type::number, 1, "1"),
                S(type::simple_string, 1, "second"), S(type::number, 1, "2")});
  expect_nodes(
      "~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
      {A(type::set, 0, 5), S(type::simple_string, 1, "orange"), S(type::simple_string, 1, "apple"),
       S(type::boolean, 1, "t"), S(type::number, 1, "100"), S(type::number, 1, "999")});
}

TEST_CASE("empty aggregates complete at once", "[parser]") {
  expect_nodes("*0\r\n", {A(type::array, 0, 0)});
  expect_nodes("%0\r\n", {A(type::map, 0, 0)});
  expect_nodes("~0\r\n", {A(type::set, 0, 0)});
  expect_nodes("*2\r\n*0\r\n%0\r\n",
               {A(type::array, 0, 2), A(type::array, 1, 0), A(type::map, 1, 0)});
}

TEST_CASE("attributes are delivered and never taken for the reply", "[parser]") {
  // The MGET example: the attribute precedes the reply and the message ends with the reply.
  expect_nodes(
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n",
      {A(type::attribute, 0, 1, true), S(type::simple_string, 1, "key-popularity", true),
       A(type::map, 1, 2, true), S(type::blob_string, 2, "a", true),
       S(type::double_, 2, "0.1923", true), S(type::blob_string, 2, "b", true),
       S(type::double_, 2, "0.0012", true), A(type::array, 0, 2), S(type::number, 1, "2039123"),
       S(type::number, 1, "9543892")});

  // Inside an aggregate, an attribute does not count as one of its elements.
  expect_nodes("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n",
               {A(type::array, 0, 3), S(type::number, 1, "1"), S(type::number, 1, "2"),
                A(type::attribute, 1, 1, true), S(type::simple_string, 2, "ttl", true),
                S(type::number, 2, "3600", true), S(type::number, 1, "3")});

  // An attribute alone is not a message: the parser waits for the reply.
  const feed_result only_attribute = feed_whole("|1\r\n+a\r\n:1\r\n");
  CHECK_FALSE(only_attribute.ec);
  CHECK(only_attribute.messages == 0);
  CHECK(only_attribute.nodes.size() == 3);

  // An empty attribute describes nothing.
  expect_nodes("|0\r\n:7\r\n", {A(type::attribute, 0, 0, true), S(type::number, 0, "7")});
}

TEST_CASE("push frames and replies interleave as whole messages", "[parser]") {
  expect_nodes(
      ">3\r\n+message\r\n+somechannel\r\n+this is the message\r\n$9\r\nGet-Reply\r\n",
      {A(type::push, 0, 3), S(type::simple_string, 1, "message"),
       S(type::simple_string, 1, "somechannel"), S(type::simple_string, 1, "this is the message"),
       S(type::blob_string, 0, "Get-Reply")},
      2);
  expect_nodes("$9\r\nGet-Reply\r\n>3\r\n+message\r\n+somechannel\r\n+this is the message\r\n",
               {S(type::blob_string, 0, "Get-Reply"), A(type::push, 0, 3),
                S(type::simple_string, 1, "message"), S(type::simple_string, 1, "somechannel"),
                S(type::simple_string, 1, "this is the message")},
               2);
}

TEST_CASE("streamed strings yield a header and one node per chunk", "[parser]") {
  expect_nodes("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",
               {A(type::streamed_string, 0, unbounded), S(type::streamed_string_part, 1, "Hell"),
                S(type::streamed_string_part, 1, "o wor"), S(type::streamed_string_part, 1, "d")});
  expect_nodes("$?\r\n;0\r\n", {A(type::streamed_string, 0, unbounded)});
  // As an element, the streamed string counts once for its parent.
  expect_nodes("*2\r\n$?\r\n;2\r\nab\r\n;0\r\n:1\r\n",
               {A(type::array, 0, 2), A(type::streamed_string, 1, unbounded),
                S(type::streamed_string_part, 2, "ab"), S(type::number, 1, "1")});
  // Two messages back to back, the first ending in a chunk terminator.
  expect_nodes("$?\r\n;1\r\nx\r\n;0\r\n+OK\r\n",
               {A(type::streamed_string, 0, unbounded), S(type::streamed_string_part, 1, "x"),
                S(type::simple_string, 0, "OK")},
               2);
}

TEST_CASE("streamed aggregates end at the END type", "[parser]") {
  expect_nodes("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n",
               {A(type::array, 0, unbounded), S(type::number, 1, "1"), S(type::number, 1, "2"),
                S(type::number, 1, "3")});
  expect_nodes("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
               {A(type::map, 0, unbounded), S(type::simple_string, 1, "a"), S(type::number, 1, "1"),
                S(type::simple_string, 1, "b"), S(type::number, 1, "2")});
  expect_nodes("~?\r\n+x\r\n.\r\n", {A(type::set, 0, unbounded), S(type::simple_string, 1, "x")});
  expect_nodes(">?\r\n+message\r\n.\r\n",
               {A(type::push, 0, unbounded), S(type::simple_string, 1, "message")});
  expect_nodes("|?\r\n+k\r\n+v\r\n.\r\n:5\r\n",
               {A(type::attribute, 0, unbounded, true), S(type::simple_string, 1, "k", true),
                S(type::simple_string, 1, "v", true), S(type::number, 0, "5")});
  expect_nodes("*?\r\n.\r\n", {A(type::array, 0, unbounded)});
  // Nested: a streamed array inside a counted one and the reverse.
  expect_nodes("*2\r\n*?\r\n:1\r\n.\r\n:2\r\n", {A(type::array, 0, 2), A(type::array, 1, unbounded),
                                                 S(type::number, 2, "1"), S(type::number, 1, "2")});
  // An attribute inside a streamed aggregate describes the element after it, which may be a
  // streamed aggregate of its own.
  expect_nodes("*?\r\n|1\r\n+a\r\n+b\r\n:1\r\n.\r\n",
               {A(type::array, 0, unbounded), A(type::attribute, 1, 1, true),
                S(type::simple_string, 2, "a", true), S(type::simple_string, 2, "b", true),
                S(type::number, 1, "1")});
  expect_nodes("*?\r\n|1\r\n+a\r\n+b\r\n*1\r\n*?\r\n.\r\n.\r\n",
               {A(type::array, 0, unbounded), A(type::attribute, 1, 1, true),
                S(type::simple_string, 2, "a", true), S(type::simple_string, 2, "b", true),
                A(type::array, 1, 1), A(type::array, 2, unbounded)});
  expect_nodes("*?\r\n*1\r\n:1\r\n*?\r\n.\r\n.\r\n+OK\r\n",
               {A(type::array, 0, unbounded), A(type::array, 1, 1), S(type::number, 2, "1"),
                A(type::array, 1, unbounded), S(type::simple_string, 0, "OK")},
               2);
}

TEST_CASE("RESP2 nulls", "[parser]") {
  expect_nodes("$-1\r\n", {S(type::null, 0)});
  expect_nodes("*-1\r\n", {S(type::null, 0)});
  expect_nodes("*2\r\n$-1\r\n$1\r\nx\r\n",
               {A(type::array, 0, 2), S(type::null, 1), S(type::blob_string, 1, "x")});
}

TEST_CASE("a HELLO 3 reply", "[parser]") {
  const std::string hello =
      "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n"
      "$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
      "$7\r\nmodules\r\n*0\r\n";
  const feed_result r = feed_all_splits(hello);
  REQUIRE_FALSE(r.ec);
  CHECK(r.messages == 1);
  REQUIRE(r.nodes.size() == 15);
  CHECK(r.nodes[0] == A(type::map, 0, 7));
  CHECK(r.nodes[14] == A(type::array, 1, 0));
}

TEST_CASE("payload bytes are binary safe", "[parser]") {
  const std::string payload("a\r\nb\0c\r\n", 8);
  expect_nodes("$8\r\n" + payload + "\r\n", {S(type::blob_string, 0, payload)});
  expect_nodes("!8\r\n" + payload + "\r\n", {S(type::blob_error, 0, payload)});
}

TEST_CASE("several messages in one buffer", "[parser]") {
  std::string wire;
  for (int i = 0; i < 50; ++i)
    wire += "+OK\r\n:" + std::to_string(i) + "\r\n*1\r\n$1\r\nx\r\n";
  const feed_result r = feed_all_splits(wire);
  CHECK(r.messages == 150);
  CHECK(r.nodes.size() == 200);
}

TEST_CASE("each malformed input gets its own error", "[parser][errors]") {
  SECTION("invalid_data_type") {
    expect_error("@foo\r\n", error::invalid_data_type);
    expect_error("*1\r\nX\r\n", error::invalid_data_type);
    expect_error("\r\n", error::invalid_data_type);
  }
  SECTION("missing_crlf") {
    expect_error("+OK\rX", error::missing_crlf);
    expect_error("$3\r\nfooXY", error::missing_crlf);
    expect_error(":1\rX", error::missing_crlf);
    expect_error("*?\r\n.\rX", error::missing_crlf);
    expect_error("$?\rX", error::missing_crlf);
    // The specification forbids LF in a line as it forbids CR: a lone LF is a line end
    // without its CR, whatever the line's type.
    for (const char* w : {"+a\nb\r\n", "-ERR a\nb\r\n", ",1.5\n\r\n", "(12\n3\r\n", "#t\n\r\n",
                          "_\n\r\n", "+\n\r\n", "*1\r\n+a\nb\r\n"}) {
      INFO(w);
      expect_error(w, error::missing_crlf);
    }
    // Detected without waiting for a CR, in short lines and in long ones.
    expect_error("+OK\n", error::missing_crlf);
    const std::string x(100, 'x');
    expect_error("+" + x + "\n" + x + "\r\n", error::missing_crlf);
    expect_error("+" + x + "\n" + x, error::missing_crlf);
    expect_error("+" + x + "\r" + x, error::missing_crlf);
  }
  SECTION("invalid_length") {
    for (const char* w : {"$abc\r\n", "$\r\n", "*-2\r\n", "%-1\r\n", "$+3\r\n", "!?\r\n", "=?\r\n",
                          "$3\nfoo\r\n", "*1 \r\n", "$-0\r\n", "*?x\r\n"}) {
      INFO(w);
      expect_error(w, error::invalid_length);
    }
  }
  SECTION("length_overflow") {
    expect_error("$99999999999999999999999\r\n", error::length_overflow);
    expect_error("*18446744073709551616\r\n", error::length_overflow);
  }
  SECTION("invalid_number") {
    for (const char* w : {":abc\r\n", ":\r\n", ":-\r\n", ":1.5\r\n", ":--1\r\n"}) {
      INFO(w);
      expect_error(w, error::invalid_number);
    }
  }
  SECTION("number_overflow") {
    expect_error(":9223372036854775808\r\n", error::number_overflow);
    expect_error(":-9223372036854775809\r\n", error::number_overflow);
    expect_error(":99999999999999999999999999\r\n", error::number_overflow);
  }
  SECTION("invalid_double") {
    for (const char* w : {",abc\r\n", ",\r\n", ",1.2.3\r\n", ",0x10\r\n", ",+-1\r\n", ",1e\r\n"}) {
      INFO(w);
      expect_error(w, error::invalid_double);
    }
  }
  SECTION("invalid_boolean") {
    expect_error("#x\r\n", error::invalid_boolean);
    expect_error("#true\r\n", error::invalid_boolean);
    expect_error("#\r\n", error::invalid_boolean);
  }
  SECTION("invalid_big_number") {
    expect_error("(12a\r\n", error::invalid_big_number);
    expect_error("(\r\n", error::invalid_big_number);
    expect_error("(-\r\n", error::invalid_big_number);
  }
  SECTION("invalid_null") {
    expect_error("_x\r\n", error::invalid_null);
  }
  SECTION("invalid_verbatim") {
    expect_error("=3\r\ntxt\r\n", error::invalid_verbatim);
    expect_error("=6\r\ntxtXab\r\n", error::invalid_verbatim);
  }
  SECTION("invalid_chunk") {
    expect_error("$?\r\n+oops\r\n", error::invalid_chunk);
    expect_error(";3\r\nabc\r\n", error::invalid_chunk);
    expect_error("$?\r\n;x\r\n", error::invalid_length);
  }
  SECTION("unexpected_end") {
    expect_error(".\r\n", error::unexpected_end);
    expect_error("*2\r\n.\r\n", error::unexpected_end);
    // An attribute describes the element after it: an end right after it leaves it
    // describing nothing, in a counted aggregate and in a streamed one alike.
    expect_error("*1\r\n|1\r\n+a\r\n+b\r\n.\r\n", error::unexpected_end);
    expect_error("*?\r\n|1\r\n+a\r\n+b\r\n.\r\n", error::unexpected_end);
    expect_error("*?\r\n:1\r\n|0\r\n.\r\n", error::unexpected_end);
    expect_error("~?\r\n|?\r\n+a\r\n+b\r\n.\r\n.\r\n", error::unexpected_end);
    expect_error("%?\r\n+k\r\n|1\r\n+a\r\n+b\r\n+v\r\n|1\r\n+a\r\n+b\r\n.\r\n",
                 error::unexpected_end);
    expect_error("*?\r\n|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n.\r\n", error::unexpected_end);
  }
  SECTION("unpaired_map_element") {
    expect_error("%?\r\n+a\r\n.\r\n", error::unpaired_map_element);
    expect_error("|?\r\n+a\r\n.\r\n", error::unpaired_map_element);
  }
}

TEST_CASE("limits are settings and each has its own error", "[parser][limits]") {
  SECTION("nesting depth") {
    parser_config limits;
    limits.max_depth = 3;
    expect_error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", error::nesting_too_deep, limits);
    CHECK(feed_whole("*1\r\n*1\r\n*1\r\n:1\r\n", limits).messages == 1);
    expect_error("*1\r\n*1\r\n*1\r\n$?\r\n;0\r\n", error::nesting_too_deep, limits);
    // The default is far above the handful of levels Redis sends.
    std::string deep;
    for (int i = 0; i < 200; ++i)
      deep += "*1\r\n";
    deep += ":1\r\n";
    const feed_result r = feed_whole(deep);
    CHECK_FALSE(r.ec);
    CHECK(r.messages == 1);
    CHECK(r.nodes.back().depth == 200);
  }
  SECTION("blob length") {
    parser_config limits;
    limits.max_blob_length = 10;
    expect_error("$11\r\nhello world\r\n", error::blob_too_large, limits);
    expect_error("!11\r\nhello world\r\n", error::blob_too_large, limits);
    expect_error("$?\r\n;11\r\nhello world\r\n;0\r\n", error::blob_too_large, limits);
    CHECK(feed_whole("$10\r\nhelloworld\r\n", limits).messages == 1);
    // The default matches the server's own 512 MiB.
    CHECK(parser_config{}.max_blob_length == 512u * 1024 * 1024);
    expect_error("$536870913\r\n", error::blob_too_large);
  }
  SECTION("aggregate size") {
    parser_config limits;
    limits.max_aggregate_size = 5;
    expect_error("*6\r\n", error::aggregate_too_large, limits);
    expect_error("%6\r\n", error::aggregate_too_large, limits);
    CHECK(feed_whole("*5\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n", limits).messages == 1);
  }
  SECTION("line length") {
    parser_config limits;
    limits.max_line_length = 10;
    expect_error("+01234567890\r\n", error::line_too_long, limits);
    // Detected without waiting for the CRLF that may never come.
    expect_error("+012345678901234567890", error::line_too_long, limits);
    CHECK(feed_whole("+0123456789\r\n", limits).messages == 1);
    // Numbers and headers are lines too: the sign and the digits count, leading zeros
    // included.
    for (const char c : std::string(":$!=*%~>|")) {
      INFO(c);
      expect_error(c + std::string("00000000001\r\n"), error::line_too_long, limits);
      expect_error(c + std::string(30, '0'), error::line_too_long, limits);
    }
    expect_error("$?\r\n;00000000001\r\nx\r\n", error::line_too_long, limits);
    expect_error(":-1234567890\r\n", error::line_too_long, limits);
    // Before the digits overflow: which error comes first does not depend on the split.
    expect_error(":123456789012345678901234\r\n", error::line_too_long, limits);
    expect_error("$123456789012345678901234\r\n", error::line_too_long, limits);
    CHECK(feed_all_splits(":1234567890\r\n", limits).messages == 1);
    CHECK(feed_all_splits(":-123456789\r\n", limits).messages == 1);
    CHECK(feed_all_splits("$0000000005\r\nhello\r\n", limits).messages == 1);
    CHECK(feed_all_splits("*0000000001\r\n:0000000001\r\n", limits).messages == 1);
    limits.max_line_length = 25;
    expect_error("$123456789012345678901234\r\n", error::length_overflow, limits);
  }
}

TEST_CASE("a failed parser stays failed until reset", "[parser][errors]") {
  parser p;
  std::error_code ec;
  std::size_t pos = 0;
  const std::string bad = "@\r\n";
  CHECK_FALSE(p.consume(bad, pos, ec));
  CHECK(ec == error::invalid_data_type);
  const std::string good = "+OK\r\n";
  pos = 0;
  ec.clear();
  CHECK_FALSE(p.consume(good, pos, ec));
  CHECK(ec == error::invalid_data_type);
  p.reset();
  ec.clear();
  auto n = p.consume(good, pos, ec);
  REQUIRE(n);
  CHECK_FALSE(ec);
  CHECK(n->value == "OK");
  CHECK(p.done());
}

TEST_CASE("need-more leaves the position at a resumable point", "[parser]") {
  parser p;
  std::error_code ec;
  std::size_t pos = 0;
  std::string buf = "$5\r\nhel";
  CHECK_FALSE(p.consume(buf, pos, ec));
  CHECK_FALSE(ec);
  CHECK_FALSE(p.done());
  // The header is consumed; the body is not.
  CHECK(pos == 4);
  buf += "lo\r\n";
  auto n = p.consume(buf, pos, ec);
  REQUIRE(n);
  CHECK(n->value == "hello");
  CHECK(pos == buf.size());
  CHECK(p.done());
}

TEST_CASE("a long line arriving in pieces is found", "[parser]") {
  const std::string text(100000, 'x');
  const std::string wire = "+" + text + "\r\n";
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1000; i < wire.size(); i += 1000)
    cuts.push_back(i);
  const feed_result r = redcoro::test::feed(wire, cuts);
  REQUIRE(r.nodes.size() == 1);
  CHECK(r.nodes[0].value == text);
}

TEST_CASE("other control bytes are part of a line", "[parser]") {
  const std::string controls("a\tb\0c\x0b\x0c\x01", 8);
  expect_nodes("+" + controls + "\r\n", {S(type::simple_string, 0, controls)});
  const std::string long_line = std::string(40, 'x') + controls + std::string(40, 'y');
  expect_nodes("-" + long_line + "\r\n", {S(type::simple_error, 0, long_line)});
}

TEST_CASE("headers with many leading zeros, split anywhere", "[parser]") {
  const std::string z(300, '0');
  expect_nodes(":" + z + "42\r\n", {S(type::number, 0, z + "42")});
  expect_nodes(":-" + z + "9223372036854775808\r\n",
               {S(type::number, 0, "-" + z + "9223372036854775808")});
  expect_nodes(":+" + z + "7\r\n", {S(type::number, 0, "+" + z + "7")});
  expect_nodes("$" + z + "5\r\nhello\r\n", {S(type::blob_string, 0, "hello")});
  expect_nodes("$-" + z + "1\r\n", {S(type::null, 0)});
  expect_nodes("*" + z + "2\r\n:1\r\n%" + z + "1\r\n+a\r\n+b\r\n",
               {A(type::array, 0, 2), S(type::number, 1, "1"), A(type::map, 1, 1),
                S(type::simple_string, 2, "a"), S(type::simple_string, 2, "b")});
  // A long chunk terminator inside an aggregate: the parser goes on to the next element.
  expect_nodes("*2\r\n$?\r\n;" + z + "1\r\nx\r\n;" + z + "\r\n:1\r\n",
               {A(type::array, 0, 2), A(type::streamed_string, 1, unbounded),
                S(type::streamed_string_part, 2, "x"), S(type::number, 1, "1")});
  expect_nodes("$?\r\n;" + z + "\r\n+OK\r\n",
               {A(type::streamed_string, 0, unbounded), S(type::simple_string, 0, "OK")}, 2);
  expect_error(":" + z + "99999999999999999999\r\n", error::number_overflow);
  expect_error(":" + z + "9223372036854775808\r\n", error::number_overflow);
  expect_error("$" + z + "99999999999999999999\r\n", error::length_overflow);
  expect_error(":" + z + "x\r\n", error::invalid_number);
  expect_error("*" + z + "x\r\n", error::invalid_length);
  expect_error(":" + z + "\rx", error::missing_crlf);
}

TEST_CASE("a header's outcome does not depend on where it was split", "[parser][limits]") {
  // Whichever comes first of the line limit, an overflow or a bad byte, every split and the
  // whole input agree (feed_all_splits checks it), at every limit.
  const std::string wires[] = {":-12345678901234567890123\r\n",
                               ":+000000000000000000000000009\r\n",
                               "$99999999999999999999999\r\n",
                               "*123x\r\n",
                               "$-1\r\n",
                               ":-\r\n",
                               ":12345\rX",
                               "%000000000000000000000000000000",
                               "$?\r\n;0000000000000000000003\r\nabc\r\n;0\r\n"};
  for (std::size_t limit = 0; limit <= 32; ++limit) {
    parser_config limits;
    limits.max_line_length = limit;
    for (const auto& wire : wires) {
      INFO("limit " << limit << ", wire: " << wire);
      feed_all_splits(wire, limits);
    }
  }
}

namespace {

struct trickle_result {
  std::vector<owned_node> nodes;
  std::error_code ec;
  std::size_t examined = 0;
};

// Feeds `wire` to one parser a byte at a time, as the slowest socket would, compacting the
// buffer after each byte as the client does.
trickle_result trickle(const std::string& wire) {
  trickle_result out;
  parser p;
  std::string buffer;
  std::size_t pos = 0;
  for (const char c : wire) {
    buffer.push_back(c);
    for (;;) {
      const auto n = p.consume(buffer, pos, out.ec);
      if (out.ec) break;
      if (n) out.nodes.push_back(redcoro::test::own(*n));
      if (!n && !p.done()) break;
    }
    buffer.erase(0, pos);
    pos = 0;
  }
  out.examined = p.bytes_examined();
  return out;
}

}  // namespace

TEST_CASE("long fields arriving a byte at a time cost work linear in their length",
          "[parser][limits]") {
  // Each call resumes where the previous one stopped instead of rescanning the field: 200,000
  // bytes a byte at a time would otherwise examine 2 * 10^10 bytes.
  const std::string zeros(200000, '0');
  const auto check = [&](const std::string& wire, const std::vector<owned_node>& expected) {
    INFO("wire: " << wire.substr(0, 12) << "...");
    const trickle_result r = trickle(wire);
    REQUIRE_FALSE(r.ec);
    CHECK(r.nodes == expected);
    CHECK(r.examined >= zeros.size());  // the count is real
    CHECK(r.examined <= 3 * wire.size());
  };
  check(":" + zeros + "\r\n", {S(type::number, 0, zeros)});
  check("$" + zeros + "5\r\nhello\r\n", {S(type::blob_string, 0, "hello")});
  check("*" + zeros + "1\r\n:7\r\n", {A(type::array, 0, 1), S(type::number, 1, "7")});
  check("+" + zeros + "\r\n", {S(type::simple_string, 0, zeros)});
}

TEST_CASE("lengths near SIZE_MAX neither wrap nor pass", "[parser][limits]") {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  static_assert(max == std::uint64_t{18446744073709551615u}, "the wire values below are 64-bit");
  parser_config huge;
  huge.max_blob_length = max;
  huge.max_aggregate_size = max;
  huge.max_line_length = max;
  // A blob's length and its CRLF must fit in size_t: the limit is clamped to leave room.
  CHECK(parser(huge).limits().max_blob_length == max - 2);
  for (const char* w :
       {"$18446744073709551614\r\n", "$18446744073709551615\r\n", "!18446744073709551614\r\n",
        "=18446744073709551615\r\n", "$?\r\n;18446744073709551614\r\n"}) {
    INFO(w);
    expect_error(w, error::blob_too_large, huge);
  }
  // The longest blob allowed waits for its body.
  const feed_result longest = feed_all_splits("$18446744073709551613\r\n", huge);
  CHECK_FALSE(longest.ec);
  CHECK(longest.nodes.empty());
  CHECK_FALSE(longest.complete);

  // An aggregate's element count (twice its size for maps) must fit, and no size may read as
  // node::unbounded.
  CHECK(parser(huge).limits().max_aggregate_size == max / 2);
  expect_error("*18446744073709551615\r\n", error::aggregate_too_large, huge);
  expect_error("%9223372036854775808\r\n", error::aggregate_too_large, huge);
  const feed_result widest = feed_all_splits("%9223372036854775807\r\n", huge);
  CHECK_FALSE(widest.ec);
  REQUIRE(widest.nodes.size() == 1);
  CHECK(widest.nodes[0] == A(type::map, 0, max / 2));

  // Lines may be unlimited.
  CHECK(feed_all_splits("+OK\r\n:1\r\n$1\r\nx\r\n", huge).messages == 3);
  // Limits below the clamps stay as given.
  CHECK(parser(parser_config{}).limits().max_blob_length == parser_config{}.max_blob_length);
  CHECK(parser(parser_config{}).limits().max_aggregate_size == parser_config{}.max_aggregate_size);
}
