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
