// A work queue on a list: producers LPUSH jobs, a worker BRPOPs them, oldest first. BRPOP
// blocks until a job arrives and holds its connection while it waits, so the worker has a
// redcoro::connection of its own: the shared one stays free for everything else. Producer
// and worker are two coroutines on one io_context; the worker stops after `jobs` jobs.
//   work_queue [port]         (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
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
using namespace asio::experimental::awaitable_operators;

const std::string queue = "example:work_queue:jobs";
constexpr int jobs = 5;

asio::awaitable<void> producer(redcoro::connection& shared) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (int i = 1; i <= jobs; ++i) {
    const std::string job = "job " + std::to_string(i);
    std::printf("producer: queues %s\n", job.c_str());
    auto length = co_await shared.async_exec(cmd::lpush(queue, job), asio::use_awaitable);
    expect(length.value() >= 1, "LPUSH added the job");
    pause.expires_after(20ms);  // jobs trickle in; meanwhile the worker waits in BRPOP
    co_await pause.async_wait(asio::use_awaitable);
  }
}

asio::awaitable<void> worker(redcoro::connection& own) {
  for (int i = 1; i <= jobs; ++i) {
    // The server waits up to 5 s for a job; the request's own timeout (connection_config::
    // request_timeout, 10 s by default) must be longer.
    auto popped = co_await own.async_exec(cmd::brpop(queue, 5s), asio::use_awaitable);
    expect(popped.value().has_value(), "a job arrived within 5 s");
    const auto& [list, job] = *popped.value();
    std::printf("worker:   done with %s\n", job.c_str());
    expect(job == "job " + std::to_string(i), "jobs come out oldest first");
  }
}

asio::awaitable<void> session(redcoro::connection& shared, redcoro::connection& blocking) {
  co_await shared.async_exec(cmd::del(queue), asio::use_awaitable);  // a clean start
  // Both at once: completes when both have; if one throws, the other is cancelled.
  co_await (worker(blocking) && producer(shared));
  auto left = co_await shared.async_exec(cmd::llen(queue), asio::use_awaitable);
  expect(left.value() == 0, "the queue is empty");
  std::printf("%d jobs done, queue empty\n", jobs);
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  const redcoro::connection_config cfg = example::config_from(argc, argv);
  redcoro::connection shared(ioc, cfg);    // for the application's ordinary commands
  redcoro::connection blocking(ioc, cfg);  // the worker's, for BRPOP only
  shared.async_run(asio::detached);
  blocking.async_run(asio::detached);
  return example::run("work_queue", ioc, session(shared, blocking), [&] {
    shared.close();
    blocking.close();
  });
}
