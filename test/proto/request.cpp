#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/request.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

using redcoro::proto::arg_sink;
using redcoro::proto::request;

namespace shop {
struct item {
  std::string name;
  int quantity;
};
// Expands to two arguments: a user type may add any number of bulks.
void redcoro_to_bulk(arg_sink& sink, const item& i) {
  sink.add(i.name);
  sink.add(i.quantity);
}
}  // namespace shop

TEST_CASE("commands serialize as arrays of bulk strings, byte for byte", "[request]") {
  request req;
  req.push("GET", "key");
  CHECK(req.payload() == "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
  req.push("SET", std::string("k"), std::string_view("value"), "EX", 60);
  CHECK(req.payload() ==
        "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
        "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n$2\r\nEX\r\n$2\r\n60\r\n");
  CHECK(req.commands() == 2);
  CHECK(req.expected_replies() == 2);
  request ping;
  ping.push("PING");
  CHECK(ping.payload() == "*1\r\n$4\r\nPING\r\n");
}

TEST_CASE("arguments are binary safe: CR, LF and NUL cannot inject commands", "[request]") {
  request req;
  const std::string evil("v\r\nFLUSHALL\r\n\0x", 15);
  req.push("SET", "k\r\n", evil);
  CHECK(req.payload() == std::string("*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$15\r\n") + evil + "\r\n");
  CHECK(req.commands() == 1);
  request empty;
  empty.push("SET", "k", "");
  CHECK(empty.payload() == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST_CASE("integers at their limits", "[request]") {
  request req;
  req.push("X", std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::uint64_t>::max(),
           0, -1, static_cast<short>(7), 42u);
  CHECK(req.payload() ==
        "*7\r\n$1\r\nX\r\n$20\r\n-9223372036854775808\r\n$20\r\n18446744073709551615\r\n"
        "$1\r\n0\r\n$2\r\n-1\r\n$1\r\n7\r\n$2\r\n42\r\n");
}

TEST_CASE("doubles use the shortest text that reads back the same", "[request]") {
  request req;
  req.push("ZADD", "z", 0.1, 1e300, -2.5, 3.0, std::numeric_limits<double>::infinity(),
           -std::numeric_limits<double>::infinity(), 0.5f);
  CHECK(req.payload() ==
        "*9\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n0.1\r\n$6\r\n1e+300\r\n$4\r\n-2.5\r\n$1\r\n3\r\n"
        "$3\r\ninf\r\n$4\r\n-inf\r\n$3\r\n0.5\r\n");
}

TEST_CASE("ranges, maps, pairs and tuples expand to one bulk per element", "[request]") {
  request req;
  req.push("DEL", std::vector<std::string>{"a", "b"});
  CHECK(req.payload() == "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n");

  request hset;
  hset.push("HSET", "user:1", std::map<std::string, int>{{"age", 36}, {"id", 7}});
  CHECK(hset.payload() ==
        "*6\r\n$4\r\nHSET\r\n$6\r\nuser:1\r\n$3\r\nage\r\n$2\r\n36\r\n$2\r\nid\r\n$1\r\n7\r\n");

  request ranged;
  ranged.push_range("RPUSH", std::list<int>{1, 2, 3}, "list");
  CHECK(ranged.payload() == "*5\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");

  request tuple;
  tuple.push("ZADD", "z", std::vector<std::pair<double, std::string>>{{1.5, "a"}},
             std::tuple<int, std::string_view>{2, "b"});
  CHECK(tuple.payload() ==
        "*6\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n");

  request none;
  none.push("DEL", std::vector<std::string>{});
  CHECK(none.payload() == "*1\r\n$3\r\nDEL\r\n");
}

TEST_CASE("byte buffers are one bulk each", "[request]") {
  const std::array<std::byte, 3> raw{std::byte{0}, std::byte{0xff}, std::byte{'\n'}};
  const std::vector<unsigned char> bytes{'a', 'b'};
  const std::vector<char> chars{'c'};
  request req;
  req.push("SET", "k", std::span<const std::byte>(raw));
  req.push("SET", "k", bytes);
  req.push("SET", "k", chars);
  CHECK(req.payload() == std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\0\xff\n\r\n", 29) +
                             "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nab\r\n" +
                             "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nc\r\n");
}

TEST_CASE("user types add their own bulks", "[request]") {
  request req;
  req.push("HSET", "cart", shop::item{"apple", 3});
  CHECK(req.payload() == "*4\r\n$4\r\nHSET\r\n$4\r\ncart\r\n$5\r\napple\r\n$1\r\n3\r\n");
  request many;
  many.push("HSET", "cart", std::vector<shop::item>{{"a", 1}, {"b", 2}});
  CHECK(many.payload() ==
        "*6\r\n$4\r\nHSET\r\n$4\r\ncart\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n");
}

TEST_CASE("the subscribe family answers out of band on RESP3", "[request]") {
  request req;
  req.push("SUBSCRIBE", "a", "b");
  req.push("ping");
  req.push("psubscribe", "p*");
  req.push("SSUBSCRIBE", "s");
  req.push("UNSUBSCRIBE");
  req.push("PUNSUBSCRIBE");
  req.push("sunsubscribe");
  req.push("SUBSCRIBER");
  CHECK(req.commands() == 8);
  CHECK(req.out_of_band_commands() == 6);
  CHECK(req.expected_replies() == 2);
  CHECK(redcoro::proto::pubsub_kind_of_command("Subscribe") ==
        redcoro::proto::pubsub_kind::subscribe);
  CHECK_FALSE(redcoro::proto::pubsub_kind_of_command("PUBLISH"));
}

TEST_CASE("a request that fits inline stays inside the object, names known at compile time too",
          "[request]") {
  using namespace redcoro::proto::literals;
  const auto inside = [](const request& r) {
    const auto* at = reinterpret_cast<const char*>(&r);
    return r.payload().data() >= at && r.payload().data() < at + sizeof(request);
  };
  for (const bool known : {false, true}) {
    INFO(known);
    request req;
    // 77 bytes, then a GET of 20: 97 in all, within small_buffer's 104, with the second name
    // starting where fewer than command_name::bulk_capacity bytes are left.
    if (known) {
      req.push("SET"_cmd, "k", std::string(50, 'v'));
      req.push("GET"_cmd, "k");
    } else {
      req.push("SET", "k", std::string(50, 'v'));
      req.push("GET", "k");
    }
    REQUIRE(req.payload().size() == 97);
    CHECK(req.payload().size() <= redcoro::proto::detail::small_buffer::inline_size);
    CHECK(inside(req));
    CHECK(req.payload().substr(77) == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  }
}

TEST_CASE("clear keeps capacity and config", "[request]") {
  request req(request::config{true, true});
  req.push("SET", "k", std::string(1000, 'x'));
  const auto cap = req.payload().size();
  req.clear();
  CHECK(req.payload().empty());
  CHECK(req.commands() == 0);
  CHECK(req.get_config().retry_if_unanswered);
  req.reserve(cap);
  req.push("GET", "k");
  CHECK(req.commands() == 1);
}

TEST_CASE("commands are read back out of a payload, one pass or two", "[request]") {
  request req;
  req.push("SET", "k", "a\r\nb");
  req.push("PING");
  const std::string_view payload = req.payload();
  std::size_t pos = 0;
  std::vector<std::string> args;
  const auto first =
      request::next_command(payload, pos, [&](std::string_view a) { args.emplace_back(a); });
  CHECK(first == req.command_bytes(0));
  CHECK(args == std::vector<std::string>{"SET", "k", "a\r\nb"});
  std::vector<std::string> again;
  CHECK(request::for_each_arg(first, [&](std::string_view a) { again.emplace_back(a); }));
  CHECK(again == args);
  CHECK(request::next_command(payload, pos) == req.command_bytes(1));
  CHECK(pos == payload.size());
  CHECK(request::next_command(payload, pos).empty());
  // A cut command is not one.
  std::size_t at = 0;
  CHECK(request::next_command(payload.substr(0, first.size() - 3), at).empty());
  CHECK(at == 0);
}

namespace {

// What a place says, checked against the request's own bytes read argument by argument.
void check_places(const request& req) {
  const std::string_view payload = req.payload();
  std::size_t pos = 0;
  for (std::size_t i = 0; i < req.commands(); ++i) {
    const std::size_t at = pos;
    std::vector<std::string_view> args;
    const auto bytes =
        request::next_command(payload, pos, [&](std::string_view a) { args.push_back(a); });
    INFO("command " << i << ": " << bytes);
    const auto& place = req.place(i);
    CHECK(place.offset == at);
    CHECK(req.command_bytes(i) == bytes);
    CHECK(place.id == redcoro::proto::command_id(args.at(0)));
    if (args.size() > 1) {
      CHECK(req.first_arg(i).data() == args[1].data());
      CHECK(req.first_arg(i).size() == args[1].size());
    } else {
      CHECK(place.first_arg == 0);
      CHECK(req.first_arg(i).empty());
    }
  }
  CHECK(pos == payload.size());
  CHECK(req.command_bytes(req.commands()).empty());
}

}  // namespace

TEST_CASE("a request records where each command and its first argument are", "[request]") {
  request req;
  req.push("GET", "key:1");
  check_places(req);  // one command: kept inline
  req.push("PING");
  req.push("SET", "", "value", "EX", 60);  // an empty first argument is still one
  req.push("HSET", "h", std::map<std::string, int>{{"a", 1}, {"b", 2}});
  req.push("UNKNOWNCMD", std::string(300, 'x'));  // a header of three digits
  req.push("BLPOP", "list", 5);
  check_places(req);
  CHECK(req.place(1).first_arg == 0);
  CHECK(req.first_arg(2).empty());
  CHECK(req.place(2).first_arg != 0);
  CHECK(req.place(4).id == 0);
  CHECK(req.block_time() == std::chrono::seconds(5));

  SECTION("append shifts the places of the other request") {
    request both;
    both.push("ECHO", "x");
    both.append(req);
    both.append(both);  // itself: what it held before, once more
    REQUIRE(both.commands() == 2 * (1 + req.commands()));
    check_places(both);
    CHECK(both.first_arg(1) == "key:1");
    CHECK(both.block_time() == std::chrono::seconds(5));
  }
  SECTION("append_serialized reads the places out of the bytes") {
    request copy;
    copy.push("ECHO", "x");
    copy.append_serialized(req.payload(), req.commands());
    check_places(copy);
    CHECK(copy.block_time() == std::chrono::seconds(5));
  }
  SECTION("bytes that are not a command have an empty place") {
    request odd;
    odd.append_serialized("*2\r\n$3\r\nGET\r\n$9\r\nshort", 2);
    CHECK(odd.commands() == 2);
    CHECK(odd.command_bytes(0).empty());
    CHECK(odd.command_bytes(1).empty());
    CHECK(odd.command_id(0) == 0);
  }
  SECTION("clear forgets them") {
    req.clear();
    CHECK(req.commands() == 0);
    req.push("GET", "again");
    check_places(req);
  }
}

TEST_CASE("a name known at compile time gives the same request, looked up by the compiler",
          "[request]") {
  using namespace redcoro::proto::literals;
  using redcoro::proto::command_name;
  static_assert("GET"_cmd.id() == redcoro::proto::detail::command_id_by_walk("GET"));
  static_assert("get"_cmd.id() == "GET"_cmd.id());
  static_assert("NOSUCHCOMMAND"_cmd.id() == 0);
  static_assert("ZREVRANGEBYSCORE"_cmd.bulk() == "$16\r\nZREVRANGEBYSCORE\r\n");
  static_assert(command_name("FT.SEARCH").name() == "FT.SEARCH");
  static_assert(!"PUBLISH"_cmd.out_of_band());
  static_assert("ssubscribe"_cmd.out_of_band() == redcoro::proto::pubsub_kind::ssubscribe);

  // The same commands pushed both ways: bytes, places, ids, out-of-band commands, block time
  // and transaction control all agree.
  request by_name, by_constant;
  by_name.push("GET", "key:1");
  by_constant.push("GET"_cmd, "key:1");
  by_name.push("ping");
  by_constant.push("ping"_cmd);
  by_name.push("SET", "", "value", "EX", 60);
  by_constant.push("SET"_cmd, "", "value", "EX", 60);
  by_name.push("UNKNOWNCMD", std::string(300, 'x'));
  by_constant.push("UNKNOWNCMD"_cmd, std::string(300, 'x'));
  by_name.push("BLPOP", "list", 5);
  by_constant.push("BLPOP"_cmd, "list", 5);
  by_name.push("MULTI");
  by_constant.push("MULTI"_cmd);
  by_name.push("SUBSCRIBE", "a", "b");
  by_constant.push("SUBSCRIBE"_cmd, "a", "b");
  REQUIRE(by_constant.payload() == by_name.payload());
  REQUIRE(by_constant.commands() == by_name.commands());
  check_places(by_constant);
  for (std::size_t i = 0; i < by_name.commands(); ++i) {
    CHECK(by_constant.command_id(i) == by_name.command_id(i));
    CHECK(by_constant.first_arg(i) == by_name.first_arg(i));
    CHECK(by_constant.place(i).size == by_name.place(i).size);
  }
  CHECK(by_constant.block_time() == std::chrono::seconds(5));
  CHECK(by_constant.has_transaction_commands());
  REQUIRE(by_constant.out_of_band_commands() == 1);
  CHECK(by_constant.out_of_band()[0].index == 6);
  CHECK(by_constant.out_of_band()[0].confirmations == 2);
}

TEST_CASE("an argument may be bytes of the request it is pushed into", "[request]") {
  request req;
  req.push("SET", "k", std::string(80, 'x'));  // inside the request, nearly full
  const std::string before(req.payload());
  req.push("ECHO", req.payload());  // the buffer moves to the heap while the bytes are read
  CHECK(req.first_arg(1) == before);
  req.push("ECHO", req.first_arg(1));  // and again, from the heap
  CHECK(req.first_arg(2) == before);
}

TEST_CASE("a request's bytes stay inside it while small, and copy and move either way",
          "[request]") {
  request small;
  small.push("GET", "key:1");
  const std::string small_bytes(small.payload());
  request big;
  const std::string value(32, 'v');
  for (int i = 0; i < 8; ++i)
    big.push("SET", std::to_string(i), value);  // past the inline bytes
  const std::string big_bytes(big.payload());
  REQUIRE(big_bytes.size() > 104);

  for (const request* r : {&small, &big}) {
    const std::string bytes(r->payload());
    request copy = *r;
    CHECK(copy.payload() == bytes);
    check_places(copy);
    request moved = std::move(copy);
    CHECK(moved.payload() == bytes);
    check_places(moved);
    copy.clear();  // a moved-from request is usable again
    copy.push("PING");
    CHECK(copy.payload() == "*1\r\n$4\r\nPING\r\n");
    request assigned;
    assigned.push("ECHO", std::string(200, 'x'));  // on the heap before
    assigned = moved;
    CHECK(assigned.payload() == bytes);
    assigned = std::move(moved);
    CHECK(assigned.payload() == bytes);
    check_places(assigned);
  }
  CHECK(small.payload() == small_bytes);
  CHECK(big.payload() == big_bytes);

  SECTION("bytes appended from the request itself, across the move to the heap") {
    request twice = small;
    for (int i = 0; i < 6; ++i)
      twice.append_serialized(twice.payload(), twice.commands());
    CHECK(twice.commands() == 64);
    CHECK(twice.payload().size() == 64 * small_bytes.size());
    check_places(twice);
  }
}
