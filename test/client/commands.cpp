// The request path, command by command. Compiled twice (see support/request_path.hpp): into
// test_client on a connection, and into test_paths through a handle over a single server, a
// pooled client, a cluster and a Sentinel-managed primary.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include "support/request_path.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::test::local_config;
using redcoro::test::on_every_path;
using redcoro::test::one_node;
using redcoro::test::path_target;
using redcoro::test::redis_server;
using redcoro::test::run;
using redcoro::test::run_bounded;
namespace asio = boost::asio;
namespace proto = redcoro::proto;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

#ifdef REDCORO_TEST_THROUGH_HANDLE
#define PATH_TEST(name) TEST_CASE("through the handle: " name, "[paths]")
#else
#define PATH_TEST(name) TEST_CASE(name, "[client][live][commands]")
#endif

PATH_TEST("raw requests, typed replies and server errors as data") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    proto::request req;
    req.push("SET", "greeting", "hello");
    req.push("GET", "greeting");
    req.push("INCRBY", "n", 41);
    req.push("GET", "missing");
    req.push("LPUSH", "greeting", "x");  // WRONGTYPE
    req.push("HSET", "h", std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}});
    req.push("HGETALL", "h");
    proto::response<std::string, std::string, std::int64_t, std::optional<std::string>,
                    std::int64_t, std::int64_t, std::map<std::string, std::string>>
        resp;
    co_await conn.async_exec(req, resp, use_awaitable);
    CHECK(std::get<0>(resp).value() == "OK");
    CHECK(std::get<1>(resp).value() == "hello");
    CHECK(std::get<2>(resp).value() == 41);
    CHECK_FALSE(std::get<3>(resp).value().has_value());
    REQUIRE(std::get<4>(resp).has_error());
    CHECK(std::get<4>(resp).error().server_code() == "WRONGTYPE");
    CHECK(std::get<5>(resp).value() == 2);
    CHECK(std::get<6>(resp).value() == std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}});

    // Fine after an error reply.
    auto v = co_await conn.async_exec(redcoro::command("HINCRBY", "h", "a", 5), use_awaitable);
    CHECK(v.value().to_integer() == 6);
    auto err = co_await conn.async_exec(redcoro::command("NOSUCHCOMMAND"), use_awaitable);
    REQUIRE(err.has_error());
    CHECK(err.error().message.find("unknown command") != std::string::npos);
    // A command that names its reply type.
    auto n = co_await conn.async_exec(redcoro::command<std::int64_t>("INCR", "n"), use_awaitable);
    CHECK(n.value() == 42);
#ifndef REDCORO_TEST_THROUGH_HANDLE
    CHECK(conn.protocol() == 3);
#endif
  });
}

PATH_TEST("many coroutines share the path and each gets its own replies") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    constexpr int coroutines = 500, commands = 50;
    int finished = 0, mismatches = 0;
    auto worker = [&](int id) -> awaitable<void> {
      const std::string key = "key:" + std::to_string(id);
      proto::request set;
      set.push("SET", key, id);
      proto::response<proto::ignore_t> ignored;
      co_await conn.async_exec(set, ignored, use_awaitable);
      proto::request get;
      get.push("GET", key);
      proto::response<int> resp;  // reused: the zero-allocation path
      for (int i = 0; i < commands; ++i) {
        co_await conn.async_exec(get, resp, use_awaitable);
        if (std::get<0>(resp).value() != id) ++mismatches;
      }
      ++finished;
    };
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < coroutines; ++i)
      asio::co_spawn(ex, worker(i), asio::detached);
    for (int waited = 0; finished < coroutines && waited < 3000; ++waited)
      co_await redcoro::test::sleep_for(10ms);
    CHECK(finished == coroutines);
    CHECK(mismatches == 0);
  });
}

