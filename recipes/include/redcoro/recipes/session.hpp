#pragma once

#include <redcoro/cache/codec.hpp>
#include <redcoro/client/detail/dedicated.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/recipes/error.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace redcoro::recipes {

namespace asio = boost::asio;

/// Settings of a session_store.
struct session_options {
  /// Put before every key of the store (after the connection's own key_prefix, if any). No
  /// braces: the user's hash tag follows it.
  std::string prefix = "session:";
  /// Sliding expiry: a session not read, updated or touched for this long is gone.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(30);
  /// Absolute cap: a session is gone this long after it was created, however often it is
  /// used. Measured with the server's clock. At least idle_timeout is not required: the cap
  /// wins when it comes first.
  std::chrono::milliseconds max_lifetime = std::chrono::hours(12);
  /// Whether a get() slides the expiry like touch() (the usual "active session" rule).
  bool touch_on_get = true;
};

/// One session of a user (session_store::async_list).
struct session_info {
  std::string id;
  /// Time left before it expires (sliding expiry or the cap, whichever comes first).
  std::chrono::milliseconds expires_in{0};
};

namespace detail {

struct session_state;

// The non-template operations: each one script, one round trip. Errors as codes:
// error::session_not_found, error::invalid_argument, transport errors, and
// proto::error::server_error for a server's error reply.
asio::awaitable<std::pair<error_code, std::string>> session_create(std::shared_ptr<session_state> s,
                                                                   std::string user,
                                                                   std::string bytes);
asio::awaitable<std::pair<error_code, std::string>> session_get(std::shared_ptr<session_state> s,
                                                                std::string id);
asio::awaitable<std::pair<error_code, std::chrono::milliseconds>> session_update(
    std::shared_ptr<session_state> s, std::string id, std::string bytes);
asio::awaitable<std::pair<error_code, std::chrono::milliseconds>> session_touch(
    std::shared_ptr<session_state> s, std::string id);
asio::awaitable<std::pair<error_code, bool>> session_destroy(std::shared_ptr<session_state> s,
                                                             std::string id);
asio::awaitable<std::pair<error_code, std::vector<session_info>>> session_list(
    std::shared_ptr<session_state> s, std::string user);
asio::awaitable<std::pair<error_code, std::int64_t>> session_destroy_all(
    std::shared_ptr<session_state> s, std::string user);
std::shared_ptr<session_state> make_session_state(handle h, session_options o);
const handle& redis_of(const session_state& s) noexcept;
const session_options& options_of(const session_state& s) noexcept;

// The thin typed part: the stored bytes decoded as a T.
template <class T>
asio::awaitable<std::pair<error_code, T>> decode_session(
    asio::awaitable<std::pair<error_code, std::string>> got) {
  auto [ec, bytes] = co_await std::move(got);
  T value{};
  if (!ec) {
    cache::codec_error where;
    ec = error_code(cache::decode(bytes, value, where));
  }
  co_return std::pair{ec, std::move(value)};
}

}  // namespace detail

/// Server-side sessions of users: data of any type the cache's codec stores (a
/// `BOOST_DESCRIBE_STRUCT` struct becomes JSON), a sliding expiry and an absolute lifetime
/// cap, and an index per user to list or end all of one user's sessions.
///
/// \code
///   redcoro::recipes::session_store sessions(redis, {.prefix = "sess:",
///                                                    .idle_timeout = 30min,
///                                                    .max_lifetime = 12h});
///   std::string id = co_await sessions.async_create("alice", cart{}, asio::use_awaitable);
///   cart c = co_await sessions.async_get<cart>(id, asio::use_awaitable);
///   co_await sessions.async_destroy_all("alice", asio::use_awaitable);
/// \endcode
///
/// Every operation is one Lua script (one round trip) that reads the server's `TIME`, so the
/// cap and the sliding expiry never depend on the client's clock. The keys of one user share
/// the hash tag `{user}` (`<prefix>{alice}:s:<token>`, `<prefix>{alice}:idx`), so that on a
/// cluster all of them live in one slot and destroy-all is one script. The session id is
/// `<token>.<user>`: 32 characters of base64url from 192 random bits (the kernel's CSPRNG,
/// getrandom(2)), a dot, then the user. The token is the secret; the user name in it is not
/// (pass an opaque user key when names must not show). A user may not be empty or hold `{` or
/// `}`.
///
/// A store is a small value (copies share one state); use it from the handle's executor.
/// Completion signatures: `void(error_code, ...)`; error::session_not_found when the
/// session does not exist or expired (a malformed id is "not found" too).
class session_store {
 public:
  /// Throws std::system_error (error::invalid_argument) for a TTL that is not positive or a
  /// prefix holding braces.
  explicit session_store(handle redis, session_options options = {});

