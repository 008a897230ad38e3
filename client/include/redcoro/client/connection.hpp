#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/config.hpp>
#include <redcoro/client/detail/exec_entry.hpp>
#include <redcoro/client/detail/operation.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/client/metrics.hpp>
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

namespace detail {
using any_value_handler = asio::any_completion_handler<void(error_code, proto::value)>;
}

/// An Asio execution context (io_context, thread_pool...): what the convenience constructors
/// take, so that the headers need not include io_context.hpp.
template <class T>
concept execution_context = std::is_convertible_v<T&, asio::execution_context&> && requires(T& c) {
  c.get_executor();
};

class connection;

namespace detail {
struct connection_impl;

// The services of the operation layer (detail/operation.hpp); defined in connection.cpp.
void* allocate_op(connection_impl& c, std::size_t size);
void deallocate_op(connection_impl& c, void* p, std::size_t size) noexcept;
const asio::any_io_executor& executor_of(const connection_impl& c) noexcept;
bool initiating(const connection_impl& c) noexcept;
// Queues the entry (or completes it at once with the reason it cannot be queued).
void start_exec(connection_impl& c, exec_entry& e);
void cancel_exec(connection_impl& c, exec_entry& e, asio::cancellation_type type);

/// For layers that decode pushes themselves (the subscriber): push frames go to `sink`, as
/// nodes viewing the read buffer, instead of being queued for async_receive_push. While
/// `sink->paused()` the connection stops reading; call resume_reading() when it has room.
/// On RESP2, top-level arrays that are pub/sub frames ("message", "subscribe", ...) go to
/// the sink too: such a connection is dedicated to pub/sub, as RESP2 requires.
/// `sink` must outlive the connection's run; nullptr restores the queue.
void set_push_sink(connection& c, push_sink* sink) noexcept;
void resume_reading(connection& c) noexcept;
/// The implementation, for a layer that queues its own entries on the connection (the
/// handle): start_exec / cancel_exec / initiating above.
connection_impl& impl_of(connection& c) noexcept;

// async_receive_push: queues the waiter, or completes it at once with a queued push.
void receive_push(connection_impl& c, any_value_handler handler);
std::optional<proto::value> take_push(connection_impl& c);

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
    return detail::initiate_exec<detail::exec_entry>(*impl_, req, resp, std::forward<Token>(token));
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
    return detail::initiate_exec<detail::exec_entry>(*impl_, std::move(x),
                                                     std::forward<Token>(token));
  }

  /// Waits for the next push message (RESP3 `>`: pub/sub messages and confirmations, client
  /// tracking invalidations) and completes with it. Pushes are queued, up to
  /// connection_config::max_queued_pushes, whether or not a receive is waiting. One receive at a
  /// time; a second one completes with `already_started`.
  template <class Token>
  auto async_receive_push(Token&& token) {
    return asio::async_initiate<Token, void(error_code, proto::value)>(
        [this](auto handler) {
          detail::receive_push(*impl_, detail::any_value_handler(std::move(handler)));
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
  /// to retry; waiting ones go out on the new connection. While async_run waits out the
  /// backoff after a failed attempt, it tries again at once instead.
  void reconnect();

  /// Protocol of the current connection: 3, 2, or 0 while not connected.
  int protocol() const noexcept;
  /// True between a successful handshake and the next disconnect.
  bool is_connected() const noexcept;
  /// True once async_run has ended (close(), or reconnect_policy::max_attempts failed in a
  /// row): the connection serves no more requests.
  bool run_ended() const noexcept;
  /// What this connection did so far (connection_config::metrics), with its gauges now.
  connection_metrics metrics() const;
  /// Where the current (or last) session goes, as logs and metrics name it: "host:port", or
  /// "unix:/path"; "(no address yet)" before an address provider answered.
  const std::string& address() const noexcept;
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
  friend detail::connection_impl& detail::impl_of(connection& c) noexcept;

  std::unique_ptr<detail::connection_impl> impl_;
};

}  // namespace redcoro

namespace boost::system {
template <>
struct is_error_code_enum<redcoro::error> : std::true_type {};
template <>
struct is_error_code_enum<redcoro::proto::error> : std::true_type {};
}  // namespace boost::system