PATH_TEST("string and key helpers") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    cmd::set_options only_new, px;
    only_new.condition = cmd::set_if::absent;
    px.ttl = 60s;
    cmd::scan_options pattern;
    pattern.match = "scan:*";
    pattern.count = 7;
    const auto set = co_await run(conn, cmd::set("s", "v1"));
    CHECK(set == "OK");
    const auto got = co_await run(conn, cmd::get("s"));
    CHECK(got == "v1");
    const auto missing = co_await run(conn, cmd::get("nope"));
    CHECK_FALSE(missing.has_value());
    const auto nx = co_await run(conn, cmd::set("s", "v2", only_new));
    CHECK_FALSE(nx.has_value());  // NX on an existing key does nothing
    const auto with_ttl = co_await run(conn, cmd::set("t", 42, px));
    CHECK(with_ttl.has_value());
    const auto pttl = co_await run(conn, cmd::pttl("t"));
    CHECK(pttl > 50'000);
    CHECK(pttl <= 60'000);
    const auto persisted = co_await run(conn, cmd::persist("t"));
    CHECK(persisted);
    const auto ttl = co_await run(conn, cmd::ttl("t"));
    CHECK(ttl == -1);
    const auto expired_set = co_await run(conn, cmd::expire("t", 30s));
    CHECK(expired_set);

    const auto n = co_await run(conn, cmd::incr("n"));
    CHECK(n == 1);
    const auto n2 = co_await run(conn, cmd::incrby("n", 9));
    CHECK(n2 == 10);
    const auto n3 = co_await run(conn, cmd::decrby("n", 3));
    CHECK(n3 == 7);
    const auto f = co_await run(conn, cmd::incrbyfloat("f", 1.5));
    CHECK(f == 1.5);
    const auto len = co_await run(conn, cmd::append("s", "+"));
    CHECK(len == 3);
    const auto slen = co_await run(conn, cmd::strlen("s"));
    CHECK(slen == 3);

    // (Braced lists stay out of co_await expressions: GCC 12 rejects them there.)
    const std::map<std::string, std::string> ab{{"a", "1"}, {"b", "2"}};
    const std::vector<std::string> a_zz_b{"a", "zz", "b"}, b_zz{"b", "zz"};
    co_await run(conn, cmd::mset(ab));
    const auto many = co_await run(conn, cmd::mget(a_zz_b));
    CHECK(many == std::vector<std::optional<std::string>>{"1", std::nullopt, "2"});
    const auto exists = co_await run(conn, cmd::exists(a_zz_b));
    CHECK(exists == 2);
    const auto type = co_await run(conn, cmd::type("a"));
    CHECK(type == "string");
    co_await run(conn, cmd::rename("a", "a2"));
    const auto keys = co_await run(conn, cmd::keys("a*"));
    CHECK(keys == std::vector<std::string>{"a2"});
    const auto getdel = co_await run(conn, cmd::getdel("a2"));
    CHECK(getdel == "1");
    const auto deleted = co_await run(conn, cmd::del(b_zz));
    CHECK(deleted == 1);
    const auto unlinked = co_await run(conn, cmd::unlink("s"));
    CHECK(unlinked == 1);

    // SCAN walks every key once, whatever the page size.
    for (int i = 0; i < 50; ++i)
      co_await run(conn, cmd::set("scan:" + std::to_string(i), i));
    std::set<std::string> seen;
    if (one_node()) {
      std::uint64_t cursor = 0;
      int pages = 0;
      do {
        auto page = co_await run(conn, cmd::scan(cursor, pattern));
        cursor = page.first;
        seen.insert(page.second.begin(), page.second.end());
      } while (cursor != 0 && ++pages < 1000);
    } else {
#ifdef REDCORO_TEST_THROUGH_HANDLE
      // One node's cursor would look like the whole keyspace: refused, with what to use.
      auto refused = co_await conn.async_exec(cmd::scan(0, pattern), use_awaitable);
      REQUIRE(refused.has_error());
      CHECK(refused.error().message.find("async_scan") != std::string::npos);
      redcoro::scan_cursor scan(pattern);
      for (int pages = 0; !scan.done() && pages < 1000; ++pages) {
        auto page = co_await conn.async_scan(scan, use_awaitable);
        seen.insert(page.begin(), page.end());
      }
#endif
    }
    CHECK(seen.size() == 50);
    CHECK(seen.count("scan:7") == 1);  // as the caller names it, without a prefix
  });
}

