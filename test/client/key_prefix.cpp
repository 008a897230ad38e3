#include "support/client_helpers.hpp"
#include "support/command_table_data.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/proto/command_table.hpp>

#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::redis_server;
using redcoro::test::run;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;
using strings = std::vector<std::string>;
using redcoro::proto::value;

namespace {

strings sorted(strings v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("key prefix: keys in every position, from the server's key specifications",
          "[client][live][prefix]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "app1:";
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));  // sees the real key names
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);

    co_await run(conn, cmd::set("k", "v"));
    const auto plain = co_await run(raw, cmd::get("app1:k"));
    CHECK(plain == "v");  // the key got the prefix, the value did not
    const auto back = co_await run(conn, cmd::get("k"));
    CHECK(back == "v");

    // Every other argument a key (MSET: step 2).
    co_await run(conn, redcoro::command<std::string>("MSET", "a", "1", "b", "2"));
    const strings full_ab{"app1:a", "app1:b"};
    const auto ab = co_await run(raw, cmd::mget(full_ab));
    CHECK(ab == std::vector<std::optional<std::string>>{"1", "2"});

    // A keyword, then half of the rest (XREAD ... STREAMS k1 k2 id1 id2).
    co_await run(conn, redcoro::command<std::string>("XADD", "s1", "1-1", "f", "v"));
    co_await run(conn, redcoro::command<std::string>("XADD", "s2", "1-1", "f", "v"));
    const auto streams = co_await run(conn, redcoro::command<std::optional<redcoro::stream_batch>>(
                                                "XREAD", "STREAMS", "s1", "s2", "0", "0"));
    REQUIRE(streams.has_value());
    CHECK(streams->size() == 2);
    CHECK((*streams)[0].first == "s1");  // the names as they were sent (strip_key_prefix)

    // A count of keys, then the keys (ZUNIONSTORE dest 2 z1 z2 WEIGHTS 1 2), a key first.
    co_await run(conn, cmd::zadd("z1", 1, "m"));
    co_await run(conn, cmd::zadd("z2", 2, "m"));
    const auto stored = co_await run(
        conn,
        redcoro::command<std::int64_t>("ZUNIONSTORE", "dest", 2, "z1", "z2", "WEIGHTS", 1, 2));
    CHECK(stored == 1);
    const auto dest_score = co_await run(raw, cmd::zscore("app1:dest", "m"));
    CHECK(dest_score == 5);

    // Two keys side by side (LMOVE src dst LEFT RIGHT).
    co_await run(conn, cmd::rpush("src", "x"));
    co_await run(conn, redcoro::command<std::string>("LMOVE", "src", "dst", "LEFT", "RIGHT"));
    const auto moved = co_await run(raw, cmd::lrange("app1:dst", 0, -1));
    CHECK(moved == strings{"x"});

    // Subcommands have their own key specifications (XGROUP CREATE key group, OBJECT
    // ENCODING key).
    co_await run(conn, cmd::xgroup_create("jobs", "workers", "$", true));
    const auto jobs_type = co_await run(raw, cmd::type("app1:jobs"));
    CHECK(jobs_type == "stream");
    const auto encoding =
        co_await run(conn, redcoro::command<std::string>("OBJECT", "ENCODING", "k"));
    CHECK_FALSE(encoding.empty());

    // Lua: KEYS get the prefix, ARGV do not.
    const auto lua = co_await run(
        conn,
        redcoro::command<std::string>("EVAL", "return KEYS[1] .. '|' .. ARGV[1]", 1, "key", "arg"));
    CHECK(lua == "app1:key|arg");

    // Patterns: KEYS and SCAN MATCH only see this prefix's keys.
    co_await run(raw, cmd::set("other:k", "x"));
    const auto mine = co_await run(conn, cmd::keys("*"));
    CHECK(mine.size() > 5);
    CHECK(std::find(mine.begin(), mine.end(), "k") != mine.end());
    CHECK(std::find(mine.begin(), mine.end(), "other:k") == mine.end());
    cmd::scan_options match_k;
    match_k.match = "k*";
    match_k.count = 1000;
    const auto page = co_await run(conn, cmd::scan(0, match_k));
    CHECK(page.second == strings{"k"});

    // Shard channels are placed like keys but flagged not_key: SPUBLISH keeps the channel's
    // name, as PUBLISH does, so a subscriber without the prefix receives it.
    redcoro::proto::request subscribe;
    subscribe.push("SSUBSCRIBE", "orders");
    redcoro::proto::generic_response confirmed;
    co_await raw.async_exec(subscribe, confirmed, use_awaitable);  // once confirmed
    const auto receivers = co_await run(conn, cmd::spublish("orders", "x"));
    CHECK(receivers == 1);
    conn.close();
    raw.close();
  });
}

