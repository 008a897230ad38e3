#pragma once

#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/value.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace redcoro::detail {

/// Where the key names in a command's reply are, for connection_config::strip_key_prefix.
/// Recorded per command when the request is rewritten, so the reply is stripped as it is
/// read, without looking at the request again.
enum class key_reply : std::uint8_t {
  none,
  array,    ///< KEYS: the reply's elements
  scan,     ///< SCAN: the elements of its second element
  first,    ///< BLPOP, BZPOPMIN, BLMPOP, ZMPOP...: its first element
  streams,  ///< XREAD, XREADGROUP: the map's keys (RESP3), each pair's first (RESP2)
};

/// The shape of the reply of the command named `name` (any case).
key_reply key_reply_of(std::string_view name) noexcept;

/// One command of a request whose reply names keys: its index in the request and where.
struct key_reply_at {
  std::uint32_t command = 0;
  key_reply shape = key_reply::none;
};

/// Rewrites requests so that every key carries a prefix (sans-I/O). Which arguments are keys
/// comes from the server's key specifications (the reply to `COMMAND`), so commands without
/// a typed helper, module commands included, get it right too. Patterns of `KEYS` and of
/// `SCAN`'s `MATCH` get the prefix as well, with glob characters in it escaped.
class key_prefixer {
 public:
  explicit key_prefixer(std::string prefix) : prefix_(std::move(prefix)) {}

  bool loaded() const noexcept { return table_.loaded(); }

  /// Reads the reply to `COMMAND`; see proto::command_table::load.
  std::error_code load(const proto::value& command_reply) { return table_.load(command_reply); }

  const std::string& prefix() const noexcept { return prefix_; }

  /// Appends every command of `req` to `out`, keys prefixed. With `replies`, also appends
  /// there each command whose reply names keys (key_reply_of). A command whose only key is
  /// its first argument is rewritten from the request's record of it, without parsing.
  void rewrite(const proto::request& req, std::string& out,
               std::vector<key_reply_at>* replies = nullptr) const;
  /// The same for serialized commands.
  void rewrite(std::string_view payload, std::string& out,
               std::vector<key_reply_at>* replies = nullptr) const;

  /// Which arguments of `argv` (argv[0] is the command name) are keys, and which are
  /// patterns that must match prefixed keys.
  void classify(std::span<const std::string_view> argv, std::vector<std::size_t>& keys,
                std::vector<std::size_t>& patterns) const;

 private:
  void append_pattern(std::string& arg, std::string_view pattern) const;
  // One serialized command, read argument by argument.
  void rewrite_parsed(std::string_view command, std::uint32_t index, std::string& out,
                      std::vector<key_reply_at>* replies) const;
  // The bytes of the header of a bulk of `n` bytes.
  static std::size_t header_size(std::size_t n) noexcept;
  static void append_bulk(std::string& out, std::string_view head, std::string_view tail);

  std::string prefix_;
  proto::command_table table_;
  struct scratch {
    std::vector<std::string_view> argv;
    std::vector<std::size_t> keys, patterns;
    std::string pattern;
  };
  mutable scratch scratch_;  // rewrite's, reused (one connection, one executor)
};

}  // namespace redcoro::detail
