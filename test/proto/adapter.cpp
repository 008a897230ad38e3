#include "support/proto_helpers.hpp"
#include <redcoro/proto/adapter.hpp>
#include <redcoro/proto/response.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace proto = redcoro::proto;
using proto::error;
using proto::response;
using proto::type;
using redcoro::test::decode;

namespace {

// Decodes one reply into a single-slot response and returns that slot.
template <class T>
proto::result<T> one(const std::string& wire) {
  response<T> r;
  REQUIRE_FALSE(decode(wire, r));
  return std::get<0>(r);
}

template <class T>
T value_of(const std::string& wire) {
  auto r = one<T>(wire);
  INFO(wire << " -> " << r.error().message);
  REQUIRE(r.has_value());
  return *r;
}

template <class T>
proto::reply_error error_of(const std::string& wire) {
  auto r = one<T>(wire);
  INFO(wire);
  REQUIRE(r.has_error());
  return r.error();
}

}  // namespace

// A user type read from one string.
namespace user {
enum class color { red, green };
void redcoro_from_bulk(color& out, std::string_view s, std::error_code& ec) {
  if (s == "red")
    out = color::red;
  else if (s == "green")
    out = color::green;
  else
    ec = std::make_error_code(std::errc::invalid_argument);
}

// A user aggregate with its own adapter: a point from a two-element array or a map.
struct point {
  double x = 0, y = 0;
};
}  // namespace user

template <>
struct redcoro::proto::adapter<user::point> {
  bool on_node(user::point& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      index_ = 0;
      return detail::check_fixed_size(n, 2, err);
    }
    return inner_.on_node(index_++ == 0 ? out.x : out.y, n, 0, err);
  }
  adapter<double> inner_;
  std::size_t index_ = 0;
};

TEST_CASE("strings from every string-like type", "[adapter]") {
  CHECK(value_of<std::string>("+OK\r\n") == "OK");
  CHECK(value_of<std::string>("$5\r\nhello\r\n") == "hello");
  CHECK(value_of<std::string>("=9\r\ntxt:hello\r\n") == "hello");
  CHECK(value_of<std::string>(":42\r\n") == "42");
  CHECK(value_of<std::string>(",1.5\r\n") == "1.5");
  CHECK(value_of<std::string>("(123456789012345678901234567890\r\n") ==
        "123456789012345678901234567890");
  // The specification's example, whose chunks spell "Hello word".
  CHECK(value_of<std::string>("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n") ==
        "Hello word");
  CHECK(value_of<std::string>("$?\r\n;4\r\nHell\r\n;6\r\no worl\r\n;1\r\nd\r\n;0\r\n") ==
        "Hello world");
}

TEST_CASE("integers from numbers and from strings of digits", "[adapter]") {
  CHECK(value_of<std::int64_t>(":-42\r\n") == -42);
  CHECK(value_of<std::int64_t>("$2\r\n17\r\n") == 17);
  CHECK(value_of<std::int64_t>("+5\r\n") == 5);
  CHECK(value_of<int>(":2147483647\r\n") == 2147483647);
  CHECK(value_of<std::uint64_t>(":9223372036854775807\r\n") == 9223372036854775807ull);
  CHECK(value_of<std::uint64_t>("$20\r\n18446744073709551615\r\n") == 18446744073709551615ull);
  CHECK(value_of<std::int8_t>(":-128\r\n") == -128);

  CHECK(error_of<std::int8_t>(":128\r\n").code == error::out_of_range);
  CHECK(error_of<std::uint32_t>(":-1\r\n").code == error::out_of_range);
  CHECK(error_of<std::int64_t>("$20\r\n99999999999999999999\r\n").code == error::out_of_range);
  CHECK(error_of<std::int64_t>("(99999999999999999999\r\n").code == error::out_of_range);
  CHECK(error_of<std::int64_t>("$3\r\nabc\r\n").code == error::not_a_number);
  CHECK(error_of<std::int64_t>("$0\r\n\r\n").code == error::not_a_number);
  CHECK(error_of<std::uint64_t>("$2\r\n-x\r\n").code == error::not_a_number);
  CHECK(error_of<std::int64_t>(",1.5\r\n").code == error::type_mismatch);
}

