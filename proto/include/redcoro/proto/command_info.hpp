#pragma once

#include <redcoro/proto/type.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

/// \file
/// What redcoro knows about common commands without asking the server: the types their
/// replies can have (so a connection notices a reply that cannot belong to the command it
/// waits for), which commands block and for how long, and how to give back what a blocking
/// pop took when its caller had already given up. Commands not listed are not checked.

namespace redcoro::proto {

class request;
class value;

/// Where a blocking command keeps its block time.
enum class block_arg : std::uint8_t {
  none,           ///< not a blocking command
  last_seconds,   ///< the last argument, in seconds (BLPOP, BRPOP, BLMOVE, BZPOPMIN...)
  first_seconds,  ///< the first argument, in seconds (BLMPOP, BZMPOP)
  block_option,   ///< `BLOCK <ms>` among the options; not blocking without it (XREAD...)
  last_millis,    ///< the last argument, in milliseconds (WAIT, WAITAOF)
};

/// How the element a blocking pop delivered to a caller who gave up goes back.
enum class hand_back : std::uint8_t {
  none,        ///< nothing was taken (XREAD, WAIT), or it stays pending (XREADGROUP)
  lpush,       ///< BLPOP: [key, element] goes back to the head
  rpush,       ///< BRPOP: [key, element] goes back to the tail
  lmove_back,  ///< BLMOVE, BRPOPLPUSH: the element moves back to where it was
  zadd,        ///< BZPOPMIN, BZPOPMAX: [key, member, score] is added again (NX)
  lmpop,       ///< BLMPOP: [key, [elements...]] go back to the end they came from
  zmpop,       ///< BZMPOP: [key, [[member, score]...]] are added again (NX)
};

/// Transaction control, which changes what the commands after it answer (`+QUEUED`).
enum class tx_role : std::uint8_t { none, multi, exec, discard };

/// A bit per proto::type: the types a reply may have. Error replies are always allowed.
using type_mask = std::uint32_t;
constexpr type_mask mask_of(type t) noexcept {
  return type_mask{1} << static_cast<unsigned>(t);
}

/// What is known about one command.
struct command_info {
  std::string_view name;  ///< upper case
  /// Types its top-level reply may have (RESP3 and RESP2 forms); 0: not checked.
  type_mask replies = 0;
  block_arg blocking = block_arg::none;
  hand_back give_back = hand_back::none;
  tx_role tx = tx_role::none;
};

/// The entry of a command name in any case, or nullptr. Ids are 1-based indices into the
/// table (0: unknown), small enough for one byte per command in a request.
std::uint8_t command_id(std::string_view name) noexcept;
/// The entry of an id from command_id(); nullptr for 0.
const command_info* command_by_id(std::uint8_t id) noexcept;
inline const command_info* find_command(std::string_view name) noexcept {
  return command_by_id(command_id(name));
}

/// True when a top-level reply of type `t` can answer command `id` (always for errors,
/// unknown commands and commands whose replies are not checked).
inline bool reply_fits(std::uint8_t id, type t) noexcept {
  if (id == 0 || is_error(t)) return true;
  const command_info* c = command_by_id(id);
  return c->replies == 0 || (c->replies & mask_of(t)) != 0;
}

/// The block time of one serialized command (request::command_bytes), when it blocks:
/// zero for "block forever", nullopt when it does not block (not a blocking command, or XREAD
/// without BLOCK) or its block time cannot be read.
std::optional<std::chrono::milliseconds> block_time(std::string_view command_bytes) noexcept;

/// Appends to `out` the commands that give back what the blocking pop `command_bytes` took,
/// given its `reply`: LPUSH after BLPOP, ZADD NX after BZPOPMIN, and so on (see hand_back).
/// Keys are taken as they are on the wire. Returns false when there is nothing to give back
/// (a null reply, a command that takes nothing, XREADGROUP whose entries stay pending).
bool append_hand_back(std::string_view command_bytes, const value& reply, request& out);

}  // namespace redcoro::proto