PATH_TEST("hash, list and set helpers") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const std::map<std::string, std::string> user{{"name", "ada"}, {"lang", "c++"}};
    const std::vector<std::string> lang_x{"lang", "x"}, abc{"a", "b", "c"}, xy{"x", "y"},
        yz{"y", "z"}, s1_s2{"s1", "s2"};
    const auto added = co_await run(conn, cmd::hset("u", user));
    CHECK(added == 2);
    co_await run(conn, cmd::hset("u", "logins", 0));
    const auto all = co_await run(conn, cmd::hgetall("u"));
    CHECK(all == cmd::string_map{{"name", "ada"}, {"lang", "c++"}, {"logins", "0"}});
    const auto logins = co_await run(conn, cmd::hincrby("u", "logins", 1));
    CHECK(logins == 1);
    const auto score = co_await run(conn, cmd::hincrbyfloat("u", "score", 0.25));
    CHECK(score == 0.25);
    const auto name = co_await run(conn, cmd::hget("u", "name"));
    CHECK(name == "ada");
    const auto some = co_await run(conn, cmd::hmget("u", lang_x));
    CHECK(some == std::vector<std::optional<std::string>>{"c++", std::nullopt});
    const auto has = co_await run(conn, cmd::hexists("u", "lang"));
    CHECK(has);
    const auto hdel = co_await run(conn, cmd::hdel("u", "lang"));
    CHECK(hdel == 1);
    const auto hlen = co_await run(conn, cmd::hlen("u"));
    CHECK(hlen == 3);
    const auto hkeys = co_await run(conn, cmd::hkeys("u"));
    CHECK(hkeys.size() == 3);
    const auto hvals = co_await run(conn, cmd::hvals("u"));
    CHECK(hvals.size() == 3);

    const auto pushed = co_await run(conn, cmd::rpush("l", abc));
    CHECK(pushed == 3);
    co_await run(conn, cmd::lpush("l", "z"));
    const auto range = co_await run(conn, cmd::lrange("l", 0, -1));
    CHECK(range == std::vector<std::string>{"z", "a", "b", "c"});
    const auto first = co_await run(conn, cmd::lpop("l"));
    CHECK(first == "z");
    const auto last = co_await run(conn, cmd::rpop("l"));
    CHECK(last == "c");
    const auto at = co_await run(conn, cmd::lindex("l", 1));
    CHECK(at == "b");
    const auto llen = co_await run(conn, cmd::llen("l"));
    CHECK(llen == 2);
    const auto removed = co_await run(conn, cmd::lrem("l", 0, "a"));
    CHECK(removed == 1);
    co_await run(conn, cmd::ltrim("l", 0, 0));
    const auto popped = co_await run(conn, cmd::blpop("l", 100ms));
    CHECK(popped == std::pair<std::string, std::string>{"l", "b"});
    const auto timed_out = co_await run(conn, cmd::brpop("l", 100ms));
    CHECK_FALSE(timed_out.has_value());

    const auto sadd = co_await run(conn, cmd::sadd("s1", xy));
    CHECK(sadd == 2);
    co_await run(conn, cmd::sadd("s2", yz));
    const auto members = co_await run(conn, cmd::smembers("s1"));
    CHECK(members == std::unordered_set<std::string>{"x", "y"});
    const auto is = co_await run(conn, cmd::sismember("s1", "x"));
    CHECK(is);
    const auto inter = co_await run(conn, cmd::sinter(s1_s2));
    CHECK(inter == std::unordered_set<std::string>{"y"});
    const auto uni = co_await run(conn, cmd::sunion(s1_s2));
    CHECK(uni.size() == 3);
    const auto srem = co_await run(conn, cmd::srem("s1", "x"));
    CHECK(srem == 1);
    const auto scard = co_await run(conn, cmd::scard("s1"));
    CHECK(scard == 1);
  });
}

PATH_TEST("sorted set helpers: a leaderboard") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const std::vector<std::pair<double, std::string>> players{
        {10, "ann"}, {30, "bob"}, {20, "cid"}};
    co_await run(conn, cmd::zadd("board", players));
    const auto added = co_await run(conn, cmd::zadd("board", 5, "dan"));
    CHECK(added == 1);
    const auto bob = co_await run(conn, cmd::zincrby("board", 15, "bob"));
    CHECK(bob == 45);
    const auto top = co_await run(conn, cmd::zrevrange_withscores("board", 0, 1));
    CHECK(top == cmd::scored{{"bob", 45}, {"cid", 20}});
    const auto bottom = co_await run(conn, cmd::zrange_withscores("board", 0, 0));
    CHECK(bottom == cmd::scored{{"dan", 5}});
    const auto names = co_await run(conn, cmd::zrevrange("board", 0, -1));
    CHECK(names == std::vector<std::string>{"bob", "cid", "ann", "dan"});
    const auto asc = co_await run(conn, cmd::zrange("board", 0, 0));
    CHECK(asc == std::vector<std::string>{"dan"});
    const auto rank = co_await run(conn, cmd::zrevrank("board", "cid"));
    CHECK(rank == 1);
    const auto no_rank = co_await run(conn, cmd::zrank("board", "nobody"));
    CHECK_FALSE(no_rank.has_value());
    const auto score = co_await run(conn, cmd::zscore("board", "ann"));
    CHECK(score == 10);
    const auto by_score = co_await run(conn, cmd::zrangebyscore("board", "(5", "20"));
    CHECK(by_score == std::vector<std::string>{"ann", "cid"});
    const auto count = co_await run(conn, cmd::zcount("board", "-inf", "+inf"));
    CHECK(count == 4);
    const auto trimmed = co_await run(conn, cmd::zremrangebyscore("board", "-inf", "(10"));
    CHECK(trimmed == 1);
    const auto zrem = co_await run(conn, cmd::zrem("board", "ann"));
    CHECK(zrem == 1);
    const auto card = co_await run(conn, cmd::zcard("board"));
    CHECK(card == 2);
  });
}

