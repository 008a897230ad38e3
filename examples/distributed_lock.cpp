// A lock shared by several processes, with redcoro::recipes::lock (see recipes/README.md):
// the lock is a key holding a random token with a lease (SET NX PX), so only its holder can
// release or extend it (a Lua script checks the token) and a holder that dies loses it when
// the lease ends. Every acquisition gets a fencing token, a number that grows with each
// acquisition: hand it to what the lock protects, so that a holder that lost the lock without
// knowing (paused past its lease) is refused there. A waiter waits with a bound, and the
// release wakes it.
//   distributed_lock [port]   (a redis-server on 127.0.0.1, port 6379 by default)
#include "example.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>

namespace asio = boost::asio;
using example::expect;
namespace rr = redcoro::recipes;
using namespace std::chrono_literals;

asio::awaitable<void> session(redcoro::handle& redis) {
  // Two workers of the same lock; in real life they run in different processes.
  rr::lock_options o;
  o.lease = 10s;  // a holder that dies holds the lock at most this long
  o.wait = 5s;    // async_acquire waits at most this long for a busy lock
  rr::lock worker_a(redis, "nightly-report", o);
  rr::lock worker_b(redis, "nightly-report", o);

  auto a = co_await worker_a.async_acquire(asio::use_awaitable);
  std::printf("worker A: acquired, fencing token %lld\n", static_cast<long long>(a.fence()));
  expect(a.owns_lock(), "A got the free lock");

  auto busy = co_await worker_b.async_try_acquire(asio::use_awaitable);
  std::printf("worker B: try_acquire -> %s\n", busy ? "got it" : "busy");
  expect(!busy, "B could not take A's lock");

  // B waits (bounded by o.wait); A finishes its work and releases, which wakes B.
  bool b_done = false;
  asio::co_spawn(
      redis.get_executor(),
      [&]() -> asio::awaitable<void> {
        auto b = co_await worker_b.async_acquire(asio::use_awaitable);
        std::printf("worker B: acquired after A released, fencing token %lld\n",
                    static_cast<long long>(b.fence()));
        expect(b.fence() > a.fence(), "fencing tokens grow");
        co_await b.async_release(asio::use_awaitable);
        b_done = true;
      },
      asio::detached);

  std::printf("worker A: writes the report, then releases\n");
  asio::steady_timer t(redis.get_executor(), 100ms);
  co_await t.async_wait(asio::use_awaitable);
  co_await a.async_release(asio::use_awaitable);

  // A second release is refused: the lock is no longer A's.
  auto [again] = co_await a.async_release(asio::as_tuple(asio::use_awaitable));
  std::printf("worker A: release again -> %s\n", again.message().c_str());
  expect(again == rr::error::lock_not_held, "a release by a non-holder is refused");

  for (int i = 0; i < 500 && !b_done; ++i) {
    t.expires_after(10ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  expect(b_done, "B got the lock once A released it");

  // A guard releases the lock when it goes out of scope, also by an exception.
  {
    auto g = co_await worker_a.async_acquire(asio::use_awaitable);
    std::printf("worker A: holds it in a scope, fencing token %lld\n",
                static_cast<long long>(g.fence()));
  }
  auto after_scope = co_await worker_b.async_acquire(1s, asio::use_awaitable);
  expect(after_scope.owns_lock(), "the guard released the lock at the end of its scope");
  co_await after_scope.async_release(asio::use_awaitable);
}

int main(int argc, char** argv) {
  asio::io_context ioc;
  redcoro::handle redis(ioc, example::config_from(argc, argv));
  return example::run("distributed_lock", ioc, session(redis), [&] { redis.close(); });
}
