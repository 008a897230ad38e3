// Rate limiting: at most `limit` requests per client and window, two ways, each one
// MULTI/EXEC transaction (redcoro::transaction) so that no other client's commands run in
// between:
//  - fixed window: a counter per client and minute (the key names the minute), INCR, and
//    EXPIRE so that old counters go away. Cheap; but a burst at the end of one minute and
//    another at the start of the next get through twice the limit.
//  - sliding window: a sorted set of request times per client. ZREMRANGEBYSCORE drops the
//    ones older than the window, ZADD adds this one, ZCARD counts, PEXPIRE cleans up after
//    an idle client. Denied requests count too: a client that keeps hammering stays limited.
// Both take the time as an argument, so this example steps through time without sleeping.
//   rate_limiter [port]       (a redis-server on 127.0.0.1, port 6379 by default)
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
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;
using namespace std::chrono_literals;
using time_point = std::chrono::system_clock::time_point;

const std::string prefix = "example:rate_limiter:";
constexpr int limit = 3;

std::string fixed_key(const std::string& client, time_point now) {
  return prefix + "fixed:" + client + ":" + std::to_string(now.time_since_epoch() / 1min);
}

asio::awaitable<bool> allow_fixed(redcoro::connection& conn, std::string client, time_point now) {
  const std::string key = fixed_key(client, now);
  auto tx = redcoro::transaction(cmd::incr(key), cmd::expire(key, 1min));
  auto exec = co_await conn.async_exec(std::move(tx), asio::use_awaitable);
  const auto& replies = exec.value();  // nullopt only when a WATCHed key changed: no WATCH here
  expect(replies.has_value(), "EXEC ran the transaction");
  const auto& [count, expiry_set] = *replies;
  expect(expiry_set.value(), "EXPIRE set the counter's TTL");
  co_return count.value() <= limit;
}

asio::awaitable<bool> allow_sliding(redcoro::connection& conn, std::string client, time_point now) {
  static std::mt19937_64 rng(std::random_device{}());
  constexpr auto window = 1000ms;
  const std::string key = prefix + "sliding:" + client;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::string too_old = std::to_string((ms - window).count());
  const std::string request = std::to_string(ms.count()) + "-" + std::to_string(rng());  // unique
  auto tx = redcoro::transaction(cmd::zremrangebyscore(key, "-inf", too_old),
                                 cmd::zadd(key, static_cast<double>(ms.count()), request),
                                 cmd::zcard(key), cmd::expire(key, window));
  auto exec = co_await conn.async_exec(std::move(tx), asio::use_awaitable);
  expect(exec.value().has_value(), "EXEC ran the transaction");
  co_return std::get<2>(*exec.value()).value() <= limit;  // ZCARD: requests in the window
}

// `requests` requests of one client, all at `now`, through `allow`: printed and returned.
template <class Allow>
asio::awaitable<std::vector<bool>> burst(redcoro::connection& conn, const char* label, Allow allow,
                                         time_point now, int requests) {
  std::vector<bool> out;
  std::printf("%-30s", label);
  for (int i = 0; i < requests; ++i) {
    const bool ok = co_await allow(conn, "client-7", now);
    std::printf(" %s", ok ? "allowed" : "DENIED");
    out.push_back(ok);
  }
  std::printf("\n");
  co_return out;
}

asio::awaitable<void> session(redcoro::connection& conn) {
  const time_point t0 = std::chrono::system_clock::now();
  const std::vector<std::string> keys{fixed_key("client-7", t0), fixed_key("client-7", t0 + 1min),
                                      prefix + "sliding:client-7"};
  co_await conn.async_exec(cmd::del(keys), asio::use_awaitable);  // a clean start

  const std::vector<bool> three_of_five{true, true, true, false, false}, one{true};
  auto fixed_now = co_await burst(conn, "fixed window, 5 at once:", allow_fixed, t0, 5);
  auto fixed_later =
      co_await burst(conn, "fixed window, a minute later:", allow_fixed, t0 + 1min, 1);
  expect(fixed_now == three_of_five && fixed_later == one, "fixed window: 3 per minute");

  auto sliding_now = co_await burst(conn, "sliding window, 5 at once:", allow_sliding, t0, 5);
  auto sliding_later =
      co_await burst(conn, "sliding window, 1.1 s later:", allow_sliding, t0 + 1100ms, 1);
  expect(sliding_now == three_of_five && sliding_later == one, "sliding window: 3 per second");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection conn(ioc, example::config_from(argc, argv));
  conn.async_run(asio::detached);  // connects, and reconnects until close()
  return example::run("rate_limiter", ioc, session(conn), [&] { conn.close(); });
}
