// User profiles as hashes: one key per user, one field per attribute. HSET writes a whole
// std::map in one command, HGETALL reads it back as a map, and HINCRBY counts logins on the
// server, atomically: no read-modify-write race between two logins at the same time.
//   user_service [port]       (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;

const std::string prefix = "example:user_service:";

// A login: one more on the counter, which the server returns.
asio::awaitable<std::int64_t> record_login(redcoro::connection& conn, std::string user_key) {
  auto n = co_await conn.async_exec(cmd::hincrby(user_key, "login_count", 1), asio::use_awaitable);
  co_return n.value();  // value() throws the server's error, if any
}

asio::awaitable<void> session(redcoro::connection& conn) {
  const std::string key = prefix + "user:1815";
  co_await conn.async_exec(cmd::del(key), asio::use_awaitable);  // a clean start

  // Sign-up: every field in one HSET. (The map is a named variable: GCC 12 rejects braced
  // lists inside co_await expressions.)
  const std::map<std::string, std::string> profile{
      {"name", "Ada Lovelace"}, {"email", "ada@example.org"}, {"lang", "en"}};
  auto added = co_await conn.async_exec(cmd::hset(key, profile), asio::use_awaitable);
  std::printf("HSET %s: %lld new fields\n", key.c_str(), static_cast<long long>(added.value()));
  expect(added.value() == 3, "HSET added three fields");

  // Three logins.
  std::int64_t logins = 0;
  for (int i = 0; i < 3; ++i)
    logins = co_await record_login(conn, key);
  std::printf("HINCRBY login_count -> %lld\n", static_cast<long long>(logins));
  expect(logins == 3, "three logins counted");

  // The whole profile back (an unordered map; copied into a std::map to print it sorted).
  auto all = co_await conn.async_exec(cmd::hgetall(key), asio::use_awaitable);
  const std::map<std::string, std::string> user(all.value().begin(), all.value().end());
  for (const auto& [field, value] : user)
    std::printf("  %-12s %s\n", field.c_str(), value.c_str());
  expect(user.size() == 4, "HGETALL returned four fields");
  expect(user.at("name") == "Ada Lovelace" && user.at("login_count") == "3",
         "HGETALL returned what was written");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("user_service", ioc, session(conn), [&] { conn.close(); });
}