TEST_CASE("doubles from doubles, numbers and RESP2 strings", "[adapter]") {
  CHECK(value_of<double>(",1.5\r\n") == 1.5);
  CHECK(value_of<double>(",1.23e4\r\n") == 12300.0);
  CHECK(value_of<double>(":3\r\n") == 3.0);
  CHECK(value_of<double>("$4\r\n2.25\r\n") == 2.25);
  CHECK(std::isinf(value_of<double>(",inf\r\n")));
  CHECK(value_of<double>(",-inf\r\n") < 0);
  CHECK(std::isinf(value_of<double>("$4\r\n-inf\r\n")));
  CHECK(std::isnan(value_of<double>(",nan\r\n")));
  CHECK(std::isnan(value_of<double>(",-nan\r\n")));
  CHECK(std::isinf(value_of<double>(",1e999\r\n")));
  CHECK(value_of<double>(",1e-999\r\n") == 0.0);
  CHECK(value_of<float>(",0.5\r\n") == 0.5f);
  CHECK(error_of<double>("$3\r\nabc\r\n").code == error::not_a_number);
  CHECK(error_of<double>("#t\r\n").code == error::type_mismatch);
}

TEST_CASE("booleans from booleans and from 0 and 1", "[adapter]") {
  CHECK(value_of<bool>("#t\r\n"));
  CHECK_FALSE(value_of<bool>("#f\r\n"));
  CHECK(value_of<bool>(":1\r\n"));
  CHECK_FALSE(value_of<bool>(":0\r\n"));
  CHECK(error_of<bool>(":2\r\n").code == error::out_of_range);
  CHECK(error_of<bool>("*0\r\n").code == error::type_mismatch);
}

TEST_CASE("a mismatch names the expected and the received type", "[adapter]") {
  const auto e = error_of<std::int64_t>("*2\r\n:1\r\n:2\r\n");
  CHECK(e.code == error::type_mismatch);
  CHECK(e.message == "expected integer, got array");
  CHECK(error_of<std::string>("_\r\n").message == "expected string, got null");
  CHECK(error_of<std::vector<std::string>>(":1\r\n").message == "expected aggregate, got number");
  CHECK_FALSE(e.is_server_error());
  CHECK(e.server_code().empty());
}

TEST_CASE("server errors are data in the reply's slot", "[adapter]") {
  const auto e = error_of<std::string>("-WRONGTYPE Operation against a key\r\n");
  CHECK(e.code == error::server_error);
  CHECK(e.is_server_error());
  CHECK(e.server_code() == "WRONGTYPE");
  CHECK(e.message == "WRONGTYPE Operation against a key");
  const auto b = error_of<std::vector<int>>("!21\r\nSYNTAX invalid syntax\r\n");
  CHECK(b.server_code() == "SYNTAX");
  CHECK(b.message == "SYNTAX invalid syntax");

  auto r = one<int>("-ERR x\r\n");
  CHECK_THROWS_AS(r.value(), proto::reply_exception);
}

TEST_CASE("optional gives nullopt for null in RESP3 and RESP2", "[adapter]") {
  CHECK_FALSE(value_of<std::optional<std::string>>("_\r\n"));
  CHECK_FALSE(value_of<std::optional<std::string>>("$-1\r\n"));
  CHECK_FALSE(value_of<std::optional<std::vector<std::string>>>("*-1\r\n"));
  CHECK(value_of<std::optional<std::string>>("$1\r\nx\r\n") == "x");
  const auto v =
      value_of<std::vector<std::optional<std::string>>>("*3\r\n$1\r\na\r\n_\r\n$1\r\nb\r\n");
  REQUIRE(v.size() == 3);
  CHECK(v[0] == "a");
  CHECK_FALSE(v[1]);
  CHECK(v[2] == "b");
}

TEST_CASE("sequence containers", "[adapter]") {
  const std::string wire = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
  CHECK(value_of<std::vector<std::string>>(wire) == std::vector<std::string>{"a", "b", "c"});
  CHECK(value_of<std::deque<std::string>>(wire) == std::deque<std::string>{"a", "b", "c"});
  CHECK(value_of<std::list<std::string>>(wire) == std::list<std::string>{"a", "b", "c"});
  CHECK(value_of<std::vector<int>>("~2\r\n:1\r\n:2\r\n") == std::vector<int>{1, 2});
  CHECK(value_of<std::vector<int>>("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n") == std::vector<int>{1, 2, 3});
  CHECK(value_of<std::vector<int>>("*0\r\n").empty());
  CHECK(value_of<std::vector<std::vector<int>>>("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n:3\r\n") ==
        std::vector<std::vector<int>>{{1, 2}, {3}});
  // A map flattens into key, value, key, value.
  CHECK(value_of<std::vector<std::string>>("%1\r\n+k\r\n+v\r\n") ==
        std::vector<std::string>{"k", "v"});
  // An element of the wrong type fails the whole reply.
  CHECK(error_of<std::vector<int>>("*2\r\n:1\r\n+x\r\n").code == error::not_a_number);
}

