#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/proto/command_table.hpp>

#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
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
    CHECK((*streams)[0].first == "app1:s1");  // replies keep the full names

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
    CHECK(std::all_of(mine.begin(), mine.end(),
                      [](const std::string& k) { return k.rfind("app1:", 0) == 0; }));
    cmd::scan_options match_k;
    match_k.match = "k*";
    match_k.count = 1000;
    const auto page = co_await run(conn, cmd::scan(0, match_k));
    CHECK(page.second == strings{"app1:k"});

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
    CHECK(sorted(keys) == strings{"t[1]*:mine"});
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
