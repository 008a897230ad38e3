// The sans-I/O parts of the cluster layer: hashing, cluster_topology replies, redirects, and the
// router's plans (with the command table of a real server, captured).

#include "support/client_helpers.hpp"
#include "support/command_table_data.hpp"
#include <redcoro/cluster/detail/router.hpp>
#include <redcoro/cluster/topology.hpp>
#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/detached.hpp>

using namespace redcoro;
using namespace redcoro::detail;
using proto::crc16;
using proto::hash_tag;
using proto::key_slot;
using proto::type;
using proto::value;

namespace {

value str(std::string s) {
  return value(type::blob_string, std::move(s));
}
value num(std::int64_t n) {
  return value(type::number, std::to_string(n));
}
value arr(std::vector<value> e) {
  return value(type::array, std::move(e));
}
value map(std::vector<value> e) {
  return value(type::map, std::move(e));
}

value shard_node(std::string id, int port, std::string role, std::string health = "online",
                 std::int64_t offset = 100) {
  return map({str("id"), str(std::move(id)), str("port"), num(port), str("ip"), str("127.0.0.1"),
              str("endpoint"), str("127.0.0.1"), str("role"), str(std::move(role)),
              str("replication-offset"), num(offset), str("health"), str(std::move(health))});
}

// The reply to COMMAND of a real server, captured (test/data).
const proto::command_table& server_table() {
  return test::captured_command_table();
}

// Kept with the commands around it on one connection: planned, though sent whole.
bool opens_or_closes_transaction(std::string_view name) {
  for (std::string_view t : {"MULTI", "WATCH", "EXEC", "DISCARD", "UNWATCH"})
    if (proto::iequals(name, t)) return true;
  return false;
}

std::string commands_of(const proto::request& r) {
  std::string out;
  std::size_t pos = 0;
  const auto payload = r.payload();
  while (pos < payload.size()) {
    const auto c = proto::request::next_command(payload, pos);
    proto::request::for_each_arg(c, [&](std::string_view a) { out += std::string(a) + " "; });
    out += "| ";
  }
  return out;
}

}  // namespace

TEST_CASE("crc16 and hash slots are those of the cluster specification") {
  CHECK(crc16("123456789") == 0x31C3);
  CHECK(crc16("12345678") == 0x9015);  // one eight-byte step and no tail
  CHECK(key_slot("foo") == 12182);
  CHECK(key_slot("bar") == 5061);
  CHECK(key_slot("") == 0);
  // Hash tags: the first {...} that is not empty.
  CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
  CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
  CHECK(hash_tag("foo{}{bar}") == "foo{}{bar}");
  CHECK(hash_tag("foo{{bar}}zap") == "{bar");
  CHECK(hash_tag("foo{bar}{zap}") == "bar");
  CHECK(hash_tag("{") == "{");
  CHECK(hash_tag("no tag}") == "no tag}");
}

TEST_CASE("crc16 and key_slot agree with the bit-by-bit definition at every length and brace") {
  // The definition: polynomial 0x1021, initial value 0, most significant bit first.
  const auto reference = [](std::string_view data) {
    std::uint16_t crc = 0;
    for (unsigned char c : data) {
      crc = static_cast<std::uint16_t>(crc ^ (c << 8));
      for (int bit = 0; bit < 8; ++bit)
        crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
  };
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  int checked = 0;
  for (std::size_t size = 0; size <= 40; ++size) {
    std::string key(size, ' ');
    for (int round = 0; round < 8; ++round) {
      for (char& c : key) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        c = static_cast<char>(state >> 56);
      }
      // A '{' and a '}' at every position, one at a time and as a pair, and none.
      for (std::size_t open = 0; open <= size; ++open) {
        std::string k = key;
        for (char& c : k)
          if (c == '{' || c == '}') c = 'x';
        if (open < size) k[open] = '{';
        if (open + 3 < size) k[open + 3] = '}';
        REQUIRE(crc16(k) == reference(k));
        REQUIRE(key_slot(k) == reference(hash_tag(k)) % proto::slot_count);
        ++checked;
      }
    }
  }
  CHECK(checked == 8 * (41 * 42 / 2));
}