TEST_CASE("sets", "[adapter]") {
  CHECK(value_of<std::set<std::string>>("~3\r\n+a\r\n+b\r\n+a\r\n") ==
        std::set<std::string>{"a", "b"});
  CHECK(value_of<std::unordered_set<int>>("*2\r\n:1\r\n:2\r\n") == std::unordered_set<int>{1, 2});
  CHECK(error_of<std::set<std::string>>("~1\r\n*1\r\n+a\r\n").code == error::type_mismatch);
}

TEST_CASE("maps from RESP3 maps, RESP2 flat arrays and arrays of pairs", "[adapter]") {
  using M = std::map<std::string, std::int64_t>;
  const M expected{{"a", 1}, {"b", 2}};
  CHECK(value_of<M>("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n") == expected);
  CHECK(value_of<M>("*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n") == expected);
  CHECK(value_of<M>("*2\r\n*2\r\n+a\r\n:1\r\n*2\r\n+b\r\n:2\r\n") == expected);
  CHECK(value_of<M>("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n") == expected);
  CHECK(value_of<M>("*0\r\n").empty());
  CHECK(value_of<std::unordered_map<std::string, std::string>>("%1\r\n+k\r\n+v\r\n").at("k") ==
        "v");
  // Aggregate values.
  const auto nested = value_of<std::map<std::string, std::vector<int>>>(
      "%2\r\n+a\r\n*2\r\n:1\r\n:2\r\n+b\r\n*0\r\n");
  CHECK(nested.at("a") == std::vector<int>{1, 2});
  CHECK(nested.at("b").empty());
  CHECK(error_of<M>("*3\r\n+a\r\n:1\r\n+b\r\n").code == error::size_mismatch);
  CHECK(error_of<M>("*1\r\n*3\r\n+a\r\n:1\r\n:2\r\n").code == error::size_mismatch);
  CHECK(error_of<M>("+OK\r\n").code == error::type_mismatch);
}

TEST_CASE("vectors of pairs: WITHSCORES in RESP2 and RESP3 shape", "[adapter]") {
  using V = std::vector<std::pair<std::string, double>>;
  const V expected{{"alice", 10.5}, {"bob", 3}};
  CHECK(value_of<V>("*4\r\n$5\r\nalice\r\n$4\r\n10.5\r\n$3\r\nbob\r\n$1\r\n3\r\n") == expected);
  CHECK(value_of<V>("*2\r\n*2\r\n$5\r\nalice\r\n,10.5\r\n*2\r\n$3\r\nbob\r\n,3\r\n") == expected);
  CHECK(value_of<V>("%2\r\n$5\r\nalice\r\n,10.5\r\n$3\r\nbob\r\n,3\r\n") == expected);
  CHECK(value_of<V>("*0\r\n").empty());
}

TEST_CASE("fixed shapes: pair, tuple, array", "[adapter]") {
  const auto t =
      value_of<std::tuple<std::string, int, std::optional<std::string>>>("*3\r\n+a\r\n:7\r\n_\r\n");
  CHECK(std::get<0>(t) == "a");
  CHECK(std::get<1>(t) == 7);
  CHECK_FALSE(std::get<2>(t));
  CHECK(value_of<std::pair<std::string, std::string>>("*2\r\n+list\r\n+item\r\n") ==
        std::pair<std::string, std::string>{"list", "item"});
  CHECK(value_of<std::array<int, 3>>("*3\r\n:1\r\n:2\r\n:3\r\n") == std::array<int, 3>{1, 2, 3});
  CHECK(error_of<std::tuple<int, int>>("*3\r\n:1\r\n:2\r\n:3\r\n").code == error::size_mismatch);
  CHECK(error_of<std::tuple<int, int>>("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n").code ==
        error::size_mismatch);
  CHECK(error_of<std::array<int, 2>>("*1\r\n:1\r\n").code == error::size_mismatch);
  CHECK(error_of<std::tuple<int>>(":1\r\n").code == error::type_mismatch);
}

