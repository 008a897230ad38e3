#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/detail/command_list.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/value.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace proto = redcoro::proto;
using namespace std::chrono_literals;
using proto::type;

namespace {

std::string bytes_of(const proto::request& r) {
  return std::string(r.payload());
}

proto::value blob(std::string s) {
  return proto::value(type::blob_string, std::move(s));
}

proto::value array(std::vector<proto::value> e) {
  return proto::value(type::array, std::move(e));
}

}  // namespace

TEST_CASE("command names are found in any case", "[command_info]") {
  CHECK(proto::command_id("GET") != 0);
  CHECK(proto::command_id("get") == proto::command_id("GET"));
  CHECK(proto::command_id("gEt") == proto::command_id("GET"));
  CHECK(proto::command_id("GETX") == 0);
  CHECK(proto::command_id("") == 0);
  CHECK(proto::command_id("AVERYLONGCOMMANDNAMEINDEED") == 0);
  CHECK(proto::find_command("hgetall")->name == "HGETALL");
}

TEST_CASE("the compile-time walk and the run-time index give every name the same id",
          "[command_info]") {
  for (const proto::command_info& c : proto::detail::command_list) {
    INFO(c.name);
    CHECK(proto::detail::command_id_by_walk(c.name) == proto::command_id(c.name));
    CHECK(proto::command_by_id(proto::command_id(c.name))->name == c.name);
  }
}

TEST_CASE("reply types a command can have", "[command_info]") {
  const auto get = proto::command_id("GET");
  CHECK(proto::reply_fits(get, type::blob_string));
  CHECK(proto::reply_fits(get, type::null));
  CHECK(proto::reply_fits(get, type::simple_error));  // errors always
  CHECK(proto::reply_fits(get, type::blob_error));
  CHECK_FALSE(proto::reply_fits(get, type::simple_string));
  CHECK_FALSE(proto::reply_fits(get, type::number));
  CHECK(proto::reply_fits(0, type::number));  // unknown commands are not checked
  CHECK(proto::reply_fits(proto::command_id("HGETALL"), type::map));
  CHECK(proto::reply_fits(proto::command_id("HGETALL"), type::array));       // RESP2
  CHECK(proto::reply_fits(proto::command_id("ZSCORE"), type::blob_string));  // RESP2 double
}

TEST_CASE("block times of blocking commands", "[command_info]") {
  auto block = [](auto... args) {
    proto::request r;
    r.push(args...);
    return proto::block_time(r.payload());
  };
  CHECK(block("BLPOP", "a", "b", 2) == 2000ms);
  CHECK(block("blpop", "a", 0.25) == 250ms);
  CHECK(block("BLPOP", "a", 0) == 0ms);
  CHECK(block("BLMPOP", 1.5, 2, "a", "b", "LEFT") == 1500ms);
  CHECK(block("XREAD", "BLOCK", 300, "STREAMS", "s", "$") == 300ms);
  CHECK(block("XREAD", "COUNT", 1, "STREAMS", "s", "$") == std::nullopt);
  // A consumer named BLOCK is a name, not the option.
  CHECK(block("XREADGROUP", "GROUP", "g", "BLOCK", "STREAMS", "s", ">") == std::nullopt);
  CHECK(block("XREADGROUP", "GROUP", "g", "c", "BLOCK", 100, "STREAMS", "s", ">") == 100ms);
  CHECK(block("WAIT", 1, 500) == 500ms);
  CHECK(block("GET", "k") == std::nullopt);
  CHECK(block("BLPOP", "a", "soon") == std::nullopt);

  proto::request r;
  r.push("GET", "a");
  CHECK_FALSE(r.block_time());
  r.push("BLPOP", "q", 2);
  r.push("BRPOP", "q", 1);
  CHECK(r.block_time() == 2000ms);
  r.push("BLPOP", "q", 0);
  CHECK(r.block_time() == 0ms);
  proto::request copy;
  copy.append_serialized(r.payload(), r.commands());
  CHECK(copy.block_time() == 0ms);
  CHECK(copy.command_id(1) == proto::command_id("BLPOP"));
}

TEST_CASE("what blocking pops took goes back where it came from", "[command_info]") {
  auto back = [](const proto::request& cmd, const proto::value& reply) {
    proto::request out;
    const bool any = proto::append_hand_back(cmd.payload(), reply, out);
    return any ? bytes_of(out) : std::string();
  };
  auto req = [](auto... args) {
    proto::request r;
    r.push(args...);
    return r;
  };
  auto expect = [&](auto... args) { return bytes_of(req(args...)); };

  CHECK(back(req("BLPOP", "a", "b", 1), array({blob("b"), blob("x")})) ==
        expect("LPUSH", "b", "x"));
  CHECK(back(req("BRPOP", "a", 1), array({blob("a"), blob("x")})) == expect("RPUSH", "a", "x"));
  CHECK(back(req("BLPOP", "a", 1), proto::value()).empty());  // nil: nothing taken
  CHECK(back(req("BZPOPMIN", "z", 1),
             array({blob("z"), blob("m"), proto::value(type::double_, "1.5")})) ==
        expect("ZADD", "z", "NX", "1.5", "m"));
  // BLMPOP LEFT took e1 then e2: e2 goes back first so that e1 is at the head again.
  CHECK(back(req("BLMPOP", 1, 2, "a", "b", "LEFT", "COUNT", 2),
             array({blob("b"), array({blob("e1"), blob("e2")})})) ==
        expect("LPUSH", "b", std::vector<std::string>{"e2", "e1"}));
  CHECK(back(req("BZMPOP", 1, 1, "z", "MIN"),
             array({blob("z"), array({array({blob("m"), blob("2")})})})) ==
        expect("ZADD", "z", "NX", std::vector<std::string>{"2", "m"}));
  const auto moved = back(req("BLMOVE", "s", "d", "LEFT", "RIGHT", 1), blob("x"));
  CHECK(moved.find("EVAL") != std::string::npos);
  CHECK(moved.find("LMOVE") != std::string::npos);
  // XREADGROUP's entries stay pending for the consumer; XREAD takes nothing.
  CHECK(back(req("XREADGROUP", "GROUP", "g", "c", "BLOCK", 1, "STREAMS", "s", ">"),
             array({blob("s")}))
            .empty());
}
