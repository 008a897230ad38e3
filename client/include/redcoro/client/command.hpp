#pragma once

#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/value.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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

/// A command of a request that runs a Lua script by its SHA1 (see script.hpp): if the server
/// answers NOSCRIPT, the connection sends it once more as EVAL with this source.
struct script_ref {
  std::size_t index;  ///< the command's position in its request
  std::shared_ptr<const std::string> source;
};

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
    req_.push(name, args...);  // (a small command stays inside the request: no allocation)
  }
  /// The same for a name known at compile time (`"GET"_cmd`, proto/command_name.hpp):
  /// nothing is looked up. The helpers in commands.hpp are built this way.
  template <class... Args>
  explicit command(const proto::command_name& name, const Args&... args) {
    req_.push(name, args...);
  }
  /// A request holding exactly one command.
  explicit command(proto::request req) : req_(std::move(req)) {}

  const proto::request& request() const noexcept { return req_; }
  proto::request& request() noexcept { return req_; }

  static value_type take(response_type& r) { return std::move(std::get<0>(r)); }

  /// Marks this command as an EVALSHA of `source` (script.hpp does it).
  void set_script(std::shared_ptr<const std::string> source) {
    script_ = script_ref{0, std::move(source)};
  }
  std::span<const script_ref> scripts() const noexcept {
    return script_ ? std::span<const script_ref>(&*script_, 1) : std::span<const script_ref>();
  }

 private:
  proto::request req_;
  std::optional<script_ref> script_;
};

template <class... Args>
command(std::string_view, const Args&...) -> command<proto::value>;
template <class... Args>
command(const proto::command_name&, const Args&...) -> command<proto::value>;

/// Several commands sent together; async_exec completes with `std::tuple<result<Ts>...>`,
/// one result per command, in order.
template <class... Ts>
class pipeline {
 public:
  using response_type = proto::response<Ts...>;
  using value_type = response_type;

  explicit pipeline(const command<Ts>&... cmds) { (add(cmds), ...); }

  const proto::request& request() const noexcept { return req_; }
  proto::request& request() noexcept { return req_; }

  static value_type take(response_type& r) { return std::move(r); }

  std::span<const script_ref> scripts() const noexcept { return scripts_; }

 private:
  template <class T>
  void add(const command<T>& c) {
    for (const script_ref& s : c.scripts())
      scripts_.push_back({req_.commands(), s.source});
    req_.append(c.request());
  }

  proto::request req_;
  std::vector<script_ref> scripts_;  // empty unless a command runs a script
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

/// `MULTI`, the commands, `EXEC`, in one request: the server runs them atomically. A script
/// inside a transaction is not retried on NOSCRIPT (that would break the atomicity): load
/// it first with script::load(). Completes
/// with `result<std::optional<std::tuple<result<Ts>...>>>`:
///  - an error when the transaction was refused (EXECABORT: its message then also names the
///    first command the server refused to queue, such as a wrong number of arguments);
///  - `std::nullopt` when EXEC aborted because a WATCHed key changed (see
///    client::optimistic for the retry loop);
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
