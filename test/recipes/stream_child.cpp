// One stream worker in a process of its own, for test/recipes/stream_worker.cpp, which starts
// three and SIGKILLs one:
//   recipes_stream_child URL STREAM GROUP CONSUMER CONCURRENCY HANG_AFTER CLAIM_IDLE_MS
// (URL: redis://127.0.0.1:PORT, or redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...)
// The handler counts each message it handles in the hash `<STREAM>:handled` (HINCRBY id 1)
// and acknowledges it by returning. With HANG_AFTER > 0, every message after that many
// hangs once counted (and counted in `<STREAM>:hung:<CONSUMER>`, field `held`): the worker
// then holds CONCURRENCY messages in progress forever, the state in which the test kills it.
// SIGTERM stops the worker (draining); its counters go to the hash `<STREAM>:stats:<CONSUMER>`
// before the process exits with 0.
#include <redcoro/recipes/stream_worker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace rr = redcoro::recipes;
namespace cmd = redcoro::cmd;

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: %s URL STREAM GROUP CONSUMER CONCURRENCY HANG_AFTER "
                 "CLAIM_IDLE_MS\n",
                 argv[0]);
    return 2;
  }
  redcoro::connection_config cfg;
  cfg.reconnect.min_delay = std::chrono::milliseconds(20);
  cfg.reconnect.max_delay = std::chrono::milliseconds(200);
  const std::string stream = argv[2];
  const std::string handled_key = stream + ":handled";
  const long hang_after = std::atol(argv[6]);
  const std::string hung_key = stream + ":hung:" + argv[4];

  asio::io_context ioc;
  redcoro::handle redis(ioc, std::string_view(argv[1]), cfg);
  long mine = 0;
  rr::stream_worker_options o;
  o.stream = stream;
  o.group = argv[3];
  o.consumer = argv[4];
  o.concurrency = static_cast<std::size_t>(std::atoi(argv[5]));
  o.claim_idle = std::chrono::milliseconds(std::atol(argv[7]));
  o.claim_interval = std::chrono::milliseconds(100);
  o.block = std::chrono::milliseconds(200);
  o.start_id = "0";
  rr::stream_worker worker(redis, o, [&](const rr::stream_message& m) -> asio::awaitable<void> {
    auto c = cmd::hincrby(handled_key, m.id, 1);
    auto r = co_await redis.async_exec(std::move(c), asio::use_awaitable);
    (void)r.value();  // a server error fails the message
    if (hang_after > 0 && ++mine > hang_after) {
      auto h = cmd::hincrby(hung_key, "held", 1);
      auto held = co_await redis.async_exec(std::move(h), asio::use_awaitable);
      (void)held.value();
      asio::steady_timer forever(ioc, asio::steady_timer::time_point::max());
      co_await forever.async_wait(asio::use_awaitable);
    }
  });

  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) worker.stop();
  });

  int status = 0;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto [ec, stats] = co_await worker.async_run(asio::as_tuple(asio::use_awaitable));
        if (ec) throw std::runtime_error("async_run: " + ec.message());
        std::vector<std::pair<std::string, std::string>> fields;
        fields.emplace_back("handled", std::to_string(stats.handled));
        fields.emplace_back("failed", std::to_string(stats.failed));
        fields.emplace_back("acked", std::to_string(stats.acked));
        fields.emplace_back("stale_acks", std::to_string(stats.stale_acks));
        fields.emplace_back("ack_errors", std::to_string(stats.ack_errors));
        fields.emplace_back("claimed", std::to_string(stats.claimed));
        fields.emplace_back("dead_lettered", std::to_string(stats.dead_lettered));
        const std::string key = stream + ":stats:" + o.consumer;
        auto c = cmd::hset(key, fields);
        auto r = co_await redis.async_exec(std::move(c), asio::use_awaitable);
        (void)r.value();
      },
      [&](std::exception_ptr e) {
        if (e) {
          status = 1;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            std::fprintf(stderr, "recipes_stream_child: %s\n", x.what());
          }
        }
        signals.cancel();
        redis.close();
      });
  ioc.run();
  return status;
}