  const session_options& options() const noexcept { return detail::options_of(*s_); }

  /// Creates a session of `user` holding `data`: `void(error_code, std::string id)`.
  template <cache::cacheable T, class Token>
  auto async_create(std::string_view user, const T& data, Token&& token) {
    std::string bytes;
    cache::codec_error where;
    const error_code ec(cache::encode(data, bytes, where));
    return redcoro::detail::run_coroutine<void(error_code, std::string)>(
        executor(),
        ec ? failed<std::string>(ec)
           : detail::session_create(s_, std::string(user), std::move(bytes)),
        std::forward<Token>(token));
  }

  /// The data of a session (sliding its expiry when options().touch_on_get):
  /// `void(error_code, T)`.
  template <cache::cacheable T, class Token>
  auto async_get(std::string_view id, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, T)>(
        executor(), detail::decode_session<T>(detail::session_get(s_, std::string(id))),
        std::forward<Token>(token));
  }

  /// Replaces the data of a session and slides its expiry:
  /// `void(error_code, std::chrono::milliseconds expires_in)`.
  template <cache::cacheable T, class Token>
  auto async_update(std::string_view id, const T& data, Token&& token) {
    std::string bytes;
    cache::codec_error where;
    const error_code ec(cache::encode(data, bytes, where));
    return redcoro::detail::run_coroutine<void(error_code, std::chrono::milliseconds)>(
        executor(),
        ec ? failed<std::chrono::milliseconds>(ec)
           : detail::session_update(s_, std::string(id), std::move(bytes)),
        std::forward<Token>(token));
  }

  /// Slides the expiry (never past the cap): `void(error_code, std::chrono::milliseconds
  /// expires_in)`.
  template <class Token>
  auto async_touch(std::string_view id, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, std::chrono::milliseconds)>(
        executor(), detail::session_touch(s_, std::string(id)), std::forward<Token>(token));
  }

  /// Ends a session: `void(error_code, bool existed)`.
  template <class Token>
  auto async_destroy(std::string_view id, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, bool)>(
        executor(), detail::session_destroy(s_, std::string(id)), std::forward<Token>(token));
  }

  /// The live sessions of `user`, soonest to expire first (expired ones are dropped from the
  /// index on the way): `void(error_code, std::vector<session_info>)`.
  template <class Token>
  auto async_list(std::string_view user, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, std::vector<session_info>)>(
        executor(), detail::session_list(s_, std::string(user)), std::forward<Token>(token));
  }

  /// Ends every session of `user` ("log out everywhere"), atomically:
  /// `void(error_code, std::int64_t ended)`.
  template <class Token>
  auto async_destroy_all(std::string_view user, Token&& token) {
    return redcoro::detail::run_coroutine<void(error_code, std::int64_t)>(
        executor(), detail::session_destroy_all(s_, std::string(user)), std::forward<Token>(token));
  }

 private:
  template <class T>
  static asio::awaitable<std::pair<error_code, T>> failed(error_code ec) {
    co_return std::pair{ec, T{}};
  }
  asio::any_io_executor executor() const { return detail::redis_of(*s_).get_executor(); }

  std::shared_ptr<detail::session_state> s_;
};

}  // namespace redcoro::recipes
