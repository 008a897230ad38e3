// A process that takes part in the lock tests (test/recipes/lock.cpp starts it):
//
//   recipes_lock_worker count URL NAME COROUTINES INCREMENTS
//     COROUTINES coroutines increment the plain counter `{NAME}:counter` (GET, then SET: not
//     atomic) under the lock NAME, INCREMENTS times in all. Under the lock each also checks the
//     fencing token against the last one written next to the counter, as the protected
//     resource would: it must grow. Exits 0, or non-zero with the reason on stderr.
//
//   recipes_lock_worker limit URL KEY COUNT
//     COUNT decisions of a fixed-window limiter (10 per hour) on KEY. Prints "clock <seconds
//     since the epoch, by this process's clock>", then "<allowed> <remaining> <retry_after ms>
//     <reset_after ms>" per decision. The limiter test runs it with its clock skewed.
//
//   recipes_lock_worker hold URL NAME LEASE_MS
//     Takes the lock (watchdog on), prints "fence N", then waits for "release" on stdin; it
//     prints "lost" when the watchdog finds the lock lost, and "release ok" or
//     "release <error>" after its release.
#include <redcoro/client/commands.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/limiter.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

namespace asio = boost::asio;
namespace cmd = redcoro::cmd;
namespace rr = redcoro::recipes;
using namespace std::chrono_literals;

namespace {

int failures = 0;

void fail(const std::string& what) {
  std::fprintf(stderr, "lock_worker: %s\n", what.c_str());
  ++failures;
}

asio::awaitable<void> increment(redcoro::handle& h, rr::lock& l, const std::string& counter,
                                const std::string& fence_seen, int& left) {
  while (left > 0) {
    auto [ec, g] = co_await l.async_acquire(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      fail("acquire: " + ec.message());
      co_return;
    }
    if (left <= 0) {
      co_await g.async_release(asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    --left;
    auto got = co_await h.async_exec(cmd::get(counter), asio::use_awaitable);
    auto seen = co_await h.async_exec(cmd::get(fence_seen), asio::use_awaitable);
    const long long value = got.value() ? std::stoll(*got.value()) : 0;
    const long long last = seen.value() ? std::stoll(*seen.value()) : 0;
    if (g.fence() <= last)
      fail("fence " + std::to_string(g.fence()) + " after " + std::to_string(last));
    auto set_fence = cmd::set(fence_seen, std::to_string(g.fence()));
    co_await h.async_exec(std::move(set_fence), asio::use_awaitable);
    auto set_value = cmd::set(counter, std::to_string(value + 1));
    co_await h.async_exec(std::move(set_value), asio::use_awaitable);
    auto [rec] = co_await g.async_release(asio::as_tuple(asio::use_awaitable));
    if (rec) fail("release: " + rec.message());
  }
}

int count(const char* url, const std::string& name, int coroutines, int increments) {
  asio::io_context ioc;
  redcoro::handle h(ioc, url);
  rr::lock_options o;
  o.lease = 5s;
  o.wait = 60s;
  rr::lock l(h, name, o);
  const std::string counter = "{" + name + "}:counter";
  const std::string fence_seen = "{" + name + "}:fence-seen";
  int left = increments;
  int running = coroutines;
  for (int i = 0; i < coroutines; ++i)
    asio::co_spawn(ioc, increment(h, l, counter, fence_seen, left), [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          fail(std::string("coroutine: ") + x.what());
        }
      }
      if (--running == 0) h.close();
    });
  ioc.run_for(100s);
  if (running != 0) fail("still running after 100 s");
  return failures == 0 ? 0 : 1;
}

asio::awaitable<void> hold_session(redcoro::handle& h, const std::string& name,
                                   std::chrono::milliseconds lease) {
  rr::lock_options o;
  o.lease = lease;
  o.wait = 30s;
  o.watchdog = true;
  rr::lock l(h, name, o);
  auto g = co_await l.async_acquire(asio::use_awaitable);
  g.on_lost([](redcoro::error_code) {
    std::printf("lost\n");
    std::fflush(stdout);
  });
  std::printf("fence %lld\n", static_cast<long long>(g.fence()));
  std::fflush(stdout);
  asio::posix::stream_descriptor in(co_await asio::this_coro::executor, ::dup(0));
  asio::streambuf line;
  co_await asio::async_read_until(in, line, '\n', asio::use_awaitable);
  auto [ec] = co_await g.async_release(asio::as_tuple(asio::use_awaitable));
  if (ec == rr::error::lock_not_held)
    std::printf("release lock_not_held\n");
  else if (ec)
    std::printf("release %s\n", ec.message().c_str());
  else
    std::printf("release ok\n");
  std::fflush(stdout);
}

int hold(const char* url, const std::string& name, std::chrono::milliseconds lease) {
  asio::io_context ioc;
  redcoro::handle h(ioc, url);
  int status = 1;
  asio::co_spawn(ioc, hold_session(h, name, lease), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        fail(std::string("hold: ") + x.what());
      }
    } else {
      status = 0;
    }
    h.close();
  });
  ioc.run_for(100s);
  return status;
}

asio::awaitable<void> limit_session(redcoro::handle& h, std::string key, int n) {
  rr::limiter_options o;
  o.algorithm = rr::limiter_algorithm::fixed_window;
  o.limit = 10;
  o.window = 1h;
  rr::rate_limiter l(h, o);
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::printf("clock %lld\n", static_cast<long long>(
                                  std::chrono::duration_cast<std::chrono::seconds>(now).count()));
  for (int i = 0; i < n; ++i) {
    auto d = co_await l.async_allow(key, asio::use_awaitable);
    std::printf("%d %lld %lld %lld\n", d.allowed ? 1 : 0, static_cast<long long>(d.remaining),
                static_cast<long long>(d.retry_after.count()),
                static_cast<long long>(d.reset_after.count()));
  }
  std::fflush(stdout);
}

int limit(const char* url, const std::string& key, int n) {
  asio::io_context ioc;
  redcoro::handle h(ioc, url);
  int status = 1;
  asio::co_spawn(ioc, limit_session(h, key, n), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        fail(std::string("limit: ") + x.what());
      }
    } else {
      status = 0;
    }
    h.close();
  });
  ioc.run_for(100s);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "count" && argc == 6)
    return count(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  if (mode == "limit" && argc == 5) return limit(argv[2], argv[3], std::atoi(argv[4]));
  if (mode == "hold" && argc == 5)
    return hold(argv[2], argv[3], std::chrono::milliseconds(std::atoi(argv[4])));
  std::fprintf(stderr,
               "usage: %s count URL NAME COROUTINES INCREMENTS | hold URL NAME LEASE_MS | "
               "limit URL KEY COUNT\n",
               argv[0]);
  return 2;
}
