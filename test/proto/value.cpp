#include "support/proto_helpers.hpp"
#include <redcoro/proto/value.hpp>

#include <catch2/catch.hpp>

using redcoro::proto::type;
using redcoro::proto::value;

TEST_CASE("value conversions and lookups", "[value]") {
  const value n(type::number, "-12");
  CHECK(n.to_integer() == -12);
  CHECK(n.to_double() == -12.0);
  CHECK_FALSE(value(type::blob_string, "x").to_integer());
  CHECK(value(type::double_, "inf").to_double() > 1e308);
  CHECK_FALSE(value(type::array, std::vector<value>{}).to_integer());

  // RESP2 flat key/value arrays are searchable like maps.
  const value flat(type::array, std::vector<value>{{type::blob_string, "k"}, {type::number, "1"}});
  REQUIRE(flat.find("k"));
  CHECK(flat.find("k")->to_integer() == 1);
  CHECK(value(type::simple_string, "x").find("x") == nullptr);
}

TEST_CASE("values encode to RESP3 and display like redis-cli", "[value]") {
  value v(type::array, std::vector<value>{{type::simple_string, "OK"},
                                          {type::blob_string, "a\r\nb"},
                                          {type::null, ""},
                                          {type::simple_error, "ERR x"}});
  CHECK(redcoro::proto::to_resp3(v) == "*4\r\n+OK\r\n$4\r\na\r\nb\r\n_\r\n-ERR x\r\n");
  CHECK(v.to_display() == "[\"OK\", \"a\\r\\nb\", (nil), (error) ERR x]");
  value bin(type::blob_string, std::string("\x01\xff", 2));
  CHECK(bin.to_display() == "\"\\x01\\xff\"");
}

TEST_CASE("a value's nodes are those the parser gives for its RESP3 form", "[value]") {
  value attributed(type::number, "7");
  attributed.attributes = {{type::simple_string, "ttl"}, {type::number, "3"}};
  value verbatim(type::verbatim_string, "# hi");
  verbatim.format = {'m', 'k', 'd'};
  const value v(
      type::array,
      std::vector<value>{
          {type::simple_string, "OK"},
          {type::map, std::vector<value>{{type::blob_string, "k"}, {type::double_, "1.5"}}},
          {type::set, std::vector<value>{{type::boolean, "t"}}},
          {type::null, ""},
          {type::blob_error, "ERR no"},
          attributed,
          verbatim,
          {type::array, std::vector<value>{}},
      });
  std::vector<redcoro::test::owned_node> walked;
  redcoro::proto::for_each_node(
      v, [&](const redcoro::proto::node& n) { walked.push_back(redcoro::test::own(n)); });
  const auto parsed = redcoro::test::feed_whole(redcoro::proto::to_resp3(v));
  REQUIRE_FALSE(parsed.ec);
  CHECK(walked == parsed.nodes);
}