TEST_CASE("key prefix: glob characters in the prefix match only themselves in patterns",
          "[client][live][prefix]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "t[1]*:";
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    co_await run(conn, cmd::set("mine", "1"));
    co_await run(raw, cmd::set("t1x:decoy", "1"));  // matches the prefix read as a glob
    const auto keys = co_await run(conn, cmd::keys("*"));
    CHECK(sorted(keys) == strings{"mine"});
    conn.close();
    raw.close();
  });
}

namespace {

// The first element of a reply that names its key first (BZPOPMIN, BLMPOP, ZMPOP...).
awaitable<std::string> first_of(connection& conn, redcoro::command<value> c) {
  const auto v = co_await run(conn, std::move(c));
  co_return v.size() > 0 ? v[0].text : std::string("(not an aggregate)");
}

// The replies that name keys, through a connection with the prefix "app1:".
awaitable<void> check_key_replies(connection& conn, connection& raw, bool stripped) {
  const std::string p = stripped ? "" : "app1:";
  co_await run(conn, cmd::set("k1", "1"));
  co_await run(conn, cmd::set("k2", "2"));
  co_await run(conn, cmd::set("app1:inner", "3"));  // app1:app1:inner: stripped once
  co_await run(raw, cmd::set("other:x", "4"));

  const auto all = co_await run(conn, cmd::keys("*"));
  strings want_all;
  want_all.push_back(p + "app1:inner");
  want_all.push_back(p + "k1");
  want_all.push_back(p + "k2");
  CHECK(sorted(all) == want_all);
  strings want_k;  // k1, k2
  want_k.push_back(p + "k1");
  want_k.push_back(p + "k2");

  cmd::scan_options match_k;
  match_k.match = "k*";
  match_k.count = 1000;
  const auto page = co_await run(conn, cmd::scan(0, match_k));
  CHECK(page.first == 0);
  CHECK(sorted(page.second) == want_k);

  co_await run(conn, cmd::rpush("l1", "a"));
  co_await run(conn, cmd::rpush("l2", "b"));
  strings lists;
  lists.push_back("nothing");
  lists.push_back("l1");
  const auto left = co_await run(conn, cmd::blpop(lists, std::chrono::seconds(1)));
  REQUIRE(left.has_value());
  CHECK(left->first == p + "l1");
  CHECK(left->second == "a");
  const auto right = co_await run(conn, cmd::brpop("l2", std::chrono::seconds(1)));
  REQUIRE(right.has_value());
  CHECK(right->first == p + "l2");

  co_await run(conn, cmd::zadd("z", 1, "m1"));
  co_await run(conn, cmd::zadd("z", 2, "m2"));
  co_await run(conn, cmd::zadd("z", 3, "m3"));
  co_await run(conn, cmd::zadd("z", 4, "m4"));
  const auto zmin = co_await first_of(conn, redcoro::command("BZPOPMIN", "z", 1));
  CHECK(zmin == p + "z");
  const auto zmax = co_await first_of(conn, redcoro::command("BZPOPMAX", "z", 1));
  CHECK(zmax == p + "z");
  const auto zm = co_await first_of(conn, redcoro::command("ZMPOP", 1, "z", "MIN"));
  CHECK(zm == p + "z");
  const auto bzm = co_await first_of(conn, redcoro::command("BZMPOP", 1, 1, "z", "MAX"));
  CHECK(bzm == p + "z");
  co_await run(conn, cmd::rpush("l3", "c"));
  co_await run(conn, cmd::rpush("l3", "d"));
  const auto lm = co_await first_of(conn, redcoro::command("LMPOP", 2, "none", "l3", "LEFT"));
  CHECK(lm == p + "l3");
  const auto blm = co_await first_of(conn, redcoro::command("BLMPOP", 1, 1, "l3", "RIGHT"));
  CHECK(blm == p + "l3");

  co_await run(conn, redcoro::command<std::string>("XADD", "s1", "1-1", "f", "v"));
  co_await run(conn, redcoro::command<std::string>("XADD", "s2", "1-1", "f", "v"));
  const auto read = co_await run(conn, redcoro::command<std::optional<redcoro::stream_batch>>(
                                           "XREAD", "STREAMS", "s1", "s2", "0", "0"));
  REQUIRE(read.has_value());
  REQUIRE(read->size() == 2);
  CHECK((*read)[0].first == p + "s1");
  CHECK((*read)[1].first == p + "s2");
  CHECK((*read)[0].second.size() == 1);
  co_await run(conn, cmd::xgroup_create("s1", "g", "0", false));
  std::vector<std::pair<std::string, std::string>> s1;
  s1.emplace_back("s1", ">");
  const auto group = co_await run(conn, cmd::xreadgroup("g", "c", s1));
  REQUIRE(group.has_value());
  REQUIRE(group->size() == 1);
  CHECK((*group)[0].first == p + "s1");

  // One request, several commands: only those whose replies name keys are touched, each at
  // its own place.
  redcoro::proto::request req;
  req.push("GET", "k1");
  req.push("KEYS", "k*");
  req.push("ECHO", "app1:echoed");
  req.push("SCAN", 0, "MATCH", "k1");
  redcoro::proto::response<std::string, strings, std::string, redcoro::cmd::scan_page> resp;
  co_await conn.async_exec(req, resp, use_awaitable);
  CHECK(std::get<0>(resp).value() == "1");
  CHECK(sorted(std::get<1>(resp).value()) == want_k);
  CHECK(std::get<2>(resp).value() == "app1:echoed");  // not a key: never stripped
  REQUIRE(std::get<3>(resp).value().second.size() == 1);
  CHECK(std::get<3>(resp).value().second[0] == p + "k1");

  // The bug of issue 16: names read back and sent again name the same keys.
  const auto found = co_await run(conn, cmd::scan(0, match_k));
  const auto deleted = co_await run(conn, cmd::del(found.second));
  if (stripped) {
    CHECK(deleted == 2);
    strings full;
    full.push_back("app1:k1");
    full.push_back("app1:k2");
    const auto left_over = co_await run(raw, cmd::exists(full));
    CHECK(left_over == 0);
  } else {
    CHECK(deleted == 0);  // app1:app1:k1 does not exist
  }
}

}  // namespace

