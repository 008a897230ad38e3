// The blocking facade: plain calls from many threads at once, multiplexed on one connection;
// errors as exceptions or codes; a server killed while threads wait ends every call.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/blocking.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace redcoro;
using namespace redcoro::test;
using namespace std::chrono_literals;

TEST_CASE("blocking handle: 16 threads share one connection and every increment lands",
          "[blocking]") {
  redis_server server;
  auto cfg = local_config(server.port());
  cfg.pool_size = 0;
  blocking_handle redis(cfg);
  REQUIRE(redis.wait_ready(10s));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      for (int i = 1; i <= 500; ++i) {
        auto n = redis.exec(cmd::incr("total"));
        auto mine = redis.exec(cmd::incr("t" + std::to_string(t)));
        if (!n.has_value() || mine.value() != i) ++wrong;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(wrong == 0);
  CHECK(redis.exec(cmd::get("total")).value() == std::optional<std::string>("8000"));
  // One connection served them all (plus the one redis-cli opens).
  CHECK(server.cli({"INFO", "clients"}).find("connected_clients:2") != std::string::npos);

  // A server's error is in the result; value() throws it.
  redis.exec(cmd::set("s", "text"));
  auto bad = redis.exec(cmd::incr("s"));
  CHECK(bad.has_error());
  CHECK_THROWS(bad.value());

  auto report = redis.health();
  CHECK(report.healthy);
  CHECK(report.role == "master");
}

TEST_CASE("blocking handle: a server killed while 8 threads wait ends every call",
          "[blocking][failure]") {
  redis_server server;
  auto cfg = local_config(server.port());
  // Shorter than the outage below (800 ms at least): a call made while the server is down
  // fails for certain, whether or not one was in flight at the kill.
  cfg.request_timeout = 300ms;
  cfg.reconnect.max_attempts = 0;
  blocking_handle redis(cfg);
  REQUIRE(redis.wait_ready(10s));
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> ok{0}, failed{0}, finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      while (!stop) {
        error_code ec;
        auto r = redis.exec(cmd::incr("n"), ec);
        (ec || r.has_error() ? failed : ok)++;
        if (ec) std::this_thread::sleep_for(10ms);
      }
      ++finished;
    });
  std::this_thread::sleep_for(200ms);
  server.kill();
  std::this_thread::sleep_for(500ms);
  CHECK_FALSE(redis.health(300ms).healthy);
  server.restart();
  CHECK(redis.wait_ready(10s));
  const std::size_t before = ok;
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& th : threads)
    th.join();
  CHECK(finished == 8);  // nothing hung
  CHECK(failed > 0);
  CHECK(ok > before);
  // A transport error throws from the plain overload.
  server.kill();
  CHECK_THROWS_AS(redis.exec(cmd::incr("n")), std::system_error);
}
