#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/config.hpp>
#include <redcoro/client/detail/multiplexer.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/value.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace redcoro {

namespace asio = boost::asio;
using boost::system::error_code;

/// An Asio execution context (io_context, thread_pool...): what the convenience constructors
/// take, so that the headers need not include io_context.hpp.
template <class T>
concept execution_context = std::is_convertible_v<T&, asio::execution_context&> && requires(T& c) {
  c.get_executor();
};

class connection;

namespace detail {
struct connection_impl;

// The typed part of one async_exec: the caller's response adapter and handler, in one block
// from the connection's pool. Everything else is the non-template exec_entry.
template <class Response, class Handler>
struct exec_op final : exec_entry {
  exec_op(connection_impl& c, const proto::request& r, Response& resp, Handler&& h)
      : exec_entry(r, proto::any_adapter(adapter_impl), &finish),
        conn(&c),
        adapter_impl(resp),
        handler(std::move(h)) {}

  static void finish(exec_entry& base, std::error_code ec);

  connection_impl* conn;
  proto::response_adapter<Response> adapter_impl;
  Handler handler;
};

// Non-template services the typed ops use; defined in connection.cpp.
void* allocate_op(connection_impl& c, std::size_t size);
void deallocate_op(connection_impl& c, void* p, std::size_t size) noexcept;
const asio::any_io_executor& executor_of(const connection_impl& c) noexcept;
// Queues the entry (or completes it at once with the reason it cannot be queued).
void start_exec(connection_impl& c, exec_entry& e);
void cancel_exec(connection_impl& c, exec_entry& e, asio::cancellation_type type);
// True while start_exec runs: a completion then must not call the handler inline.
bool initiating(const connection_impl& c) noexcept;

struct exec_cancel {
  connection_impl* conn;
  exec_entry* entry;
  void operator()(asio::cancellation_type type) const { cancel_exec(*conn, *entry, type); }
};

// Completes `h` from an operation of an object living on `own`: at once when the caller
// runs there too and we are not inside the initiating function, else through the handler's
// executor.
template <class Handler, class... Args>
void complete_on(const asio::any_io_executor& own, bool initiating, Handler&& h, Args&&... args) {
  if (!initiating) {
    auto ex = asio::get_associated_executor(h, own);
    if constexpr (std::is_same_v<decltype(ex), asio::any_io_executor>) {
      // The common case: the caller runs on the same executor, and we are on it now
      // (in the reader, writer or timer loop), so it resumes at once, with no queue hop.
      if (ex == own) {
        std::move(h)(std::forward<Args>(args)...);
        return;
      }
    }
  }
  // Through the handler's own executor, never inside the initiating function.
  auto ex = asio::get_associated_executor(h, own);
  asio::post(ex, [h = std::move(h), ... a = std::forward<Args>(args)]() mutable {
    std::move(h)(std::move(a)...);
  });
}

template <class Handler, class... Args>
void complete_handler(connection_impl& c, Handler&& h, Args&&... args) {
  complete_on(executor_of(c), initiating(c), std::forward<Handler>(h), std::forward<Args>(args)...);
}

// Ends an op: disconnects its cancellation slot, frees its block, then completes its
// handler with `args` (values, not references into the block).
template <class Op, class... Args>
void end_op(Op& self, Args... args) {
  connection_impl& c = *self.conn;
  auto slot = asio::get_associated_cancellation_slot(self.handler);
  if (slot.is_connected()) slot.clear();
  auto h = std::move(self.handler);
  // Free the block before resuming the caller, who may start the next request at once.
  self.~Op();
  deallocate_op(c, &self, sizeof(Op));
  complete_handler(c, std::move(h), std::move(args)...);
}

template <class Response, class Handler>
void exec_op<Response, Handler>::finish(exec_entry& base, std::error_code ec) {
  auto& self = static_cast<exec_op&>(base);
  end_op(self, error_code(ec), self.bytes_read);
}

// The error of reply `i` of a typed response, or nullptr.
template <class... Ts>
const proto::reply_error* reply_error_at(const std::tuple<proto::result<Ts>...>& r, std::size_t i) {
  const proto::reply_error* out = nullptr;
  std::apply(
      [&](const auto&... each) {
        std::size_t k = 0;
        ((k++ == i && each.has_error() ? (void)(out = &each.error()) : void()), ...);
      },
      r);
  return out;
}

struct script_retry;
using reply_error_fn = std::function<const proto::reply_error*(std::size_t)>;
// When replies of `e` were NOSCRIPT for commands in `scripts`, sends those commands again
// as EVAL, their replies going to the same slots, and returns true; `state` then holds
// what the resend needs until free_script_retry.
bool retry_scripts(connection_impl& c, exec_entry& e, std::span<const script_ref> scripts,
                   const reply_error_fn& error_at, script_retry*& state);
void free_script_retry(script_retry*& state) noexcept;

// async_exec of a command, pipeline or transaction: the op's block also holds the request
// and the response, and the caller gets X::take(response).
template <class X, class Handler>
struct owned_exec_op final : exec_entry {
  owned_exec_op(connection_impl& c, X&& x, Handler&& h)
      : exec_entry(x.request(), proto::any_adapter(adapter_impl), &finish),
        conn(&c),
        owned(std::move(x)),
        adapter_impl(response),
        handler(std::move(h)) {
    req = &owned.request();
  }