TEST_CASE("key prefix: replies that name keys come back without it", "[client][live][prefix]") {
  const int protocol = GENERATE(3, 2);
  CAPTURE(protocol);
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "app1:";
  cfg.protocol = protocol;
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    co_await check_key_replies(conn, raw, true);
    conn.close();
    raw.close();
  });
}

TEST_CASE("key prefix: strip_key_prefix off gives the names as the server holds them",
          "[client][live][prefix]") {
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "app1:";
  cfg.strip_key_prefix = false;
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    co_await check_key_replies(conn, raw, false);
    conn.close();
    raw.close();
  });
}

namespace {

// The next message (or pmessage) push of `conn`: {channel, payload}.
awaitable<std::pair<std::string, std::string>> next_message(connection& conn) {
  for (;;) {
    const auto push = co_await conn.async_receive_push(use_awaitable);
    if (push.size() < 3) continue;
    const std::string& kind = push[0].text;
    if (kind == "message") co_return std::pair{push[1].text, push[2].text};
    if (kind == "pmessage" && push.size() >= 4) co_return std::pair{push[2].text, push[3].text};
  }
}

}  // namespace

TEST_CASE("key prefix: keyspace notifications name keys without it", "[client][live][prefix]") {
  const bool strip = GENERATE(true, false);
  CAPTURE(strip);
  redis_server server;
  asio::io_context ioc;
  auto cfg = local_config(server.port());
  cfg.key_prefix = "app1:";
  cfg.strip_key_prefix = strip;
  connection conn(ioc, cfg);
  connection raw(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    raw.async_run(asio::detached);
    co_await run(raw,
                 redcoro::command<std::string>("CONFIG", "SET", "notify-keyspace-events", "KEA"));
    // Channels never get the prefix: the subscriptions name the server's key names.
    redcoro::proto::request sub;
    sub.push("SUBSCRIBE", "__keyspace@0__:app1:k");
    sub.push("PSUBSCRIBE", "__keyevent@0__:set");
    redcoro::proto::ignore_t ignored;
    co_await conn.async_exec(sub, ignored, use_awaitable);
    co_await run(conn, cmd::set("k", "v"));
    co_await run(raw, cmd::set("other:x", "v"));  // not under the prefix: left as it is
    std::vector<std::pair<std::string, std::string>> got;
    for (int i = 0; i < 3; ++i) {
      auto m = co_await next_message(conn);
      got.push_back(std::move(m));
    }
    std::sort(got.begin(), got.end());
    const std::string p = strip ? "" : "app1:";
    std::vector<std::pair<std::string, std::string>> want;
    want.emplace_back("__keyspace@0__:" + p + "k", "set");
    want.emplace_back("__keyevent@0__:set", p + "k");
    want.emplace_back("__keyevent@0__:set", "other:x");
    std::sort(want.begin(), want.end());
    CHECK(got == want);
    conn.close();
    raw.close();
  });
}