TEST_CASE("the cluster_topology is read from CLUSTER SHARDS") {
  const value reply = arr({
      map({str("slots"), arr({num(0), num(5460)}), str("nodes"),
           arr({shard_node("a", 7000, "master"), shard_node("d", 7003, "replica")})}),
      map({str("slots"), arr({num(5461), num(10922)}), str("nodes"),
           arr({shard_node("e", 7004, "replica", "loading", 0), shard_node("b", 7001, "master")})}),
      map({str("slots"), arr({num(10923), num(12000), num(12001), num(16383)}), str("nodes"),
           arr({shard_node("c", 7002, "master")})}),
      // An old primary that lost its slots: listed, serves nothing.
      map({str("slots"), arr({}), str("nodes"), arr({shard_node("x", 7009, "master", "failed")})}),
  });
  cluster_topology t;
  REQUIRE_FALSE(cluster_topology::from_shards(reply, t));
  REQUIRE(t.shards().size() == 3);
  CHECK(t.covers_all_slots());
  const auto primary_of = [&](int slot) {
    return t.nodes()[t.shards()[t.shard_of(static_cast<std::uint16_t>(slot))].primary].address.port;
  };
  CHECK(primary_of(0) == 7000);
  CHECK(primary_of(5460) == 7000);
  CHECK(primary_of(5461) == 7001);
  CHECK(primary_of(16383) == 7002);
  CHECK(t.shards()[1].replicas.size() == 1);
  CHECK_FALSE(t.nodes()[t.shards()[1].replicas[0]].healthy);  // loading
  CHECK(t.find({"127.0.0.1", 7009}) != nullptr);

  // MOVED to a replica that was just promoted.
  t.move_slot(100, {"127.0.0.1", 7003});
  CHECK(primary_of(100) == 7003);
  CHECK(primary_of(101) == 7000);
  // MOVED to a node never seen.
  t.move_slot(200, {"10.0.0.9", 7010});
  CHECK(primary_of(200) == 7010);

  // A lone node that never met another does not know its address: the one asked is used.
  value lone =
      map({str("id"), str("z"), str("port"), num(7100), str("ip"), str(""), str("endpoint"),
           str(""), str("role"), str("master"), str("health"), str("online")});
  cluster_topology single;
  REQUIRE_FALSE(cluster_topology::from_shards(
      arr({map({str("slots"), arr({num(0), num(16383)}), str("nodes"), arr({lone})})}), single,
      false, "10.0.0.5"));
  CHECK(single.nodes().at(0).address == node_address{"10.0.0.5", 7100});

  // Redis 7.0 calls a replica at offset 0 "loading" even when its primary is at 0 too (a
  // cluster nothing was written to): it is in sync. One behind its primary really loads.
  const value fresh = arr({
      map({str("slots"), arr({num(0), num(8000)}), str("nodes"),
           arr({shard_node("a", 7000, "master", "online", 0),
                shard_node("b", 7001, "replica", "loading", 0)})}),
      map({str("slots"), arr({num(8001), num(16383)}), str("nodes"),
           arr({shard_node("c", 7002, "master", "online", 500),
                shard_node("d", 7003, "replica", "loading", 0)})}),
  });
  cluster_topology f;
  REQUIRE_FALSE(cluster_topology::from_shards(fresh, f));
  CHECK(f.find({"127.0.0.1", 7001})->healthy);
  CHECK_FALSE(f.find({"127.0.0.1", 7003})->healthy);

  cluster_topology bad;
  CHECK(cluster_topology::from_shards(str("nope"), bad));
  CHECK(cluster_topology::from_shards(arr({map({str("slots"), arr({num(0)})})}), bad));
}

