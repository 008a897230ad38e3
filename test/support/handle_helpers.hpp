#pragma once

// Tests over a redcoro::handle: run a body with a handle made from a config, bounded, and close
// the handle afterwards, also when the body failed.
#include "support/client_helpers.hpp"
#include <redcoro/connect/handle.hpp>

#include <chrono>
#include <exception>
#include <functional>

namespace redcoro::test {

/// Runs `body` with a handle made from `cfg` (after it answered, when `wait_ready`), at most
/// `limit`, and closes the handle afterwards.
inline void with_handle(handle_config cfg,
                        const std::function<asio::awaitable<void>(handle&)>& body,
                        std::chrono::seconds limit = std::chrono::seconds(90),
                        bool wait_ready = true) {
  asio::io_context ioc;
  handle h(ioc, std::move(cfg));
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::exception_ptr failure;
        try {
          if (wait_ready) {
            auto ready = co_await h.async_wait_ready(std::chrono::seconds(10), asio::use_awaitable);
            REQUIRE(ready);
          }
          co_await body(h);
        } catch (...) {
          failure = std::current_exception();
        }
        h.close();
        if (failure) std::rethrow_exception(failure);
      },
      limit);
}

}  // namespace redcoro::test