TEST_CASE("key positions from the first, last and step of servers before 7.0",
          "[client][key_prefix]") {
  using redcoro::proto::type;
  using redcoro::proto::value;
  const auto num = [](int n) { return value(type::number, std::to_string(n)); };
  const auto str = [](std::string s) { return value(type::blob_string, std::move(s)); };
  // Redis 6 entries: [name, arity, flags, first, last, step, acl categories].
  const auto entry = [&](std::string name, int first, int last, int step) {
    return value(type::array,
                 std::vector<value>{str(std::move(name)), num(-2),
                                    value(type::array, std::vector<value>{}), num(first), num(last),
                                    num(step), value(type::array, std::vector<value>{})});
  };
  const value reply(type::array,
                    std::vector<value>{entry("get", 1, 1, 1), entry("mset", 1, -1, 2),
                                       entry("del", 1, -1, 1), entry("ping", 0, 0, 0)});
  redcoro::proto::command_table table;
  REQUIRE_FALSE(table.load(reply));
  std::vector<std::size_t> keys;
  const std::vector<std::string_view> get = {"GET", "k"};
  table.keys(get, keys);
  CHECK(keys == std::vector<std::size_t>{1});
  const std::vector<std::string_view> mset = {"MSET", "a", "1", "b", "2"};
  table.keys(mset, keys);
  CHECK(keys == std::vector<std::size_t>{1, 3});
  const std::vector<std::string_view> del = {"DEL", "a", "b", "c"};
  table.keys(del, keys);
  CHECK(keys == std::vector<std::size_t>{1, 2, 3});
  const std::vector<std::string_view> ping = {"PING"};
  table.keys(ping, keys);
  CHECK(keys.empty());
}

TEST_CASE("a request is prefixed from its record as from its arguments", "[client][key_prefix]") {
  // Every command the server lists (captured: test/data), in shapes with no key, one key,
  // several and each subcommand's: rewriting the request, which takes a first-argument key
  // from its record, gives the same bytes and key replies as rewriting its serialized form
  // argument by argument.
  redcoro::detail::key_prefixer prefixer("app:");
  REQUIRE_FALSE(prefixer.load(redcoro::test::captured_command_reply()));
  std::size_t changed = 0;
  for (const value& entry : redcoro::test::captured_command_reply().elements) {
    const std::string name = entry[0].text;
    std::vector<strings> shapes{
        {}, {"k1"}, {"k1", "v1"}, {"k1", "k2", "k3"}, {"0", "MATCH", "user:*"}};
    if (entry.size() > 9)
      for (const value& sub : entry[9].elements) {
        const std::string full = sub[0].text;
        const std::string sub_name = full.substr(full.find('|') + 1);
        shapes.push_back({sub_name, "k1"});
        shapes.push_back({sub_name, "k1", "k2"});
      }
    redcoro::proto::request req;
    for (const strings& tail : shapes)
      req.push_range(name, tail);
    std::string from_record, from_bytes;
    std::vector<redcoro::detail::key_reply_at> replies_record, replies_bytes;
    prefixer.rewrite(req, from_record, &replies_record);
    prefixer.rewrite(req.payload(), from_bytes, &replies_bytes);
    INFO(name);
    CHECK(from_record == from_bytes);
    REQUIRE(replies_record.size() == replies_bytes.size());
    for (std::size_t i = 0; i < replies_record.size(); ++i) {
      CHECK(replies_record[i].command == replies_bytes[i].command);
      CHECK(replies_record[i].shape == replies_bytes[i].shape);
    }
    if (from_record != req.payload()) ++changed;
  }
  CHECK(changed > 100);  // most commands name keys
}