TEST_CASE("the cluster_topology is read from CLUSTER SLOTS") {
  const auto node = [](int port, std::string id) {
    return arr({str("127.0.0.1"), num(port), str(std::move(id))});
  };
  const value reply = arr({
      arr({num(0), num(100), node(7000, "a"), node(7003, "d")}),
      arr({num(101), num(16383), node(7001, "b")}),
      arr({num(50), num(60), node(7000, "a"), node(7003, "d")}),  // same primary again
  });
  cluster_topology t;
  REQUIRE_FALSE(cluster_topology::from_slots(reply, t));
  CHECK(t.shards().size() == 2);
  CHECK(t.nodes().size() == 3);
  CHECK(t.covers_all_slots());
  CHECK(t.shards()[0].replicas.size() == 1);
}

TEST_CASE("redirects are read from error replies") {
  auto r = redirect::parse("MOVED 3999 127.0.0.1:6381");
  REQUIRE(r);
  CHECK(r->what == redirect::kind::moved);
  CHECK(r->slot == 3999);
  CHECK(r->target == node_address{"127.0.0.1", 6381});
  r = redirect::parse("ASK 12 [::1]:7000");
  REQUIRE(r);
  CHECK(r->what == redirect::kind::ask);
  CHECK(r->target == node_address{"::1", 7000});
  CHECK(r->target.to_string() == "[::1]:7000");
  r = redirect::parse("MOVED 5 :7002", {"10.1.1.1", 7000});
  REQUIRE(r);
  CHECK(r->target == node_address{"10.1.1.1", 7002});
  CHECK(redirect::parse("TRYAGAIN Multiple keys request during rehashing of slot")->what ==
        redirect::kind::try_again);
  CHECK(redirect::parse("CLUSTERDOWN The cluster is down")->what == redirect::kind::cluster_down);
  CHECK_FALSE(redirect::parse("ERR unknown command"));
  CHECK_FALSE(redirect::parse("MOVEDX 1 a:1"));
  CHECK_FALSE(redirect::parse("MOVED 99999 a:1"));
  CHECK_FALSE(redirect::parse("MOVED 1 nohost"));
  CHECK_FALSE(redirect::parse("ASKING"));
}

TEST_CASE("the router finds one route for single-slot requests") {
  detail::router r(server_table());
  proto::request req;
  req.push("SET", "{u1}:name", "x");
  req.push("GET", "{u1}:mail");
  req.push("MGET", "{u1}:a", "{u1}:b");
  req.push("PING");
  auto route = r.single(req);
  REQUIRE(route);
  CHECK(route->slot == key_slot("u1"));
  CHECK_FALSE(route->readonly);

  proto::request reads;
  reads.push("GET", "a");
  reads.push("HGETALL", "a");
  route = r.single(reads);
  REQUIRE(route);
  CHECK(route->readonly);

  proto::request keyless;
  keyless.push("PING");
  route = r.single(keyless);
  REQUIRE(route);
  CHECK(route->slot == detail::any_slot);

  proto::request two;
  two.push("GET", "foo");
  two.push("GET", "bar");
  CHECK_FALSE(r.single(two));
  proto::request fan;
  fan.push("DBSIZE");
  CHECK_FALSE(r.single(fan));
  proto::request tx;
  tx.push("MULTI");
  tx.push("INCR", "a");
  tx.push("EXEC");
  CHECK_FALSE(r.single(tx));

  // A key prefix changes the slots.
  detail::router prefixed(server_table(), "app:");
  proto::request one;
  one.push("GET", "foo");
  CHECK(prefixed.single(one)->slot == key_slot("app:foo"));
}