TEST_CASE("nested results capture each element's error, as in EXEC", "[adapter]") {
  // MULTI; SET; INCR on a string; GET -> EXEC reply with an error in the middle.
  const auto exec = value_of<std::tuple<proto::result<std::string>, proto::result<std::int64_t>,
                                        proto::result<std::string>>>(
      "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n");
  CHECK(std::get<0>(exec).value() == "OK");
  CHECK(std::get<1>(exec).error().server_code() == "ERR");
  CHECK(std::get<2>(exec).value() == "x");

  const auto v = value_of<std::vector<proto::result<int>>>("*3\r\n:1\r\n*2\r\n:1\r\n:2\r\n:3\r\n");
  REQUIRE(v.size() == 3);
  CHECK(*v[0] == 1);
  CHECK(v[1].error().code == error::type_mismatch);
  CHECK(*v[2] == 3);

  // Without a result<> per element, an error element fails the whole reply with its text.
  const auto e = error_of<std::vector<std::string>>("*2\r\n+OK\r\n-ERR bad\r\n");
  CHECK(e.is_server_error());
  CHECK(e.message == "ERR bad");
}

TEST_CASE("user types through redcoro_from_bulk and adapter specializations", "[adapter]") {
  CHECK(value_of<user::color>("$5\r\ngreen\r\n") == user::color::green);
  const auto e = error_of<user::color>("$4\r\nblue\r\n");
  CHECK(e.code == std::errc::invalid_argument);
  CHECK(e.message.find("'blue'") != std::string::npos);

  const auto p = value_of<user::point>("*2\r\n,1.5\r\n$3\r\n2.5\r\n");
  CHECK(p.x == 1.5);
  CHECK(p.y == 2.5);
  CHECK(value_of<std::vector<user::point>>("*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n")[1].y == 4);
}

TEST_CASE("ignore accepts anything", "[adapter]") {
  CHECK(one<proto::ignore_t>("*2\r\n%1\r\n+a\r\n:1\r\n$?\r\n;1\r\nx\r\n;0\r\n").has_value());
  CHECK(one<proto::ignore_t>("-ERR x\r\n").error().server_code() == "ERR");
}

TEST_CASE("generic values keep everything, attributes included", "[adapter][value]") {
  const auto v = value_of<proto::value>(
      "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n$?\r\n;2\r\nab\r\n;"
      "1\r\nc\r\n;0\r\n");
  CHECK(v.data_type == type::array);
  REQUIRE(v.size() == 2);
  CHECK(v[0].to_integer() == 1);
  CHECK(v[1].data_type == type::blob_string);
  CHECK(v[1].text == "abc");
  REQUIRE(v.attributes.size() == 2);
  CHECK(v.attributes[0].text == "key-popularity");
  CHECK(v.attributes[1].find("a")->to_double() == 0.19);

  // An attribute inside an aggregate goes to the element it precedes.
  const auto inner = value_of<proto::value>("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n");
  REQUIRE(inner.size() == 3);
  CHECK(inner[0].attributes.empty());
  REQUIRE(inner[2].attributes.size() == 2);
  CHECK(inner[2].attributes[1].to_integer() == 3600);

  // Typed adapters skip attributes, at any depth.
  CHECK(value_of<std::vector<int>>("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n") ==
        std::vector<int>{1, 2, 3});
  CHECK(value_of<std::string>("|1\r\n+a\r\n+b\r\n+OK\r\n") == "OK");
}

TEST_CASE("generic values from every type", "[adapter][value]") {
  const auto v = value_of<proto::value>(
      "%3\r\n+s\r\n=9\r\nmkd:hello\r\n+n\r\n_\r\n+set\r\n~2\r\n#t\r\n(12345678901234567890\r\n");
  CHECK(v.is_map());
  CHECK(v.find("s")->text == "hello");
  CHECK(v.find("s")->format == std::array<char, 3>{'m', 'k', 'd'});
  CHECK(v.find("n")->is_null());
  CHECK(v.find("set")->size() == 2);
  CHECK(v.find("missing") == nullptr);
  CHECK(v.to_display() ==
        "{\"s\": \"hello\", \"n\": (nil), \"set\": ~{true, 12345678901234567890}}");
}

TEST_CASE("responses hold one result per reply and stay in sync after errors",
          "[adapter][response]") {
  response<std::int64_t, std::string, std::vector<int>, std::optional<std::string>> r;
  // The second reply is a mismatch (an array for a string); the next ones are read normally.
  REQUIRE_FALSE(decode(":1\r\n*2\r\n:1\r\n*1\r\n+x\r\n*2\r\n:5\r\n:6\r\n$-1\r\n", r));
  CHECK(std::get<0>(r).value() == 1);
  CHECK(std::get<1>(r).error().code == error::type_mismatch);
  CHECK(std::get<2>(r).value() == std::vector<int>{5, 6});
  CHECK_FALSE(std::get<3>(r).value());

  // The same response reused: a good reply clears the previous error.
  REQUIRE_FALSE(decode(":2\r\n+ok\r\n*0\r\n$1\r\nz\r\n", r));
  CHECK(std::get<1>(r).value() == "ok");
  CHECK(std::get<3>(r).value() == "z");
}

