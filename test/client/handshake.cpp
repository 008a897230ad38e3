// The connection handshake without sockets: settings in, requests out, scripted replies in.
#include <redcoro/client/detail/handshake.hpp>
#include <redcoro/client/error.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using redcoro::detail::handshake_machine;
using redcoro::detail::handshake_settings;
using step = handshake_machine::step;
namespace proto = redcoro::proto;
using proto::type;

namespace {

using reply = proto::result<proto::value>;

reply ok(std::string s = "OK") {
  return reply(proto::value(type::simple_string, std::move(s)));
}
reply num(std::int64_t n) {
  return reply(proto::value(type::number, std::to_string(n)));
}
reply err(std::string message) {
  reply r;
  r.error_storage().code = proto::error::server_error;
  r.error_storage().message = std::move(message);
  return r;
}
reply hello_map(std::int64_t id) {
  return reply(
      proto::value(type::map, std::vector<proto::value>{{type::blob_string, "server"},
                                                        {type::blob_string, "redis"},
                                                        {type::blob_string, "id"},
                                                        {type::number, std::to_string(id)}}));
}
reply role(std::string r) {
  return reply(
      proto::value(type::array, std::vector<proto::value>{{type::blob_string, std::move(r)}}));
}
proto::generic_response replies_of(std::initializer_list<reply> l) {
  return proto::generic_response(l.begin(), l.end());
}

// The commands of a request, their names and arguments joined by spaces.
std::vector<std::string> commands_of(const proto::request& r) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    std::string line;
    const auto c = proto::request::next_command(r.payload(), pos, [&](std::string_view a) {
      if (!line.empty()) line += ' ';
      line += a;
    });
    if (c.empty()) break;
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("RESP3: HELLO with AUTH and SETNAME alone, then the rest", "[handshake]") {
  handshake_settings s;
  s.username = "app";
  s.password = "secret";
  s.client_name = "svc";
  s.database = 2;
  s.fetch_command_table = true;
  const std::function<void(proto::request&)> extras = [](proto::request& r) {
    r.push("SUBSCRIBE", "news");
  };
  s.extras = &extras;
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  CHECK(commands_of(out) ==
        std::vector<std::string>{"HELLO 3 AUTH app secret SETNAME svc", "SELECT 2"});
  proto::generic_response replies = replies_of({hello_map(42), ok()});
  auto o = m.on_replies(replies, out);
  REQUIRE(o.what == step::send);
  CHECK(commands_of(out) == std::vector<std::string>{"COMMAND", "SUBSCRIBE news"});
  replies = replies_of({reply(proto::value(
      type::array, std::vector<proto::value>{}))});  // COMMAND; SUBSCRIBE is out of band
  o = m.on_replies(replies, out);
  CHECK(o.what == step::ready);
  CHECK(m.protocol() == 3);
  CHECK(m.client_id() == 42);
  CHECK(m.command_reply().has_value());
}

TEST_CASE("a server that refuses HELLO gets RESP2 in one request", "[handshake]") {
  handshake_settings s;
  s.password = "pw";
  s.client_name = "svc";
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  proto::generic_response replies = replies_of({err("ERR unknown command 'HELLO'")});
  auto o = m.on_replies(replies, out);
  REQUIRE(o.what == step::send);
  CHECK(o.note.find("RESP2") != std::string::npos);
  CHECK(commands_of(out) ==
        std::vector<std::string>{"AUTH pw", "CLIENT SETNAME svc", "CLIENT ID", "PING"});
  replies = replies_of({ok(), ok(), num(7), ok("PONG")});
  o = m.on_replies(replies, out);
  CHECK(o.what == step::ready);
  CHECK(m.protocol() == 2);
  CHECK(m.client_id() == 7);

  // NOPROTO too, and a server without CLIENT ID still serves (its id is unknown).
  m.start(s, out);
  replies = replies_of({err("NOPROTO unsupported protocol version")});
  REQUIRE(m.on_replies(replies, out).what == step::send);
  replies = replies_of({ok(), ok(), err("ERR unknown command 'CLIENT'"), ok("PONG")});
  o = m.on_replies(replies, out);
  CHECK(o.what == step::ready);
  CHECK(m.client_id() == -1);
}

TEST_CASE("refusals: credentials, SELECT, a role that is not the expected one", "[handshake]") {
  struct row {
    const char* what;
    std::vector<reply> first;
    redcoro::error expect;
  };
  const std::vector<row> table = {
      {"wrong password",
       {err("WRONGPASS invalid username-password pair or user is disabled.")},
       redcoro::error::auth_failed},
      {"no password given",
       {err("NOAUTH HELLO must be called with the client already authenticated")},
       redcoro::error::auth_failed},
      {"a database that does not exist",
       {hello_map(1), err("ERR DB index is out of range")},
       redcoro::error::handshake_failed},
  };
  for (const row& r : table) {
    INFO(r.what);
    handshake_settings s;
    s.password = "pw";
    s.database = 99;
    handshake_machine m;
    proto::request out;
    m.start(s, out);
    proto::generic_response replies(r.first.begin(), r.first.end());
    const auto o = m.on_replies(replies, out);
    CHECK(o.what == step::failed);
    CHECK(o.ec == r.expect);
    CHECK(o.reason.find("pw") == std::string::npos);  // the server's words, no password
  }

  handshake_settings s;
  s.expect_role = "master";
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  proto::generic_response replies = replies_of({hello_map(3)});
  REQUIRE(m.on_replies(replies, out).what == step::send);
  CHECK(commands_of(out) == std::vector<std::string>{"ROLE"});
  replies = replies_of({role("slave")});
  const auto o = m.on_replies(replies, out);
  CHECK(o.what == step::failed);
  CHECK(o.ec == redcoro::error::wrong_role);
  m.start(s, out);
  replies = replies_of({hello_map(3)});
  m.on_replies(replies, out);
  replies = replies_of({role("master")});
  CHECK(m.on_replies(replies, out).what == step::ready);
}

TEST_CASE("a refused command of the caller's is a note, not a failure", "[handshake]") {
  handshake_settings s;
  const std::function<void(proto::request&)> extras = [](proto::request& r) {
    r.push("CLIENT", "TRACKING", "on");
  };
  s.extras = &extras;
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  CHECK(commands_of(out) == std::vector<std::string>{"HELLO 3"});
  proto::generic_response replies = replies_of({hello_map(9)});
  REQUIRE(m.on_replies(replies, out).what == step::send);
  replies = replies_of({err("ERR not allowed")});
  const auto o = m.on_replies(replies, out);
  CHECK(o.what == step::ready);
  CHECK(o.warning);
  CHECK(o.note.find("ERR not allowed") != std::string::npos);
}

TEST_CASE("nothing after HELLO: ready in one round trip", "[handshake]") {
  handshake_settings s;
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  proto::generic_response replies = replies_of({hello_map(5)});
  CHECK(m.on_replies(replies, out).what == step::ready);
  CHECK(m.client_id() == 5);
}

TEST_CASE("client tracking: asked for after HELLO 3, refused without failing, never on RESP2",
          "[handshake][tracking]") {
  handshake_settings s;
  s.tracking = std::vector<std::string>{"BCAST", "PREFIX", "user:"};
  handshake_machine m;
  proto::request out;
  m.start(s, out);
  CHECK(commands_of(out) == std::vector<std::string>{"HELLO 3"});
  auto first = replies_of({hello_map(7)});
  auto o = m.on_replies(first, out);
  REQUIRE(o.what == step::send);
  CHECK(commands_of(out) == std::vector<std::string>{"CLIENT TRACKING ON BCAST PREFIX user:"});
  auto accepted = replies_of({ok()});
  o = m.on_replies(accepted, out);
  CHECK(o.what == step::ready);
  CHECK(m.tracking());

  // Refused (a proxy that does not know it): the session serves, tracking stays off.
  m.start(s, out);
  auto hello = replies_of({hello_map(8)});
  m.on_replies(hello, out);
  auto refused = replies_of({err("ERR unknown subcommand 'TRACKING'")});
  o = m.on_replies(refused, out);
  CHECK(o.what == step::ready);
  CHECK_FALSE(m.tracking());
  CHECK(o.warning);
  CHECK(o.note.find("CLIENT TRACKING was refused") != std::string::npos);

  // RESP2: invalidations would need a second connection; it is not asked for.
  s.protocol = 2;
  m.start(s, out);
  for (const auto& c : commands_of(out))
    CHECK(c.find("TRACKING") == std::string::npos);
  auto resp2 = replies_of({num(9), ok("PONG")});
  o = m.on_replies(resp2, out);
  CHECK(o.what == step::ready);
  CHECK_FALSE(m.tracking());
}
