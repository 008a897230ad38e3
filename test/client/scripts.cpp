// Scripts on the request path. Compiled twice (see support/request_path.hpp): on a connection
// in test_client, through a handle over every deployment in test_paths.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include "support/request_path.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/script.hpp>

#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using redcoro::connection;
using redcoro::test::on_every_path;
using redcoro::test::path_target;
namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
using asio::awaitable;
using asio::use_awaitable;

#ifdef REDCORO_TEST_THROUGH_HANDLE
#define PATH_TEST(name) TEST_CASE("through the handle: " name, "[paths]")
#else
#define PATH_TEST(name) TEST_CASE(name, "[client][live][scripts]")

TEST_CASE("script SHA1 is the one the server computes", "[client][scripts]") {
  CHECK(redcoro::detail::sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(redcoro::script("return 1").sha1() == redcoro::detail::sha1_hex("return 1"));
}
#endif

PATH_TEST("scripts: EVALSHA, NOSCRIPT fallback alone and in pipelines, errors") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const redcoro::script add("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    const redcoro::script peek("return redis.call('GET', KEYS[1])");
    const redcoro::script broken("return redis.call('NOSUCHCOMMAND')");
    const auto loaded = co_await conn.async_exec(add.load(), use_awaitable);
    CHECK(loaded.value() == add.sha1());

    // Known to the server: plain EVALSHA.
    auto five = co_await conn.async_exec(add.call<std::int64_t>("n", 5), use_awaitable);
    CHECK(five.value() == 5);

    // Unknown (cache flushed): NOSCRIPT, then EVAL, which also loads it.
    co_await conn.async_exec(redcoro::command<std::string>("SCRIPT", "FLUSH"), use_awaitable);
    auto seven = co_await conn.async_exec(add.call<std::int64_t>("n", 2), use_awaitable);
    CHECK(seven.value() == 7);
    auto exists = co_await conn.async_exec(
        redcoro::command<std::vector<int>>("SCRIPT", "EXISTS", add.sha1()), use_awaitable);
    // (On a cluster SCRIPT EXISTS asks one primary, in turn: EVAL loaded it on the key's.)
    if (redcoro::test::one_node()) CHECK(exists.value() == std::vector<int>{1});

    // In a pipeline: each unknown script is resent into its own slot.
    co_await conn.async_exec(redcoro::command<std::string>("SCRIPT", "FLUSH"), use_awaitable);
    auto [a, get, p, b] =
        co_await conn.async_exec(redcoro::pipeline(add.call<std::int64_t>("n", 1), cmd::get("n"),
                                                   peek.call_ro<std::optional<std::string>>("n"),
                                                   add.call<std::int64_t>("m", 3)),
                                 use_awaitable);
    CHECK(a.value() == 8);
    CHECK(get.value() == "7");  // ran before the resent script
    CHECK(p.value() == "8");
    CHECK(b.value() == 3);

    // A script's own error comes back with the server's message, and is not retried.
    auto failed = co_await conn.async_exec(broken.call(), use_awaitable);
    REQUIRE(failed.has_error());
    CHECK(failed.error().message.find("Unknown Redis command") != std::string::npos);

    // Inside a transaction there is no resend: NOSCRIPT is the result.
    co_await conn.async_exec(redcoro::command<std::string>("SCRIPT", "FLUSH"), use_awaitable);
    auto tx = co_await conn.async_exec(redcoro::transaction(add.call<std::int64_t>("n", 1)),
                                       use_awaitable);
    REQUIRE(tx.value().has_value());
    CHECK(std::get<0>(**tx).error().server_code() == "NOSCRIPT");
  });
}

PATH_TEST("a distributed lock: SET NX PX and a Lua release") {
  on_every_path([](path_target& conn) -> awaitable<void> {
    const redcoro::script release(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
        "else return 0 end");
    cmd::set_options lock;
    lock.condition = cmd::set_if::absent;
    lock.ttl = 10s;
    auto first = co_await conn.async_exec(cmd::set("lock:job", "owner-a", lock), use_awaitable);
    CHECK(first.value().has_value());
    auto second = co_await conn.async_exec(cmd::set("lock:job", "owner-b", lock), use_awaitable);
    CHECK_FALSE(second.value().has_value());
    auto wrong =
        co_await conn.async_exec(release.call<std::int64_t>("lock:job", "owner-b"), use_awaitable);
    CHECK(wrong.value() == 0);
    auto right =
        co_await conn.async_exec(release.call<std::int64_t>("lock:job", "owner-a"), use_awaitable);
    CHECK(right.value() == 1);
  });
}