PATH_TEST("stream helpers with a consumer group") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    using fields = std::vector<std::pair<std::string, std::string>>;
    cmd::xadd_options capped;
    capped.max_len = 1000;
    cmd::xread_options ten, briefly;
    ten.count = 10;
    briefly.block = 50ms;
    const fields login{{"type", "login"}, {"u", "1"}}, buy{{"type", "buy"}}, fresh{{"events", ">"}},
        from_start{{"events", "0"}};
    const auto group = co_await run(conn, cmd::xgroup_create("events", "workers", "0"));
    CHECK(group == "OK");
    const auto id1 = co_await run(conn, cmd::xadd("events", login));
    const auto id2 = co_await run(conn, cmd::xadd("events", buy, capped));
    CHECK(id1 < id2);
    const auto len = co_await run(conn, cmd::xlen("events"));
    CHECK(len == 2);
    const auto range = co_await run(conn, cmd::xrange("events"));
    REQUIRE(range.size() == 2);
    CHECK(range[0] == redcoro::stream_entry{id1, fields{{"type", "login"}, {"u", "1"}}});
    const auto rev = co_await run(conn, cmd::xrevrange("events", "+", "-", 1));
    REQUIRE(rev.size() == 1);
    CHECK(rev[0].id == id2);

    const auto read = co_await run(conn, cmd::xreadgroup("workers", "w1", fresh, ten));
    REQUIRE(read.has_value());
    REQUIRE(read->size() == 1);
    CHECK((*read)[0].first == "events");
    REQUIRE((*read)[0].second.size() == 2);
    CHECK((*read)[0].second[1].fields == fields{{"type", "buy"}});
    const std::vector<std::string> ids{id1, id2};
    const auto acked = co_await run(conn, cmd::xack("events", "workers", ids));
    CHECK(acked == 2);
    // Nothing new: a short blocking read ends with nullopt.
    const auto empty = co_await run(conn, cmd::xreadgroup("workers", "w1", fresh, briefly));
    CHECK_FALSE(empty.has_value());
    const auto plain = co_await run(conn, cmd::xread(from_start));
    REQUIRE(plain.has_value());
    CHECK((*plain)[0].second.size() == 2);
    const auto deleted = co_await run(conn, cmd::xdel("events", id1));
    CHECK(deleted == 1);
  });
}

PATH_TEST("server helpers: INFO sections, DBSIZE, MEMORY USAGE, SLOWLOG") {
  on_every_path(
      [](path_target& conn) -> awaitable<void> {
        co_await run(conn, cmd::set("k", "v"));
        const auto info = co_await run(conn, cmd::info());
        CHECK(info.get("server", "redis_version").has_value());
        // On a cluster INFO goes to one primary (in turn), not necessarily the key's.
        if (one_node()) CHECK(info.get("keyspace", "db0").has_value());
        CHECK_FALSE(info.get("server", "no_such_field").has_value());
        const auto memory = co_await run(conn, cmd::info("memory"));
        CHECK(memory.sections.size() == 1);
        CHECK(memory.get("memory", "used_memory").has_value());
        const auto size = co_await run(conn, cmd::dbsize());  // summed over a cluster's primaries
        CHECK(size == 1);
        const auto usage = co_await run(conn, cmd::memory_usage("k"));
        CHECK(usage > 0);
        const auto none = co_await run(conn, cmd::memory_usage("missing"));
        CHECK_FALSE(none.has_value());
        const auto slow = co_await run(conn, cmd::slowlog_get(5));
        // Every command is "slow" with the threshold at 0: on one server this test's own.
        if (one_node()) REQUIRE_FALSE(slow.empty());
        for (const auto& entry : slow) {
          CHECK_FALSE(entry.args.empty());
          CHECK(entry.id >= 0);
        }
        const auto pong = co_await run(conn, cmd::ping());
        CHECK(pong == "PONG");
        co_await run(conn, cmd::flushdb());  // every primary of a cluster
        const auto empty = co_await run(conn, cmd::dbsize());
        CHECK(empty == 0);
      },
      {"--slowlog-log-slower-than", "0"});
}

