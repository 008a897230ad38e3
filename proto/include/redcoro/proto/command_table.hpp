#pragma once

#include <redcoro/proto/value.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redcoro::proto {

/// Case-insensitive comparison of command names (ASCII).
bool iequals(std::string_view a, std::string_view b) noexcept;

/// Hash and equality of command names in any case, looked up by string_view: finding a
/// command copies nothing.
struct command_name_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept;
};
struct command_name_equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return iequals(a, b); }
};
template <class T>
using command_map = std::unordered_map<std::string, T, command_name_hash, command_name_equal>;

/// What the server says about its commands (the reply to `COMMAND`), sans-I/O: which
/// arguments of a command are keys, found with the server's own key specifications, so
/// commands without a typed helper and module commands are read right too; and whether a
/// command only reads. The key prefix and the cluster's routing both use it.
class command_table {
 public:
  /// What is known of one command (or one subcommand, such as `OBJECT ENCODING`).
  class info {
   public:
    /// Appends the positions in `argv` (argv[0] is the command name) of the keys it names.
    /// With `not_keys`, also of the arguments the server places like keys but flags
    /// `not_key`: the shard channels of SPUBLISH and SSUBSCRIBE, which live in a slot (cluster
    /// routing wants them) but are not keys (the key prefix leaves them alone).
    void keys(std::span<const std::string_view> argv, std::vector<std::size_t>& out,
              bool not_keys = true) const;
    /// Flagged `readonly` by the server: safe to send to a replica.
    bool readonly() const noexcept { return readonly_; }
    /// Its only key is its first argument (GET, SET, HSET, XADD...): what reads a request
    /// takes that key from request::first_arg() without finding the others. False when it
    /// has subcommands, several key specifications, or ranges of keys.
    bool key_is_first_arg() const noexcept { return key_is_first_arg_; }
    /// It names no key and has no subcommands (PING, INFO, DBSIZE...).
    bool no_keys() const noexcept { return no_keys_; }

   private:
    friend class command_table;
    struct spec {
      enum class begin : unsigned char { index, keyword, unknown } begin_kind = begin::unknown;
      int index = 0;        // begin::index
      std::string keyword;  // begin::keyword (upper case)
      int start_from = 0;
      enum class find : unsigned char { range, keynum, unknown } find_kind = find::unknown;
      int last_key = 0, key_step = 1, limit = 0;  // find::range
      int keynum_index = 0, first_key = 0;        // find::keynum (key_step too)
      bool not_key = false;                       // flagged not_key: a shard channel
    };
    static void apply(const spec& s, std::span<const std::string_view> argv,
                      std::vector<std::size_t>& out);

    std::vector<spec> specs_;
    bool readonly_ = false;
    bool key_is_first_arg_ = false;
    bool no_keys_ = false;
    command_map<info> subcommands_;
  };

  command_table() = default;
  command_table(const command_table& other) : table_(other.table_) { index_ids(); }
  command_table& operator=(const command_table& other) {
    table_ = other.table_;
    index_ids();
    return *this;
  }
  // The entries move with their nodes, so the index stays right; the source keeps none.
  command_table(command_table&& other) noexcept
      : table_(std::move(other.table_)), by_id_(other.by_id_) {
    other.by_id_.fill(nullptr);
  }
  command_table& operator=(command_table&& other) noexcept {
    table_ = std::move(other.table_);
    by_id_ = other.by_id_;
    other.by_id_.fill(nullptr);
    return *this;
  }

  bool loaded() const noexcept { return !table_.empty(); }

  /// Reads the reply to `COMMAND` (RESP3 or RESP2 shapes). Fails with
  /// proto::error::type_mismatch when it does not look like one.
  std::error_code load(const proto::value& command_reply);

  /// The entry of `argv`'s command (its subcommand's when it has those), or nullptr when the
  /// server did not list it.
  const info* find(std::span<const std::string_view> argv) const;

  /// The entry of the command whose command_id() (command_info.hpp) is `id`, found without
  /// hashing its name: nullptr for 0, and when the server did not list it.
  const info* find(std::uint8_t id) const noexcept { return by_id_[id]; }

  /// Sorted, unique positions of the keys in `argv` (not_key arguments left out); empty for
  /// an unknown command.
  void keys(std::span<const std::string_view> argv, std::vector<std::size_t>& out) const;

 private:
  static info parse_info(const proto::value& entry);
  void index_ids() noexcept;
  command_map<info> table_;
  std::array<const info*, 256> by_id_{};  // into table_, by command_id()
};

}  // namespace redcoro::proto
