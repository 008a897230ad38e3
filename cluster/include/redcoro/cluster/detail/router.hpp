#pragma once

#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/request.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redcoro::detail {

/// Slot of a command without keys: any primary serves it.
inline constexpr int any_slot = -1;

/// Where a request goes when all of it goes to one place.
struct route {
  int slot = any_slot;
  bool readonly = true;  ///< every command is flagged readonly: a replica may serve it
};

/// How the replies of a command that was sent as several parts become one reply.
enum class merge : unsigned char {
  none,    ///< sent whole: its reply is the reply
  by_key,  ///< MGET: the parts' arrays, put back in the order of the keys
  sum,     ///< DEL, UNLINK, EXISTS, TOUCH, DBSIZE: the parts' integers added
  concat,  ///< KEYS: the parts' arrays one after the other
  first    ///< MSET, FLUSHALL, SCRIPT LOAD...: the first error, else the first reply
};

/// One piece of work for one node.
struct part {
  proto::request req;
  std::size_t first = 0;  ///< the caller's command the first reply answers
  int slot = any_slot;
  bool readonly = false;
  bool every_primary = false;     ///< fan-out: sent to each primary
  std::vector<std::size_t> keys;  ///< by_key parts: the positions of the caller's keys it has
};

/// What becomes of each of the caller's commands.
struct command_plan {
  merge how = merge::none;
  std::size_t keys = 0;  ///< by_key: how many keys the command has
  std::string error;     ///< not empty: refused here, this is its error reply
};

struct plan {
  std::vector<part> parts;
  std::vector<command_plan> commands;  ///< one per command of the caller's request
};

/// Decides where the commands of a request go (sans-I/O): the slot of each command from its
/// keys (positions from the server's key specifications), requests that stay whole
/// (transactions), multi-key commands split by slot, and commands sent to every primary.
class router {
 public:
  /// `key_prefix`: what the connections prepend to every key (connection_config::key_prefix); slots
  /// are those of the prefixed keys the server sees.
  explicit router(const proto::command_table& table, std::string key_prefix = {})
      : table_(&table), prefix_(std::move(key_prefix)) {}

  /// The common case in one pass and no allocation after warm-up: every command hashes to
  /// one slot (or has no key), none needs splitting or fan-out, none opens a transaction.
  /// nullopt when the request needs a plan. Commands whose only key is their first argument
  /// are read from the request's record of it (proto::command_place), without parsing.
  std::optional<route> single(const proto::request& req);

  /// The full plan for the commands of `req`. Commands whose keys span slots and cannot be
  /// split (MSETNX, scripts, SUNIONSTORE...) get a local CROSSSLOT error; a request with
  /// MULTI or WATCH goes whole to one node, or every command of it gets that error when its
  /// keys span slots.
  plan make_plan(const proto::request& req);

 private:
  using info = proto::command_table::info;
  // The slot of argv's keys: any_slot without keys, -2 when they span slots.
  int slot_of(const std::vector<std::string_view>& argv, const info* entry);
  int slot_of_key(std::string_view key);
  // argv_ := the arguments of `command` (serialized), the name first.
  void parse(std::string_view command);

  const proto::command_table* table_;
  std::vector<std::string_view> argv_;
  std::vector<std::size_t> keys_;
  std::string prefix_;
  std::string prefixed_;
};

/// The error reply of a command refused before it was sent.
inline constexpr std::string_view crossslot_error =
    "CROSSSLOT Keys in request don't hash to the same slot";

/// The error reply of a SCAN sent through the cluster: its cursor would be one node's.
inline constexpr std::string_view scan_error =
    "ERR SCAN on a cluster scans one node: use cluster_client::async_scan (or the handle's "
    "async_scan) for a cursor over every primary, or node(address) for one node";

}  // namespace redcoro::detail