  static void finish(exec_entry& base, std::error_code ec) {
    auto& self = static_cast<owned_exec_op&>(base);
    if constexpr (requires { self.owned.scripts(); }) {
      if (!ec && !self.retry && !self.owned.scripts().empty()) {
        auto error_at = [&self](std::size_t i) { return reply_error_at(self.response, i); };
        if (retry_scripts(*self.conn, self, self.owned.scripts(), error_at, self.retry)) return;
      }
      free_script_retry(self.retry);
    }
    end_op(self, error_code(ec), X::take(self.response));
  }

  connection_impl* conn;
  script_retry* retry = nullptr;  // the EVAL resend after NOSCRIPT, while it runs
  X owned;
  typename X::response_type response{};
  proto::response_adapter<typename X::response_type> adapter_impl;
  Handler handler;
};

// Allocates and starts an op, connecting the handler's cancellation slot first.
template <class Op, class... Args>
void launch_op(connection_impl& c, Args&&... args) {
  auto* o = ::new (allocate_op(c, sizeof(Op))) Op(c, std::forward<Args>(args)...);
  auto slot = asio::get_associated_cancellation_slot(o->handler);
  if (slot.is_connected()) slot.template emplace<exec_cancel>(exec_cancel{&c, o});
  start_exec(c, *o);
}

// Something waiting for one push message: async_receive_push.
class value_waiter {
 public:
  // Completes the caller's handler and frees the waiter.
  virtual void complete(error_code ec, proto::value v) = 0;

 protected:
  ~value_waiter() = default;
};

template <class Handler>
class value_op final : public value_waiter {
 public:
  value_op(connection_impl& c, Handler&& h) : conn_(&c), handler(std::move(h)) {}
  void complete(error_code ec, proto::value v) override {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.clear();
    Handler h = std::move(handler);
    connection_impl& c = *conn_;
    delete this;
    complete_handler(c, std::move(h), ec, std::move(v));
  }

 private:
  connection_impl* conn_;

 public:
  Handler handler;
};

/// For layers that decode pushes themselves (the subscriber): push frames go to `sink`, as
/// nodes viewing the read buffer, instead of being queued for async_receive_push. While
/// `sink->paused()` the connection stops reading; call resume_reading() when it has room.
/// On RESP2, top-level arrays that are pub/sub frames ("message", "subscribe", ...) go to
/// the sink too: such a connection is dedicated to pub/sub, as RESP2 requires.
/// `sink` must outlive the connection's run; nullptr restores the queue.
void set_push_sink(connection& c, push_sink* sink) noexcept;
void resume_reading(connection& c) noexcept;

// The oldest queued push, if any.
std::optional<proto::value> take_push(connection_impl& c);
// Queues a push receiver, or completes it at once with a queued push.
void receive_push(connection_impl& c, value_waiter& waiter);

}  // namespace detail

/// One multiplexed connection to a Redis server.
///
/// \code
///   redcoro::connection conn(ioc.get_executor(), cfg);
///   conn.async_run(asio::detached);          // connects, and reconnects until closed
///   redcoro::proto::request req;
///   req.push("INCR", "visits");
///   redcoro::proto::response<std::int64_t> resp;
///   co_await conn.async_exec(req, resp, asio::use_awaitable);
/// \endcode
///
/// Threads: a connection belongs to its executor. Call its functions from code running on
/// that executor (a coroutine spawned on it, a handler bound to it). Other threads submit
/// work with `asio::post(conn.get_executor(), ...)` or `asio::co_spawn(conn.get_executor(),
/// ...)`; see the README. Nothing in it takes a lock.
///
/// Lifetime: `request` and `response` objects passed to async_exec must live until it
/// completes. Destroy the connection only after async_run has completed (call close() and
/// wait for it).
class connection {
 public:
  using executor_type = asio::any_io_executor;

  explicit connection(executor_type ex, connection_config cfg = {});
  /// On an execution context's executor (an io_context, a thread_pool).
  template <execution_context Context>
  explicit connection(Context& ctx, connection_config cfg = {})
      : connection(executor_type(ctx.get_executor()), std::move(cfg)) {}
  ~connection();

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  executor_type get_executor() const noexcept;
  const redcoro::connection_config& get_config() const noexcept;

