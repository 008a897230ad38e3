#pragma once

#include <redcoro/proto/request.hpp>
#include <redcoro/proto/value.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace redcoro::detail {

/// Rewrites requests so that every key carries a prefix (sans-I/O). Which arguments are keys
/// comes from the server's key specifications (the reply to `COMMAND`), so commands without
/// a typed helper, module commands included, get it right too. Patterns of `KEYS` and of
/// `SCAN`'s `MATCH` get the prefix as well, with glob characters in it escaped.
class key_prefixer {
 public:
  explicit key_prefixer(std::string prefix) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const noexcept { return prefix_; }
  bool loaded() const noexcept { return !table_.empty(); }

  /// Reads the reply to `COMMAND` (RESP3 or RESP2 shapes). Fails with
  /// proto::error::type_mismatch when it does not look like one.
  std::error_code load(const proto::value& command_reply);

  /// Appends every command of `payload` to `out`, keys prefixed.
  void rewrite(std::string_view payload, std::string& out) const;

  /// Which arguments of `argv` (argv[0] is the command name) are keys, and which are
  /// patterns that must match prefixed keys.
  void classify(std::span<const std::string_view> argv, std::vector<std::size_t>& keys,
                std::vector<std::size_t>& patterns) const;

 private:
  struct spec {
    enum class begin : unsigned char { index, keyword, unknown } begin_kind = begin::unknown;
    int index = 0;        // begin::index
    std::string keyword;  // begin::keyword (upper case)
    int start_from = 0;
    enum class find : unsigned char { range, keynum, unknown } find_kind = find::unknown;
    int last_key = 0, key_step = 1, limit = 0;  // find::range
    int keynum_index = 0, first_key = 0;        // find::keynum (key_step too)
  };
  struct command_info {
    std::vector<spec> specs;
    std::unordered_map<std::string, command_info> subcommands;  // by lower-case subcommand
  };

  static command_info parse_info(const proto::value& entry);
  static void apply(const spec& s, std::span<const std::string_view> argv,
                    std::vector<std::size_t>& keys);
  void append_pattern(std::string& arg, std::string_view pattern) const;

  std::string prefix_;
  std::unordered_map<std::string, command_info> table_;  // by lower-case name
};

}  // namespace redcoro::detail
