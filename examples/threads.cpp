// Several threads share one connection. The connection lives on one executor (here an
// io_context run by one thread); other threads hand it work with co_spawn on that executor
// and get results back through futures. No locks.
//   threads [port]
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::connection_config cfg;
  if (argc > 1) cfg.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  redcoro::connection conn(ioc, cfg);
  conn.async_run(asio::detached);
  auto work = asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });  // the connection's thread

  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&conn, t] {
      const std::string key = "worker:" + std::to_string(t);
      for (int i = 0; i < 1000; ++i) {
        // Runs on the connection's executor; the future carries the result to this thread.
        std::future<std::int64_t> n = asio::co_spawn(
            conn.get_executor(),
            [&]() -> asio::awaitable<std::int64_t> {
              auto v = co_await conn.async_exec(redcoro::command<std::int64_t>("INCR", key),
                                                asio::use_awaitable);
              co_return v.value();
            },
            asio::use_future);
        if (i == 999)
          std::printf("%s reached %lld\n", key.c_str(), static_cast<long long>(n.get()));
        else
          n.get();
      }
    });
  }
  for (auto& w : workers)
    w.join();
  asio::post(ioc, [&] { conn.close(); });
  work.reset();
  io.join();
  return 0;
}