TEST_CASE("the router splits multi-key commands by slot and refuses what cannot span slots") {
  detail::router r(server_table());
  proto::request req;
  req.push("MSET", "foo", "1", "bar", "2", "{foo}x", "3");  // foo and {foo}x share a slot
  req.push("MGET", "bar", "foo", "{foo}x");
  req.push("MSETNX", "foo", "1", "bar", "2");
  req.push("EVAL", "return 1", "2", "foo", "bar");
  req.push("DBSIZE");
  req.push("GET", "foo");
  const auto plan = r.make_plan(req);
  REQUIRE(plan.commands.size() == 6);
  CHECK(plan.commands[0].how == detail::merge::first);
  CHECK(plan.commands[1].how == detail::merge::by_key);
  CHECK(plan.commands[1].keys == 3);
  CHECK(plan.commands[2].error.starts_with("CROSSSLOT"));
  CHECK(plan.commands[3].error.starts_with("CROSSSLOT"));
  CHECK(plan.commands[4].how == detail::merge::sum);
  REQUIRE(plan.parts.size() == 6);
  CHECK(commands_of(plan.parts[0].req) == "MSET foo 1 {foo}x 3 | ");
  CHECK(plan.parts[0].slot == key_slot("foo"));
  CHECK(commands_of(plan.parts[1].req) == "MSET bar 2 | ");
  CHECK(commands_of(plan.parts[2].req) == "MGET bar | ");
  CHECK(plan.parts[2].keys == std::vector<std::size_t>{0});
  CHECK(plan.parts[2].readonly);
  CHECK(commands_of(plan.parts[3].req) == "MGET foo {foo}x | ");
  CHECK(plan.parts[3].keys == std::vector<std::size_t>{1, 2});
  CHECK(plan.parts[4].every_primary);
  CHECK(plan.parts[5].first == 5);

  proto::request tx;
  tx.push("MULTI");
  tx.push("SET", "foo", "1");
  tx.push("SET", "bar", "1");
  tx.push("EXEC");
  const auto refused = r.make_plan(tx);
  CHECK(refused.parts.empty());
  for (const auto& c : refused.commands)
    CHECK(c.error.starts_with("CROSSSLOT"));

  proto::request tagged;
  tagged.push("MULTI");
  tagged.push("SET", "{t}1", "1");
  tagged.push("SET", "{t}2", "1");
  tagged.push("EXEC");
  const auto whole = r.make_plan(tagged);
  REQUIRE(whole.parts.size() == 1);
  CHECK(whole.parts[0].req.commands() == 4);
  CHECK(whole.parts[0].slot == key_slot("t"));
}

TEST_CASE("the router's reading of a request's record agrees with its reading of the arguments") {
  // For every command the server lists, in argument shapes with no key, one key and several
  // keys (and each subcommand's): where single() finds one route, the plan, which reads
  // every command argument by argument, sends it whole to the same slot.
  for (const std::string prefix : {"", "app:"}) {
    detail::router r(server_table(), prefix);
    std::size_t routed = 0, planned = 0;
    for (const value& entry : test::captured_command_reply().elements) {
      std::vector<std::vector<std::string>> shapes;
      const std::string name = entry[0].text;
      for (const std::vector<std::string>& tail : std::vector<std::vector<std::string>>{
               {}, {"k1"}, {"k1", "v1"}, {"k1", "k2", "k3"}, {"{t}a", "1", "{t}b", "2"}})
        shapes.push_back(tail);
      if (entry.size() > 9)
        for (const value& sub : entry[9].elements) {
          const std::string full = sub[0].text;
          const std::string sub_name = full.substr(full.find('|') + 1);
          shapes.push_back({sub_name});
          shapes.push_back({sub_name, "k1"});
          shapes.push_back({sub_name, "k1", "k2"});
        }
      for (const auto& tail : shapes) {
        proto::request req;
        req.push_range(name, tail);
        INFO(prefix << " | " << commands_of(req));
        const auto route = r.single(req);
        const auto plan = r.make_plan(req);
        REQUIRE(plan.commands.size() == 1);
        if (!route) {
          ++planned;
          // Split, sent to every primary, refused, or a transaction: never one plain part.
          const bool plain = plan.parts.size() == 1 && !plan.parts[0].every_primary &&
                             plan.commands[0].how == detail::merge::none &&
                             plan.commands[0].error.empty() && !opens_or_closes_transaction(name);
          CHECK_FALSE(plain);
          continue;
        }
        ++routed;
        REQUIRE(plan.parts.size() == 1);
        CHECK(plan.commands[0].error.empty());
        CHECK(plan.parts[0].slot == route->slot);
        CHECK(plan.parts[0].readonly == route->readonly);
      }
    }
    CHECK(routed > 1000);  // most shapes take the one-route path
    CHECK(planned > 0);
  }
}
