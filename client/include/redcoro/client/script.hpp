#pragma once

#include <redcoro/client/command.hpp>
#include <redcoro/client/commands.hpp>

#include <memory>
#include <string>

namespace redcoro {

/// A Lua script: its source and SHA1. Calls go out as `EVALSHA`, so the source crosses the
/// network only when the server does not know it yet: on a `NOSCRIPT` reply the connection
/// sends that command once more as `EVAL` (which also loads the script into the server's
/// cache), transparently, also inside pipelines (the retried commands then run after the
/// rest of the pipeline). Inside transaction(...) there is no retry: call load() first.
///
/// \code
///   static const redcoro::script release(
///       "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) "
///       "else return 0 end");
///   auto r = co_await conn.async_exec(release.call<std::int64_t>(key, token),
///   asio::use_awaitable);
/// \endcode
///
/// A script error comes back in the result with the server's message.
class script {
 public:
  explicit script(std::string source);

  const std::string& source() const noexcept { return *source_; }
  /// Lower-case hex SHA1 of the source, as the server names it.
  const std::string& sha1() const noexcept { return sha1_; }

  /// EVALSHA with `keys` (their count becomes numkeys) and `args`.
  template <class T = proto::value>
  command<T> call(cmd::args keys = {}, cmd::args args = {}) const {
    return make<T>("EVALSHA", keys, args);
  }
  /// EVALSHA_RO: the script may not write (and may run on a replica).
  template <class T = proto::value>
  command<T> call_ro(cmd::args keys = {}, cmd::args args = {}) const {
    return make<T>("EVALSHA_RO", keys, args);
  }
  /// SCRIPT LOAD; the reply is the SHA1.
  command<std::string> load() const { return command<std::string>("SCRIPT", "LOAD", *source_); }

 private:
  template <class T>
  command<T> make(std::string_view name, const cmd::args& keys, const cmd::args& args) const {
    command<T> c(name, sha1_, proto::detail::arg_count(keys), keys, args);
    c.set_script(source_);
    return c;
  }

  std::shared_ptr<const std::string> source_;
  std::string sha1_;
};

namespace detail {

/// The SHA1 of `data` in lower-case hex (OpenSSL).
std::string sha1_hex(std::string_view data);

/// Appends `EVALSHA[_RO] sha n keys... args...` (one serialized command) to `out` as
/// `EVAL[_RO] source n keys... args...`. False when `command` is not such a command.
bool append_as_eval(proto::request& out, std::string_view command, std::string_view source);

}  // namespace detail
}  // namespace redcoro