PATH_TEST("functions: FUNCTION LOAD and FCALL") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const auto lib = co_await run(
        conn, cmd::function_load("#!lua name=mylib\n"
                                 "redis.register_function('incr2', function(keys, args)"
                                 " return redis.call('INCRBY', keys[1], 2 * args[1]) end)\n"
                                 "redis.register_function{function_name='peek', "
                                 "callback=function(keys) return redis.call('GET', keys[1]) end,"
                                 " flags={'no-writes'}}"));
    CHECK(lib == "mylib");
    const std::vector<std::string> c{"c"}, five{"5"}, none;
    const auto v = co_await run(conn, cmd::fcall<std::int64_t>("incr2", c, five));
    CHECK(v == 10);
    const auto ro = co_await run(conn, cmd::fcall<std::string>("peek", c, none, true));
    CHECK(ro == "10");
    auto failed = co_await conn.async_exec(cmd::fcall("nosuchfunction", none), use_awaitable);
    REQUIRE(failed.has_error());
    CHECK(failed.error().message.find("Function not found") != std::string::npos);
  });
}

PATH_TEST("pipelines of typed commands") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    auto [set, incr, get, wrong] = co_await conn.async_exec(
        redcoro::pipeline(cmd::set("p", "1"), cmd::incr("p"), cmd::get("p"), cmd::hget("p", "f")),
        use_awaitable);
    CHECK(set.value() == "OK");
    CHECK(incr.value() == 2);
    CHECK(get.value() == "2");
    REQUIRE(wrong.has_error());
    CHECK(wrong.error().server_code() == "WRONGTYPE");
  });
}

PATH_TEST("transactions: results, runtime errors, refused commands") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    auto ok = co_await conn.async_exec(
        redcoro::transaction(cmd::incr("a"), cmd::incr("a"), cmd::get("a")), use_awaitable);
    REQUIRE(ok.has_value());
    REQUIRE(ok->has_value());
    auto& [a1, a2, a3] = **ok;
    CHECK(a1.value() == 1);
    CHECK(a2.value() == 2);
    CHECK(a3.value() == "2");

    // A command that fails while running keeps its error; the others still ran.
    co_await run(conn, cmd::set("str", "x"));
    auto partial = co_await conn.async_exec(
        redcoro::transaction(cmd::lpush("str", "v"), cmd::incr("a")), use_awaitable);
    REQUIRE(partial.value().has_value());
    CHECK(std::get<0>(**partial).error().server_code() == "WRONGTYPE");
    CHECK(std::get<1>(**partial).value() == 3);

    // A command the server refuses to queue discards the whole transaction, and the error
    // names it.
    auto refused = co_await conn.async_exec(
        redcoro::transaction(cmd::incr("a"), redcoro::command<std::string>("SET", "only-key")),
        use_awaitable);
    REQUIRE(refused.has_error());
    CHECK(refused.error().server_code() == "EXECABORT");
    CHECK(refused.error().message.find("wrong number of arguments") != std::string::npos);
    const auto a = co_await run(conn, cmd::get("a"));
    CHECK(a == "3");
  });
}

#ifndef REDCORO_TEST_THROUGH_HANDLE
// (Through the handle, WATCH is async_optimistic's: test/connect/handle.cpp.)
TEST_CASE("transactions: WATCH on a connection, a change from elsewhere, EXEC aborts",
          "[client][live][commands]") {
  redis_server server;
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  connection other(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> awaitable<void> {
    conn.async_run(asio::detached);
    other.async_run(asio::detached);
    co_await run(conn, cmd::set("a", 3));
    co_await run(conn, redcoro::command<std::string>("WATCH", "a"));
    co_await run(other, cmd::incr("a"));
    auto aborted = co_await conn.async_exec(redcoro::transaction(cmd::incr("a")), use_awaitable);
    REQUIRE(aborted.has_value());
    CHECK_FALSE(aborted->has_value());
    const auto after = co_await run(conn, cmd::get("a"));
    CHECK(after == "4");
    conn.close();
    other.close();
  });
}
#endif

PATH_TEST("CR and LF in keys and values are data, never a second command") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const std::string evil_key = "k\r\nFLUSHALL\r\n";
    constexpr char raw[] = "v\r\n*1\r\n$8\r\nFLUSHALL\r\n\0end";
    const std::string evil_value(raw, sizeof raw - 1);
    co_await run(conn, cmd::set("canary", "alive"));
    co_await run(conn, cmd::set(evil_key, evil_value));
    const auto back = co_await run(conn, cmd::get(evil_key));
    CHECK(back == evil_value);
    const auto canary = co_await run(conn, cmd::get("canary"));
    CHECK(canary == "alive");
    const auto size = co_await run(conn, cmd::dbsize());
    CHECK(size == 2);
  });
}
