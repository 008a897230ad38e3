// Named connections: the connection file (entries, environment variables, every way it can
// be wrong), and the registry's names over real servers.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/registry.hpp>

#include <cstdio>
#include <fstream>
#include <map>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;
using asio::use_awaitable;

namespace {

environment fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// The error a file gets, as (entry, field, message).
registry_error refusal(std::string_view json, const environment& env = fake_env({})) {
  try {
    parse_connection_file(json, {}, env);
  } catch (const bad_registry& e) {
    return e.error();
  }
  FAIL("accepted: " << json);
  return {};
}

}  // namespace

TEST_CASE("connection file: URLs, fields, kinds and environment variables", "[registry]") {
  const auto env = fake_env({{"CACHE_PW", "s3cret"}, {"PORT", "6390"}, {"SENT_PW", "sp"}});
  const auto file = parse_connection_file(R"({
    "default": "cache",
    "connections": {
      "cache": "redis://:${CACHE_PW}@cache.internal:6380/2",
      "sessions": {"url": "redis://sessions:6379", "key_prefix": "sess:", "pool_size": 8,
                   "request_timeout_ms": 250},
      "local": {"host": "127.0.0.1", "port": "${PORT}", "database": 1, "password": "a$$b"},
      "events": {"cluster": ["10.0.0.1:7000", "[::1]:7001"], "password": "${CACHE_PW}"},
      "ha": {"sentinels": ["10.0.0.5:26379"], "primary_name": "mymaster", "role": "replica",
             "sentinel_password": "${SENT_PW}"}
    }
  })",
                                          {}, env);
  CHECK(file.default_name == "cache");
  REQUIRE(file.connections.size() == 5);

  const auto& cache = std::get<connection_config>(file.connections.at("cache"));
  CHECK(cache.host == "cache.internal");
  CHECK(cache.port == 6380);
  CHECK(cache.database == 2);
  CHECK(cache.password == "s3cret");

  const auto& sessions = std::get<connection_config>(file.connections.at("sessions"));
  CHECK(sessions.host == "sessions");
  CHECK(sessions.key_prefix == "sess:");
  CHECK(sessions.pool_size == 8);
  CHECK(sessions.request_timeout == 250ms);

  const auto& local = std::get<connection_config>(file.connections.at("local"));
  CHECK(local.port == 6390);
  CHECK(local.database == 1);
  CHECK(local.password == "a$b");

  const auto& events = std::get<cluster_config>(file.connections.at("events"));
  REQUIRE(events.seeds.size() == 2);
  CHECK(events.seeds[1].host == "::1");
  CHECK(events.seeds[1].port == 7001);
  CHECK(events.node.password == "s3cret");

  const auto& ha = std::get<sentinel_config>(file.connections.at("ha"));
  CHECK(ha.primary_name == "mymaster");
  CHECK(ha.role == sentinel_role::replica);
  CHECK(ha.sentinel.password == "sp");
  REQUIRE(ha.sentinels.size() == 1);
  CHECK(ha.sentinels[0].port == 26379);
}

