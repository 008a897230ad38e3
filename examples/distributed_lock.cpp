// A lock shared by several processes (one Redis server): SET key token NX PX takes it only
// if no one holds it, and lets it expire if its holder dies. The token is random, so that
// only the holder can release it: a Lua script deletes the key only if it still holds our
// token, atomically. redcoro::script sends EVALSHA; when the server does not know the
// script yet (NOSCRIPT), the connection sends it once more as EVAL, by itself.
//   distributed_lock [port]   (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/script.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;
using namespace std::chrono_literals;

const std::string lock_key = "example:distributed_lock:nightly-report";
const redcoro::script release_script(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
    "else return 0 end");

// 128 random bits in hex: unique to one holder.
std::string random_token() {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

// True when we got the lock; it expires after 10 s unless released before.
asio::awaitable<bool> acquire(redcoro::connection& conn, std::string token) {
  cmd::set_options o;
  o.condition = cmd::set_if::absent;  // NX
  o.ttl = 10s;                        // PX 10000
  auto r = co_await conn.async_exec(cmd::set(lock_key, token, o), asio::use_awaitable);
  co_return r.value().has_value();  // nullopt: someone else holds it
}

// True when the lock was ours and is now released.
asio::awaitable<bool> release(redcoro::connection& conn, std::string token) {
  auto r = co_await conn.async_exec(release_script.call<std::int64_t>(lock_key, token),
                                    asio::use_awaitable);
  co_return r.value() == 1;
}

asio::awaitable<void> session(redcoro::connection& conn) {
  co_await conn.async_exec(cmd::del(lock_key), asio::use_awaitable);  // a clean start
  const std::string mine = random_token(), theirs = random_token();

  const bool got = co_await acquire(conn, mine);
  std::printf("worker A: acquire -> %s (token %s)\n", got ? "got it" : "busy", mine.c_str());
  expect(got, "A got the free lock");
  const bool other_got = co_await acquire(conn, theirs);
  std::printf("worker B: acquire -> %s\n", other_got ? "got it" : "busy");
  expect(!other_got, "B could not take A's lock");

  // B's token does not match: the script leaves A's lock alone.
  const bool stolen = co_await release(conn, theirs);
  std::printf("worker B: release -> %s\n", stolen ? "released" : "not its lock");
  expect(!stolen, "B cannot release A's lock");

  std::printf("worker A: writes the report, then releases\n");
  const bool released = co_await release(conn, mine);
  expect(released, "A released its lock");
  const bool now_got = co_await acquire(conn, theirs);
  std::printf("worker B: acquire -> %s\n", now_got ? "got it" : "busy");
  expect(now_got, "B got the lock once A released it");
  const bool done = co_await release(conn, theirs);
  expect(done, "B released its lock");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("distributed_lock", ioc, session(conn), [&] { conn.close(); });
}
