#pragma once

// What the examples share: the server's port from the command line, a check that stops the
// example when something is not as it should be, and a main() that runs the session and
// reports its failure. Copy it along with the example you start from.

#include <redcoro/client/config.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace example {

namespace asio = boost::asio;

/// A connection to 127.0.0.1, on the port given as the first argument (6379 without one).
inline redcoro::connection_config config_from(int argc, char** argv) {
  redcoro::connection_config cfg;
  if (argc > 1) cfg.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  return cfg;
}

/// Stops the example (with `what`) when `ok` is false.
inline void expect(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("unexpected: ") + what);
}

/// Runs `session` on `ioc`, then `close_all()` (so that the async_runs complete and
/// ioc.run() returns). Returns main's exit status: 1, with the reason printed, if the
/// session threw.
inline int run(const char* name, asio::io_context& ioc, asio::awaitable<void> session,
               std::function<void()> close_all) {
  int status = 0;
  asio::co_spawn(ioc, std::move(session), [&](std::exception_ptr e) {
    if (e) {
      status = 1;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "%s: %s\n", name, x.what());
      }
    }
    close_all();
  });
  ioc.run();
  return status;
}

}  // namespace example