TEST_CASE("connection file: a bad file names the entry and the field, never the secret",
          "[registry]") {
  struct bad {
    const char* json;
    const char* entry;
    const char* field;
    const char* says;
  };
  const bad cases[] = {
      {"not json", "", "", "not JSON"},
      {"[]", "", "", "must be an object"},
      {R"({"connections": {}})", "", "connections", "lists no connection"},
      {R"({"connectons": {"a": "redis://h"}})", "", "connectons", "unknown field"},
      {R"({"default": "b", "connections": {"a": "redis://h"}})", "", "default", "names no"},
      {R"({"connections": {"a": 42}})", "a", "", "URL or an object"},
      {R"({"connections": {"a": "redis://h:99999"}})", "a", "url", "port"},
      {R"({"connections": {"a": {"host": "h", "prot": 1}}})", "a", "prot", "unknown field"},
      {R"({"connections": {"a": {"host": "h", "port": 0}}})", "a", "port", "between 1 and 65535"},
      {R"({"connections": {"a": {"host": "h", "port": "x"}}})", "a", "port", "integer"},
      {R"({"connections": {"a": {"password": "${NOPE}"}}})", "a", "password", "NOPE is not set"},
      {R"({"connections": {"a": {"password": "${OPEN"}}})", "a", "password", "closing"},
      {R"({"connections": {"a": {"password": "$5"}}})", "a", "password", "$$"},
      {R"({"connections": {"a": {"cluster": ["h"]}}})", "a", "cluster", "host:port"},
      {R"({"connections": {"a": {"cluster": []}}})", "a", "cluster", "names no host"},
      {R"({"connections": {"a": {"cluster": ["h:1"], "host": "x"}}})", "a", "host", "its list"},
      {R"({"connections": {"a": {"sentinels": ["h:1"]}}})", "a", "primary_name", "needs it"},
      {R"({"connections": {"a": {"url": "redis://h", "cluster": ["h:1"]}}})", "a", "", "one of"},
      {R"({"connections": {"a": {"host": "h", "role": "replica"}}})", "a", "role", "Sentinel"},
      {R"({"connections": {"a": {"host": "h", "tls": "yes"}}})", "a", "tls", "true or false"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    const auto e = refusal(c.json);
    CHECK(e.entry == c.entry);
    CHECK(e.field == c.field);
    CHECK(e.message.find(c.says) != std::string::npos);
  }
  // A URL with a password that does not parse: the message shows no part of it.
  const auto e = refusal(R"({"connections": {"a": "redis://u:hunter2@h:port"}})");
  CHECK(e.what().find("hunter2") == std::string::npos);
}

TEST_CASE("connections: names, the default, and removal after the requests in flight",
          "[registry]") {
  redis_server one, two;
  asio::io_context ioc;
  const std::string json = R"({"default": "cache", "connections": {
      "cache": "redis://127.0.0.1:)" +
                           std::to_string(one.port()) + R"(",
      "sessions": {"host": "127.0.0.1", "port": )" +
                           std::to_string(two.port()) + R"(, "key_prefix": "s:"}}})";
  const std::string path = one.dir() + "/connections.json";
  std::ofstream(path) << json;
  auto redis = connections::from_file(ioc.get_executor(), path);
  CHECK(redis.list() == std::vector<std::string>{"cache", "sessions"});
  CHECK(redis.default_name() == "cache");
  CHECK(redis.has("sessions"));
  CHECK_FALSE(redis.has("nope"));
  CHECK_THROWS_AS(redis.get("nope"), std::out_of_range);
  CHECK_THROWS_AS(redis.make("cache", "redis://127.0.0.1:1"), std::invalid_argument);
  CHECK_THROWS_AS(connections::from_file(ioc.get_executor(), one.dir() + "/missing.json"),
                  bad_registry);

  std::size_t answered = 0, failed = 0;
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    co_await redis.get().async_exec(cmd::set("k", "cache"), use_awaitable);
    co_await redis.get("sessions").async_exec(cmd::set("k", "sessions"), use_awaitable);
    // Removed with requests in flight: they are answered, then its engine closes.
    auto sessions = redis.get("sessions");
    for (int i = 0; i < 20; ++i)
      sessions.async_exec(cmd::incr("n"), [&](error_code ec, proto::result<std::int64_t> r) {
        (ec || r.has_error() ? failed : answered)++;
      });
    sessions = redis.get();  // the last other copy goes
    CHECK(redis.remove("sessions"));
    CHECK_FALSE(redis.remove("sessions"));
    co_await sleep_for(300ms);
    redis.set_default("other");
    redis.make("other", local_config(two.port()));
    auto v = co_await redis.get().async_exec(cmd::get("s:k"), use_awaitable);
    CHECK(v.value() == std::optional<std::string>("sessions"));
    redis.close_all();
  });
  CHECK(answered == 20);
  CHECK(failed == 0);
  CHECK(one.cli({"GET", "k"}).find("cache") != std::string::npos);
  CHECK(two.cli({"GET", "s:n"}).find("20") != std::string::npos);
}
