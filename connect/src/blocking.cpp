#include <redcoro/connect/blocking.hpp>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace redcoro {

namespace detail {

// The calling thread sleeps on the call's own word: no spinning, no yielding, no shared
// waiter table; the I/O thread makes a system call only for a caller that is asleep.
static void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            nullptr, nullptr, 0);
}

static void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

void blocking_call::finish() noexcept {
  if (state.exchange(2, std::memory_order_acq_rel) == 1) futex_wake(state);
}

}  // namespace detail

void blocking_handle::run(detail::blocking_call& c) {
  auto* head = queued_.load(std::memory_order_relaxed);
  do {
    c.next = head;
  } while (!queued_.compare_exchange_weak(head, &c, std::memory_order_release,
                                          std::memory_order_relaxed));
  if (!head) asio::post(io_, [this] { drain(); });
  std::uint32_t s = 0;
  if (c.state.compare_exchange_strong(s, 1, std::memory_order_acquire)) s = 1;
  while (s != 2) {
    detail::futex_wait(c.state, 1);
    s = c.state.load(std::memory_order_acquire);
  }
}

void blocking_handle::drain() {
  // Taken newest first: started oldest first, as they were called.
  auto* c = queued_.exchange(nullptr, std::memory_order_acquire);
  detail::blocking_call* oldest = nullptr;
  while (c) {
    auto* next = c->next;
    c->next = oldest;
    oldest = c;
    c = next;
  }
  while (oldest) {
    auto* next = oldest->next;  // read first: starting a call may finish it, and free it
    oldest->start(*oldest, handle_);
    oldest = next;
  }
}

blocking_handle::blocking_handle(handle_config cfg)
    : handle_(io_.get_executor(), std::move(cfg)), thread_([this] { io_.run(); }) {}

blocking_handle::blocking_handle(std::string_view url, const connection_config& defaults)
    : blocking_handle(make_handle_config(url, defaults)) {}

blocking_handle::~blocking_handle() {
  asio::post(io_, [this] { handle_.close(); });
  thread_.join();
}

// Runs `start(handle, done)` on the I/O thread and waits for `done(value)`.
template <class T, class Start>
T blocking_handle::wait_for(Start start) {
  struct call : detail::blocking_call {
    Start begin;
    std::optional<T> result;
    explicit call(Start s) : begin(std::move(s)) {
      this->start = [](detail::blocking_call& self, handle& h) {
        auto& c = static_cast<call&>(self);
        c.begin(h, [&c](T v) {
          c.result.emplace(std::move(v));
          c.finish();
        });
      };
    }
  } c(std::move(start));
  run(c);
  return std::move(*c.result);
}

health_report blocking_handle::health(std::chrono::milliseconds bound) {
  return wait_for<health_report>([bound](handle& h, auto done) {
    h.async_health(bound, [done = std::move(done)](error_code ec, health_report r) mutable {
      if (ec && r.reason.empty()) r.reason = ec.message();
      done(std::move(r));
    });
  });
}

bool blocking_handle::wait_ready(std::chrono::milliseconds bound) {
  return wait_for<bool>([bound](handle& h, auto done) {
    h.async_wait_ready(
        bound, [done = std::move(done)](error_code ec, bool ok) mutable { done(!ec && ok); });
  });
}

}  // namespace redcoro