TEST_CASE("generic_response takes any number of replies", "[adapter][response]") {
  proto::generic_response r;
  REQUIRE_FALSE(decode("+OK\r\n-ERR no\r\n*1\r\n:1\r\n", r));
  REQUIRE(r.size() == 3);
  CHECK(r[0]->text == "OK");
  CHECK(r[1].error().server_code() == "ERR");
  CHECK((*r[2])[0].to_integer() == 1);
}

TEST_CASE("ignore as a whole response reports the first error reply", "[adapter][response]") {
  proto::ignore_t ig;
  CHECK_FALSE(decode("+OK\r\n:1\r\n", ig));
  std::string wire = "+OK\r\n-ERR first\r\n-ERR second\r\n";
  proto::response_adapter<proto::ignore_t> adapter(ig);
  proto::parser p;
  std::size_t pos = 0, index = 0;
  std::error_code ec;
  while (pos < wire.size()) {
    auto n = p.consume(wire, pos, ec);
    REQUIRE(n);
    adapter.on_node(index, *n);
    if (p.done()) ++index;
  }
  CHECK(adapter.error() == error::server_error);
  CHECK(adapter.message() == "ERR first");
}

TEST_CASE("any_adapter erases the response type", "[adapter][response]") {
  response<int> r;
  proto::response_adapter<response<int>> impl(r);
  proto::any_adapter any(impl);
  CHECK(any.replies() == 1);
  proto::node n{type::number, false, 0, 1, "5"};
  any.on_node(0, n);
  CHECK(std::get<0>(r).value() == 5);
  CHECK_FALSE(any.error());
  proto::generic_response g;
  proto::response_adapter<proto::generic_response> gi(g);
  CHECK(proto::any_adapter(gi).replies() == proto::any_reply_count);
}

TEST_CASE("reused responses keep their storage", "[adapter][response]") {
  response<std::vector<std::string>> r;
  const std::string wire = "*3\r\n$10\r\naaaaaaaaaa\r\n$10\r\nbbbbbbbbbb\r\n$10\r\ncccccccccc\r\n";
  REQUIRE_FALSE(decode(wire, r));
  const auto& v = std::get<0>(r).value();
  const auto* data = v.data();
  const auto* first = v[0].data();
  REQUIRE_FALSE(decode(wire, r));
  CHECK(v.data() == data);
  CHECK(v[0].data() == first);
  CHECK(v[2] == "cccccccccc");
  // Fewer elements the next time: the vector shrinks to the reply.
  REQUIRE_FALSE(decode("*1\r\n$1\r\nz\r\n", r));
  CHECK(v == std::vector<std::string>{"z"});
}

TEST_CASE("huge announced counts are not trusted for allocation", "[adapter]") {
  // A reply announcing 2^31 elements but carrying 2 fails in the parser's hands later; the
  // adapter must not have reserved memory for the announced count.
  response<std::vector<std::string>> r;
  proto::response_adapter<response<std::vector<std::string>>> adapter(r);
  adapter.on_node(0, proto::node{type::array, false, 0, std::size_t{1} << 31, {}});
  CHECK(std::get<0>(r)->size() <= 4096);
  CHECK(proto::detail::presize(proto::node::unbounded, 10) == 0);
  CHECK(proto::detail::presize(10, 0) == 10);
  CHECK(proto::detail::presize(100000, 50000) == 50000);
}

TEST_CASE("decoding split at every byte gives the same responses", "[adapter][response]") {
  const std::string wire =
      "*2\r\n*2\r\n$5\r\nalice\r\n,10.5\r\n*2\r\n$3\r\nbob\r\n,3\r\n%1\r\n+k\r\n*1\r\n:1\r\n"
      "$?\r\n;3\r\nabc\r\n;0\r\n";
  using R = response<std::vector<std::pair<std::string, double>>,
                     std::map<std::string, std::vector<int>>, std::string>;
  R whole;
  REQUIRE_FALSE(decode(wire, whole));
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    R r;
    REQUIRE_FALSE(decode(wire, r, {cut}));
    CHECK(std::get<0>(r).value() == std::get<0>(whole).value());
    CHECK(std::get<1>(r).value() == std::get<1>(whole).value());
    CHECK(std::get<2>(r).value() == "abc");
  }
}
