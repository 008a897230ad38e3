#pragma once

#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/value.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

/// \file
/// Commands that carry the C++ type of their replies, for connection::async_exec:
///
/// \code
///   auto n = co_await conn.async_exec(redcoro::command<std::int64_t>("INCR", "hits"), tok);
///   auto v = co_await conn.async_exec(redcoro::command("HINCRBY", "h", "f", 1), tok);  // value
///   auto [ok, got] = co_await conn.async_exec(redcoro::pipeline(cmd::set("k", "v"),
///                                                               cmd::get("k")), tok);
///   auto tx = co_await conn.async_exec(redcoro::transaction(cmd::incr("a"),
///                                                           cmd::incr("b")), tok);
/// \endcode
///
/// Each is a proto::request plus a type: the connection runs it through the same path as
/// async_exec(request, response), with the response kept in the operation's own block.

namespace redcoro {

/// One command whose reply is decoded into T (proto::value, the default, takes any reply).
/// async_exec completes with `proto::result<T>`: the value, or the server's error reply.
template <class T = proto::value>
class command {
 public:
  using reply_type = T;
  using response_type = proto::response<T>;
  using value_type = proto::result<T>;

  template <class... Args>
  explicit command(std::string_view name, const Args&... args) {
    req_.push(name, args...);
  }
  /// A request holding exactly one command.
  explicit command(proto::request req) : req_(std::move(req)) {}

  const proto::request& request() const noexcept { return req_; }
  proto::request& request() noexcept { return req_; }

  static value_type take(response_type& r) { return std::move(std::get<0>(r)); }

 private:
  proto::request req_;
};

template <class... Args>
command(std::string_view, const Args&...) -> command<proto::value>;

/// Several commands sent together; async_exec completes with `std::tuple<result<Ts>...>`,
/// one result per command, in order.
template <class... Ts>
class pipeline {
 public:
  using response_type = proto::response<Ts...>;
  using value_type = response_type;

  explicit pipeline(const command<Ts>&... cmds) { (req_.append(cmds.request()), ...); }

  const proto::request& request() const noexcept { return req_; }
  proto::request& request() noexcept { return req_; }

  static value_type take(response_type& r) { return std::move(r); }

 private:
  proto::request req_;
};

namespace detail {
template <std::size_t N, class Tail>
struct queued_replies;
template <std::size_t N, class... Ts>
struct queued_replies<N, std::tuple<Ts...>>
    : queued_replies<N - 1, std::tuple<proto::ignore_t, Ts...>> {};
template <class... Ts>
struct queued_replies<0, std::tuple<Ts...>> {
  using type = proto::response<Ts...>;
};
}  // namespace detail

/// `MULTI`, the commands, `EXEC`, in one request: the server runs them atomically. Completes
/// with `result<std::optional<std::tuple<result<Ts>...>>>`:
///  - an error when the transaction was refused (EXECABORT: its message then also names the
///    first command the server refused to queue, such as a wrong number of arguments);
///  - `std::nullopt` when EXEC aborted because a WATCHed key changed (see
///    client::async_optimistic for the retry loop);
///  - otherwise one result per command; a command that failed while running (WRONGTYPE, say)
///    holds its error, the others their values.
template <class... Ts>
class transaction {
 public:
  using exec_type = std::optional<std::tuple<proto::result<Ts>...>>;
  // MULTI's +OK, one +QUEUED per command, then EXEC's array.
  using response_type =
      typename detail::queued_replies<1 + sizeof...(Ts), std::tuple<exec_type>>::type;
  using value_type = proto::result<exec_type>;

  explicit transaction(const command<Ts>&... cmds) {
    req_.push("MULTI");
    (req_.append(cmds.request()), ...);
    req_.push("EXEC");
  }

  const proto::request& request() const noexcept { return req_; }
  proto::request& request() noexcept { return req_; }

  static value_type take(response_type& r) {
    value_type out = std::move(std::get<sizeof...(Ts) + 1>(r));
    // EXEC only says that something was refused; name what it was.
    if (out.has_error()) {
      if (const proto::reply_error* cause =
              first_refused(r, std::make_index_sequence<sizeof...(Ts) + 1>{}))
        out.error_storage().message += " (" + cause->message + ")";
    }
    return out;
  }

 private:
  // The first error among MULTI's and the QUEUED replies.
  template <std::size_t... I>
  static const proto::reply_error* first_refused(const response_type& r,
                                                 std::index_sequence<I...>) {
    const proto::reply_error* first = nullptr;
    ((!first && std::get<I>(r).has_error() ? (void)(first = &std::get<I>(r).error()) : void()),
     ...);
    return first;
  }

  proto::request req_;
};

/// A type that connection::async_exec runs by itself: a request, the response to decode it
/// into, and what to complete with.
template <class X>
concept owned_request = requires(X& x, typename X::response_type& r) {
  { std::as_const(x).request() } -> std::same_as<const proto::request&>;
  { X::take(r) } -> std::same_as<typename X::value_type>;
};

}  // namespace redcoro
