// A cache in front of a slow data source. Read-through: look in Redis first, and on a miss
// load from the source and store the value with a TTL (SET ... PX), so stale entries go
// away by themselves. When the source changes, DEL drops the entry at once.
//   cache_service [port]      (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;
using namespace std::chrono_literals;

const std::string prefix = "example:cache_service:";
int source_reads = 0;

// The slow source (a database, another service): we count how often it is asked.
std::string load_product(const std::string& id) {
  ++source_reads;
  return "product " + id + ", 19.99 EUR";
}

// The cached value, or the source's, which is then cached for 30 seconds.
asio::awaitable<std::string> get_product(redcoro::connection& conn, std::string id) {
  const std::string key = prefix + "product:" + id;
  auto cached = co_await conn.async_exec(cmd::get(key), asio::use_awaitable);
  if (cached.value()) co_return *cached.value();  // value() throws the server's error, if any

  std::string fresh = load_product(id);
  cmd::set_options ttl;
  ttl.ttl = 30s;
  auto stored = co_await conn.async_exec(cmd::set(key, fresh, ttl), asio::use_awaitable);
  expect(stored.value().has_value(), "SET stored the value");
  co_return fresh;
}

asio::awaitable<void> session(redcoro::connection& conn) {
  const std::string key = prefix + "product:42";
  co_await conn.async_exec(cmd::del(key), asio::use_awaitable);  // a clean start

  std::string first = co_await get_product(conn, "42");
  std::printf("first read:  %s (miss, source reads: %d)\n", first.c_str(), source_reads);
  std::string second = co_await get_product(conn, "42");
  std::printf("second read: %s (hit, source reads: %d)\n", second.c_str(), source_reads);
  expect(first == second && source_reads == 1, "the second read came from the cache");

  auto ttl = co_await conn.async_exec(cmd::pttl(key), asio::use_awaitable);
  std::printf("entry expires in %lld ms\n", static_cast<long long>(ttl.value()));
  expect(ttl.value() > 0 && ttl.value() <= 30'000, "the entry has a TTL of at most 30 s");

  // The price changed at the source: drop the entry, the next read loads it again.
  auto removed = co_await conn.async_exec(cmd::del(key), asio::use_awaitable);
  expect(removed.value() == 1, "DEL removed the entry");
  co_await get_product(conn, "42");
  std::printf("after DEL:   miss again (source reads: %d)\n", source_reads);
  expect(source_reads == 2, "the read after DEL went to the source");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("cache_service", ioc, session(conn), [&] { conn.close(); });
}
