#include <redcoro/connect/blocking.hpp>

namespace redcoro {

namespace {

// Runs `start(done)` on the I/O thread and waits for `done(value)`.
template <class T, class Start>
T wait_for(asio::io_context& io, Start start) {
  struct call {
    std::optional<T> result;
    std::atomic<bool> done{false};
  } c;
  asio::post(io, [&c, start = std::move(start)]() mutable {
    start([&c](T v) {
      c.result.emplace(std::move(v));
      c.done.store(true, std::memory_order_release);
      c.done.notify_one();
    });
  });
  c.done.wait(false, std::memory_order_acquire);
  return std::move(*c.result);
}

}  // namespace

blocking_handle::blocking_handle(handle_config cfg)
    : handle_(io_.get_executor(), std::move(cfg)), thread_([this] { io_.run(); }) {}

blocking_handle::blocking_handle(std::string_view url, const connection_config& defaults)
    : blocking_handle(make_handle_config(url, defaults)) {}

blocking_handle::~blocking_handle() {
  asio::post(io_, [this] { handle_.close(); });
  thread_.join();
}

health_report blocking_handle::health(std::chrono::milliseconds bound) {
  return wait_for<health_report>(io_, [this, bound](auto done) {
    handle_.async_health(bound, [done = std::move(done)](error_code ec, health_report r) mutable {
      if (ec && r.reason.empty()) r.reason = ec.message();
      done(std::move(r));
    });
  });
}

bool blocking_handle::wait_ready(std::chrono::milliseconds bound) {
  return wait_for<bool>(io_, [this, bound](auto done) {
    handle_.async_wait_ready(
        bound, [done = std::move(done)](error_code ec, bool ok) mutable { done(!ec && ok); });
  });
}

}  // namespace redcoro