  /// Connects, handshakes, and keeps the connection up: reads, writes, health checks and
  /// reconnects with backoff until close() or cancellation. Completes with the reason it
  /// stopped: error::closed after close(), operation_aborted when cancelled, or the last
  /// connection error once reconnect_policy::max_attempts failed in a row. Every request
  /// still queued then completes with error::closed.
  template <class Token>
  auto async_run(Token&& token) {
    return asio::async_initiate<Token, void(error_code)>(
        [this](auto handler) {
          run_impl(asio::any_completion_handler<void(error_code)>(std::move(handler)));
        },
        token);
  }

  /// Sends the commands of `req` and decodes their replies into `resp` (see
  /// proto::response). Completes with the number of bytes read for it, or an error:
  /// error::timeout, error::connection_lost, error::queue_full, error::not_connected,
  /// error::closed, operation_aborted when cancelled, or a proto::error when the server's
  /// bytes were malformed (the connection then reconnects). A server's error reply is not
  /// an error here: it is in the response slot of that command.
  ///
  /// Supports per-operation cancellation (terminal, partial, and total while the request has
  /// not been written); a cancelled request's late replies are read and dropped.
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const proto::request* r, Response* out) {
          detail::launch_op<detail::exec_op<Response, decltype(handler)>>(*impl_, *r, *out,
                                                                          std::move(handler));
        },
        token, &req, &resp);
  }

  /// Runs a command, pipeline or transaction that carries its reply types (see
  /// command.hpp) and completes with its value: `result<T>` for `command<T>`, a tuple of
  /// results for a pipeline, `result<optional<tuple<...>>>` for a transaction. Errors,
  /// cancellation and timeouts as for the call above; a server's error reply is in the
  /// result, with its message.
  /// \code
  ///   auto v = co_await conn.async_exec(redcoro::command("HINCRBY", "h", "f", 1), tok);
  ///   std::int64_t n = v.value().to_integer();   // value() throws the server's error
  /// \endcode
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return asio::async_initiate<Token, void(error_code, typename X::value_type)>(
        [this](auto handler, X owned) {
          detail::launch_op<detail::owned_exec_op<X, decltype(handler)>>(*impl_, std::move(owned),
                                                                         std::move(handler));
        },
        token, std::move(x));
  }

  /// Waits for the next push message (RESP3 `>`: pub/sub messages and confirmations, client
  /// tracking invalidations) and completes with it. Pushes are queued, up to
  /// connection_config::max_queued_pushes, whether or not a receive is waiting. One receive at a
  /// time; a second one completes with `already_started`.
  template <class Token>
  auto async_receive_push(Token&& token) {
    return asio::async_initiate<Token, void(error_code, proto::value)>(
        [this](auto handler) {
          detail::receive_push(
              *impl_, *new detail::value_op<decltype(handler)>(*impl_, std::move(handler)));
        },
        token);
  }

  /// The oldest queued push message without waiting, or nullopt: drains what arrived in one
  /// read without a completion per message.
  std::optional<proto::value> try_receive_push();

  /// Stops async_run: closes the socket, fails every queued request with error::closed.
  void close();
  /// Drops the current connection, as if the server had; async_run reconnects (with the
  /// usual backoff). Written requests fail with error::connection_lost unless marked safe
  /// to retry; waiting ones go out on the new connection.
  void reconnect();

  /// Protocol of the current connection: 3, 2, or 0 while not connected.
  int protocol() const noexcept;
  /// True between a successful handshake and the next disconnect.
  bool is_connected() const noexcept;
  /// True once async_run has ended (close(), or reconnect_policy::max_attempts failed in a
  /// row): the connection serves no more requests.
  bool run_ended() const noexcept;
  /// Requests queued or written and not yet answered, counting those whose caller gave up
  /// (their replies are still to be read and dropped).
  std::size_t pending_requests() const noexcept;
  /// How long the server has owed a reply without sending a byte: zero when nothing is in
  /// flight. A blocking command (BLPOP) counts while it blocks. Past the health-check
  /// interval (plus the block time of a blocking command) the connection is dropped as dead.
  std::chrono::steady_clock::duration unanswered_for() const noexcept;

 private:
  void run_impl(asio::any_completion_handler<void(error_code)> handler);
  friend void detail::set_push_sink(connection& c, detail::push_sink* sink) noexcept;
  friend void detail::resume_reading(connection& c) noexcept;

  std::unique_ptr<detail::connection_impl> impl_;
};

}  // namespace redcoro

namespace boost::system {
template <>
struct is_error_code_enum<redcoro::error> : std::true_type {};
template <>
struct is_error_code_enum<redcoro::proto::error> : std::true_type {};
}  // namespace boost::system
