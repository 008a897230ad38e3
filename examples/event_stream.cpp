// An event stream with a consumer group, through redcoro::recipes: a producer adds orders to
// a stream (trimmed to about 10,000 entries); a stream_worker of the group "billing" handles
// them, a few at a time, and acknowledges each one only once its handler has returned. An
// order whose handler keeps failing goes to the dead-letter stream, with the reason, after 2
// deliveries. Delivery is at least once: a handler must be idempotent (charge an order once
// even if it is delivered twice).
//   event_stream [port]       (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/stream_worker.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asio = boost::asio;
using example::expect;
namespace cmd = redcoro::cmd;
namespace recipes = redcoro::recipes;
using namespace std::chrono_literals;
using fields = std::vector<std::pair<std::string, std::string>>;

// A hash tag, so that on a cluster the dead-letter stream ({...}:dead) shares its slot.
const std::string stream = "{example:event_stream}:orders";
const std::string dead_letter = stream + ":dead";

asio::awaitable<void> session(redcoro::handle& redis) {
  co_await redis.async_exec(cmd::del(stream), asio::use_awaitable);  // a clean start
  co_await redis.async_exec(cmd::del(dead_letter), asio::use_awaitable);

  recipes::stream_producer orders(redis, stream, 10000);  // XADD ... MAXLEN ~ 10000
  std::vector<fields> incoming;
  incoming.push_back({{"order", "1001"}, {"total", "25.00"}});
  incoming.push_back({{"order", "1002"}, {"total", "9.90"}});
  incoming.push_back({{"order", "1003"}, {"total", "n/a"}});  // cannot be charged
  incoming.push_back({{"order", "1004"}, {"total", "120.00"}});
  for (const fields& order : incoming) {
    auto id = co_await orders.async_add(order, asio::use_awaitable);
    std::printf("XADD order %s -> %s\n", order[0].second.c_str(), id.value().c_str());
  }

  std::map<std::string, double> charged;  // order -> total: idempotent by order number
  recipes::stream_worker_options o;
  o.stream = stream;
  o.group = "billing";
  o.consumer = "billing-1";
  o.start_id = "0";      // a new group reads the stream from its start
  o.concurrency = 4;     // at most 4 orders in progress
  o.block = 200ms;       // each XREADGROUP waits up to 200 ms for new orders
  o.claim_idle = 200ms;  // a failed (or orphaned) order is retried after 200 ms...
  o.claim_interval = 100ms;
  o.max_deliveries = 2;  // ...and dead-lettered after its second failure
  recipes::stream_worker billing(
      redis, o, [&](const recipes::stream_message& m) -> asio::awaitable<void> {
        const std::string order = *m.field("order");
        const std::string& total = *m.field("total");
        std::size_t used = 0;
        double amount = 0;
        try {
          amount = std::stod(total, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != total.size()) {
          std::printf("billing-1: order %s, delivery %lld: cannot charge \"%s\"\n", order.c_str(),
                      static_cast<long long>(m.deliveries), total.c_str());
          throw std::runtime_error("invalid total: " + total);
        }
        if (charged.emplace(order, amount).second)
          std::printf("billing-1: charge order %s, %s EUR\n", order.c_str(), total.c_str());
        co_return;
      });

  // The worker runs until stopped; here, until every order is charged or dead-lettered.
  asio::co_spawn(
      redis.get_executor(),
      [&]() -> asio::awaitable<void> { co_await billing.async_run(asio::use_awaitable); },
      asio::detached);
  asio::steady_timer pause(redis.get_executor());
  for (int i = 0; i < 500; ++i) {  // at most 10 s
    auto dead = co_await redis.async_exec(cmd::xlen(dead_letter), asio::use_awaitable);
    if (charged.size() == 3 && dead.value() == 1) break;
    pause.expires_after(20ms);
    co_await pause.async_wait(asio::use_awaitable);
  }
  // stop() lets the handlers in progress finish; async_stop waits for that.
  recipes::stream_worker_stats stats = co_await billing.async_stop(asio::use_awaitable);
  std::printf("billing-1 stopped: %llu handled, %llu failed, %llu dead-lettered\n",
              static_cast<unsigned long long>(stats.handled),
              static_cast<unsigned long long>(stats.failed),
              static_cast<unsigned long long>(stats.dead_lettered));
  expect(charged.size() == 3, "three orders charged");
  expect(stats.dead_lettered == 1, "one order dead-lettered");

  auto dead = co_await redis.async_exec(cmd::xrange(dead_letter), asio::use_awaitable);
  expect(dead.value().size() == 1, "the dead-letter stream holds the bad order");
  for (const auto& [name, value] : dead.value()[0].fields)
    std::printf("  dead letter: %s = %s\n", name.c_str(), value.c_str());

  auto pending = co_await redis.async_exec(
      redcoro::command<redcoro::proto::value>("XPENDING", stream, "billing"), asio::use_awaitable);
  expect(pending.value()[0].to_integer() == 0, "nothing left pending");
  std::printf("nothing pending in group billing\n");
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::handle redis(ioc, example::config_from(argc, argv));
  return example::run("event_stream", ioc, session(redis), [&] { redis.close(); });
}
