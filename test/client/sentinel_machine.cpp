// What sentinel_client makes of the sentinels' replies, without sockets.
#include <redcoro/client/detail/sentinel_machine.hpp>
#include <redcoro/client/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using redcoro::endpoint;
using namespace redcoro::detail;
namespace proto = redcoro::proto;
using proto::type;
using kind = sentinel_answer::kind;

namespace {

using reply = proto::result<proto::value>;

proto::value blob(std::string s) {
  return proto::value(type::blob_string, std::move(s));
}
proto::value array(std::vector<proto::value> e) {
  return proto::value(type::array, std::move(e));
}
reply ok(proto::value v) {
  return reply(std::move(v));
}
reply err(std::string message) {
  reply r;
  r.error_storage().code = proto::error::server_error;
  r.error_storage().message = std::move(message);
  return r;
}

// One instance of SENTINEL REPLICAS / SENTINELS: a RESP3 map, or a RESP2 flat array.
proto::value instance(const std::string& ip, const std::string& port, const std::string& flags,
                      const std::string& link = "", bool resp3 = true) {
  std::vector<proto::value> kv = {
      blob("name"), blob(ip + ":" + port), blob("ip"), blob(ip), blob("port"),
      blob(port),   blob("flags"),         blob(flags)};
  if (!link.empty()) {
    kv.push_back(blob("master-link-status"));
    kv.push_back(blob(link));
  }
  return proto::value(resp3 ? type::map : type::array, std::move(kv));
}

proto::value message(const std::string& channel, const std::string& payload) {
  return proto::value(type::push,
                      std::vector<proto::value>{blob("message"), blob(channel), blob(payload)});
}

}  // namespace

TEST_CASE("GET-MASTER-ADDR-BY-NAME: an address, an unknown name, and what is not an address",
          "[sentinel][machine]") {
  const auto a = read_primary_address(ok(array({blob("127.0.0.1"), blob("6380")})));
  CHECK(a.what == kind::address);
  CHECK(a.address == endpoint{"127.0.0.1", 6380});

  // RESP3 null and RESP2 null array alike: the sentinel does not know the name.
  CHECK(read_primary_address(ok(proto::value())).what == kind::unknown_name);
  CHECK(read_primary_address(err("ERR No such master with that name")).what == kind::unknown_name);

  struct row {
    const char* what;
    reply r;
  };
  const std::vector<row> bad = {
      {"another error", err("NOPERM this user has no permissions")},
      {"a port that is no number", ok(array({blob("127.0.0.1"), blob("63x")}))},
      {"port 0", ok(array({blob("127.0.0.1"), blob("0")}))},
      {"port too large", ok(array({blob("127.0.0.1"), blob("65536")}))},
      {"an empty host", ok(array({blob(""), blob("6379")}))},
      {"three elements", ok(array({blob("h"), blob("1"), blob("2")}))},
      {"a number instead of a list", ok(proto::value(type::number, "5"))},
      {"a nested list", ok(array({array({}), blob("6379")}))},
  };
  for (const auto& b : bad) {
    INFO(b.what);
    const auto r = read_primary_address(b.r);
    CHECK(r.what == kind::failed);
    CHECK(!r.detail.empty());
  }
}

TEST_CASE("SENTINEL REPLICAS and SENTINELS are read in RESP3 and RESP2", "[sentinel][machine]") {
  for (const bool resp3 : {true, false}) {
    INFO("RESP3: " << resp3);
    const auto list =
        array({instance("127.0.0.1", "7001", "slave", "ok", resp3),
               instance("127.0.0.1", "7002", "s_down,slave,disconnected", "err", resp3),
               // no port: skipped
               proto::value(type::map, std::vector<proto::value>{blob("ip"), blob("x")}),
               instance("::1", "7003", "sentinel", "", resp3)});
    const auto got = read_instances(list);
    REQUIRE(got.has_value());
    REQUIRE(got->size() == 3);
    CHECK((*got)[0].address == endpoint{"127.0.0.1", 7001});
    CHECK((*got)[0].healthy());
    CHECK((*got)[1].has_flag("s_down"));
    CHECK((*got)[1].has_flag("disconnected"));
    CHECK(!(*got)[1].has_flag("down"));  // whole flags, not substrings
    CHECK(!(*got)[1].healthy());
    CHECK((*got)[2].address == endpoint{"::1", 7003});
    CHECK((*got)[2].link_status.empty());
    CHECK((*got)[2].healthy());
  }
  CHECK(!read_instances(proto::value(type::number, "1")).has_value());
  CHECK(read_instances(array({}))->empty());
}

