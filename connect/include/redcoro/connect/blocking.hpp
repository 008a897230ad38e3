#pragma once

#include <redcoro/connect/handle.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

namespace redcoro {

/// The handle for code that is not asynchronous (command-line tools, tests, the parts of a
/// game server outside its loop): plain calls that return the reply, driven by an I/O
/// thread of its own. Any number of threads may call at once; their requests are
/// multiplexed on the same connection(s), as coroutines' are.
///
/// \code
///   redcoro::blocking_handle redis("redis://127.0.0.1:6379");
///   auto n = redis.exec(redcoro::cmd::incr("visits")).value();   // value() throws a server error
/// \endcode
///
/// A call blocks its thread until the reply (or the request's timeout, or the connection's
/// end). Transport errors throw std::system_error, or go to `ec` in the overloads that take
/// one; a server's error reply is in the result, as with async_exec. Never call it from the
/// handle's own I/O thread (a callback of this handle): that thread is the one that would
/// answer it.
namespace detail {

/// One call of a blocking_handle: queued by the calling thread, started on the I/O thread,
/// finished there, waited for by the caller.
struct blocking_call {
  void (*start)(blocking_call&, handle&) = nullptr;
  blocking_call* next = nullptr;
  std::atomic<std::uint32_t> state{0};  // futex word: 0 running, 1 caller asleep, 2 done
  /// Wakes the caller (on the I/O thread, once the result is stored).
  void finish() noexcept;
};

}  // namespace detail

class blocking_handle {
 public:
  explicit blocking_handle(handle_config cfg);
  explicit blocking_handle(std::string_view url, const connection_config& defaults = {});
  /// Closes the handle and joins the I/O thread; calls still waiting fail with error::closed.
  ~blocking_handle();
  blocking_handle(const blocking_handle&) = delete;
  blocking_handle& operator=(const blocking_handle&) = delete;

  /// Runs a command, pipeline or transaction and returns its value.
  template <owned_request X>
  typename X::value_type exec(X x) {
    error_code ec;
    auto v = exec(std::move(x), ec);
    if (ec) throw std::system_error(ec, "redcoro::blocking_handle::exec");
    return v;
  }
  template <owned_request X>
  typename X::value_type exec(X x, error_code& ec) {
    using value = typename X::value_type;
    struct call : detail::blocking_call {
      X request;
      std::optional<value> result;
      error_code ec;
      explicit call(X r) : request(std::move(r)) {
        start = [](detail::blocking_call& self, handle& h) {
          auto& c = static_cast<call&>(self);
          h.async_exec(std::move(c.request), [&c](error_code e, value v) {
            c.ec = e;
            c.result.emplace(std::move(v));
            c.finish();
          });
        };
      }
    } c(std::move(x));
    run(c);
    ec = c.ec;
    return std::move(*c.result);
  }

  /// handle::async_health, waited for.
  health_report health(std::chrono::milliseconds bound = std::chrono::milliseconds(1000));
  /// handle::async_wait_ready, waited for: true when the deployment answered within `bound`.
  bool wait_ready(std::chrono::milliseconds bound);

  /// The handle the I/O thread drives: use it only from that thread (asio::post to
  /// get_executor()).
  handle& async_handle() noexcept { return handle_; }
  handle::executor_type get_executor() const noexcept { return handle_.get_executor(); }

 private:
  // Queues the call, starts the I/O thread's drain if none is pending, and sleeps until the
  // call is finished.
  void run(detail::blocking_call& c);
  void drain();
  template <class T, class Start>
  T wait_for(Start start);

  asio::io_context io_{1};
  // Calls queued by callers and not yet started (newest first). Only the caller that finds
  // it empty posts a drain, so 64 callers cost one wake of the I/O thread, not 64.
  std::atomic<detail::blocking_call*> queued_{nullptr};
  handle handle_;
  std::thread thread_;
};

}  // namespace redcoro