TEST_CASE("a replica is chosen among the healthy ones, in turn", "[sentinel][machine]") {
  const auto replicas = ok(array({
      instance("127.0.0.1", "7001", "slave", "ok"),
      instance("127.0.0.1", "7002", "slave,s_down", "ok"),
      instance("127.0.0.1", "7003", "slave,o_down", "ok"),
      instance("127.0.0.1", "7004", "slave,disconnected", "ok"),
      instance("127.0.0.1", "7005", "slave", "err"),  // not replicating: stale data
      instance("127.0.0.1", "7006", "slave", "ok"),
  }));
  // Six turns over the two healthy replicas: each three times, nothing else.
  std::multiset<std::uint16_t> chosen;
  for (std::size_t turn = 0; turn < 6; ++turn) {
    const auto a = choose_replica(replicas, turn);
    REQUIRE(a.what == kind::address);
    chosen.insert(a.address.port);
  }
  CHECK(chosen.count(7001) == 3);
  CHECK(chosen.count(7006) == 3);
  CHECK(chosen.size() == 6);

  const auto none = choose_replica(ok(array({instance("127.0.0.1", "7002", "slave,s_down")})), 0);
  CHECK(none.what == kind::no_replica);
  CHECK(none.detail.find("1 replicas") != std::string::npos);
  CHECK(choose_replica(ok(array({})), 0).what == kind::no_replica);
  CHECK(choose_replica(err("ERR No such master with that name"), 0).what == kind::unknown_name);
  CHECK(choose_replica(err("NOAUTH Authentication required."), 0).what == kind::failed);
  CHECK(choose_replica(ok(blob("nope")), 0).what == kind::failed);
}

TEST_CASE("+switch-master messages for our name, and nothing else", "[sentinel][machine]") {
  const auto sw = read_switch_master(
      message("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"), "mymaster");
  REQUIRE(sw.has_value());
  CHECK(sw->from == endpoint{"127.0.0.1", 6379});
  CHECK(sw->to == endpoint{"127.0.0.1", 6380});

  // pmessage (a pattern subscription) carries the channel third.
  const proto::value p(
      type::push, std::vector<proto::value>{blob("pmessage"), blob("*"), blob("+switch-master"),
                                            blob("mymaster 10.0.0.1 1 10.0.0.2 2")});
  CHECK(read_switch_master(p, "mymaster").has_value());

  struct row {
    const char* what;
    proto::value push;
  };
  const std::vector<row> others = {
      {"another primary", message("+switch-master", "other 127.0.0.1 6379 127.0.0.1 6380")},
      {"a name that starts alike", message("+switch-master", "mymaster2 h 1 h 2")},
      {"another channel", message("+sdown", "mymaster 127.0.0.1 6379 127.0.0.1 6380")},
      {"too few words", message("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1")},
      {"a bad port", message("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 70000")},
      {"a subscribe confirmation",
       proto::value(type::push, std::vector<proto::value>{blob("subscribe"), blob("+switch-master"),
                                                          proto::value(type::number, "1")})},
      {"not an aggregate", blob("message")},
  };
  for (const auto& o : others) {
    INFO(o.what);
    CHECK(!read_switch_master(o.push, "mymaster").has_value());
  }

  const proto::value confirm(type::push,
                             std::vector<proto::value>{blob("subscribe"), blob("+switch-master"),
                                                       proto::value(type::number, "1")});
  CHECK(is_subscribe_confirmation(confirm, "+switch-master"));
  CHECK(!is_subscribe_confirmation(confirm, "+sdown"));
  CHECK(!is_subscribe_confirmation(message("+switch-master", "x"), "+switch-master"));
}

TEST_CASE("sentinels are asked with the last one that answered first", "[sentinel][machine]") {
  const endpoint a{"127.0.0.1", 1}, b{"127.0.0.1", 2}, c{"127.0.0.1", 3}, d{"127.0.0.1", 4};
  sentinel_list l({a, b, a, c});  // duplicates dropped
  CHECK(l.order() == std::vector<endpoint>{a, b, c});
  l.answered(c);
  CHECK(l.order() == std::vector<endpoint>{c, a, b});
  l.answered(c);
  CHECK(l.order() == std::vector<endpoint>{c, a, b});
  CHECK(l.add(d));
  CHECK(!l.add(a));
  CHECK(l.order() == std::vector<endpoint>{c, a, b, d});
  l.answered(b);
  CHECK(l.order() == std::vector<endpoint>{b, c, a, d});
}

TEST_CASE("the verdict of a round without an address", "[sentinel][machine]") {
  const endpoint a{"127.0.0.1", 1}, b{"127.0.0.1", 2};
  sentinel_answer down;
  down.detail = "Connection refused";
  sentinel_answer unknown;
  unknown.what = kind::unknown_name;
  sentinel_answer no_replica;
  no_replica.what = kind::no_replica;

  resolve_round nobody;
  CHECK(nobody.verdict() == redcoro::error::no_sentinel_reachable);

  resolve_round all_down;
  all_down.record(a, down);
  all_down.record(b, down);
  CHECK(all_down.verdict() == redcoro::error::no_sentinel_reachable);
  CHECK(all_down.summary() == "127.0.0.1:1: Connection refused; 127.0.0.1:2: Connection refused");

  // One answered that it does not know the name, the other could not be asked.
  resolve_round unknown_name;
  unknown_name.record(a, down);
  unknown_name.record(b, unknown);
  CHECK(unknown_name.verdict() == redcoro::error::unknown_primary_name);
  CHECK(unknown_name.summary().find("does not know the name") != std::string::npos);

  // One knows the primary but no healthy replica: that is what to say.
  resolve_round replica;
  replica.record(a, unknown);
  replica.record(b, no_replica);
  CHECK(replica.verdict() == redcoro::error::no_healthy_replica);
}
