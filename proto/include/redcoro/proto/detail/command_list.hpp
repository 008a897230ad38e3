#pragma once

#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/detail/ascii.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

/// \file
/// The commands redcoro knows without asking the server (command_info.hpp), as a constant
/// table: command_id() looks names up in it at run time, and proto::command_name at compile
/// time. A command's id is its position in the table plus one.

namespace redcoro::proto::detail {

namespace command_list_data {

// The types a reply may have, in short.
inline constexpr type_mask B =
    mask_of(type::blob_string) | mask_of(type::verbatim_string) | mask_of(type::streamed_string);
inline constexpr type_mask N = mask_of(type::null);
inline constexpr type_mask I = mask_of(type::number);
inline constexpr type_mask S = mask_of(type::simple_string);
inline constexpr type_mask A = mask_of(type::array);
inline constexpr type_mask SET = mask_of(type::set) | A;    // RESP2 sends sets as arrays
inline constexpr type_mask M = mask_of(type::map) | A;      // and maps as flat arrays
inline constexpr type_mask D = mask_of(type::double_) | B;  // RESP2 sends doubles as blobs

// Only replies whose types are certain on every server from 6.0 on are listed; a wrong entry
// would drop healthy connections, a missing one only leaves a desynchronized stream unnoticed
// a little longer. Commands whose reply depends on options in ways not worth modelling
// (CLIENT, CONFIG, OBJECT, EVAL...) are not listed.
inline constexpr command_info command_list[] = {
    // strings
    {"GET", B | N},
    {"GETDEL", B | N},
    {"GETEX", B | N},
    {"GETSET", B | N},
    {"GETRANGE", B},
    {"MGET", A},
    {"SET", S | N | B},  // NX/XX give null, GET gives the old value
    {"SETNX", I},
    {"SETEX", S},
    {"PSETEX", S},
    {"MSET", S},
    {"MSETNX", I},
    {"INCR", I},
    {"DECR", I},
    {"INCRBY", I},
    {"DECRBY", I},
    {"INCRBYFLOAT", B},
    {"APPEND", I},
    {"STRLEN", I},
    // keys
    {"DEL", I},
    {"UNLINK", I},
    {"EXISTS", I},
    {"TOUCH", I},
    {"EXPIRE", I},
    {"PEXPIRE", I},
    {"EXPIREAT", I},
    {"PEXPIREAT", I},
    {"PERSIST", I},
    {"TTL", I},
    {"PTTL", I},
    {"TYPE", S},
    {"DBSIZE", I},
    {"KEYS", SET},
    {"SCAN", A},
    // hashes
    {"HGET", B | N},
    {"HMGET", A},
    {"HGETALL", M},
    {"HKEYS", A},
    {"HVALS", A},
    {"HLEN", I},
    {"HDEL", I},
    {"HSET", I},
    {"HSETNX", I},
    {"HEXISTS", I},
    {"HINCRBY", I},
    {"HINCRBYFLOAT", B},
    {"HSTRLEN", I},
    // lists
    {"LPUSH", I},
    {"RPUSH", I},
    {"LPUSHX", I},
    {"RPUSHX", I},
    {"LLEN", I},
    {"LREM", I},
    {"LINSERT", I},
    {"LPOP", B | N | A},  // with COUNT: an array
    {"RPOP", B | N | A},
    {"LRANGE", A},
    {"LINDEX", B | N},
    {"LSET", S},
    {"LTRIM", S},
    {"LMOVE", B | N},
    {"RPOPLPUSH", B | N},
    {"BLPOP", A | N, block_arg::last_seconds, hand_back::lpush},
    {"BRPOP", A | N, block_arg::last_seconds, hand_back::rpush},
    {"BLMOVE", B | N, block_arg::last_seconds, hand_back::lmove_back},
    {"BRPOPLPUSH", B | N, block_arg::last_seconds, hand_back::lmove_back},
    {"BLMPOP", A | N, block_arg::first_seconds, hand_back::lmpop},
    // sets
    {"SADD", I},
    {"SREM", I},
    {"SCARD", I},
    {"SISMEMBER", I},
    {"SMISMEMBER", A},
    {"SMEMBERS", SET},
    {"SPOP", B | N | SET},
    {"SRANDMEMBER", B | N | A},
    // sorted sets
    {"ZADD", I | D | N},  // INCR gives a double, NX/XX with INCR may give null
    {"ZINCRBY", D},
    {"ZSCORE", D | N},
    {"ZRANK", I | N | A},  // WITHSCORE: an array
    {"ZREVRANK", I | N | A},
    {"ZCARD", I},
    {"ZCOUNT", I},
    {"ZREM", I},
    {"ZRANGE", A},
    {"ZREVRANGE", A},
    {"ZRANGEBYSCORE", A},
    {"ZREVRANGEBYSCORE", A},
    {"ZPOPMIN", A},
    {"ZPOPMAX", A},
    {"BZPOPMIN", A | N, block_arg::last_seconds, hand_back::zadd},
    {"BZPOPMAX", A | N, block_arg::last_seconds, hand_back::zadd},
    {"BZMPOP", A | N, block_arg::first_seconds, hand_back::zmpop},
    // streams
    {"XADD", B | N},
    {"XLEN", I},
    {"XACK", I},
    {"XDEL", I},
    {"XTRIM", I},
    {"XRANGE", A},
    {"XREVRANGE", A},
    {"XREAD", M | N, block_arg::block_option},
    {"XREADGROUP", M | N, block_arg::block_option},
    // pub/sub, server, transactions
    {"PUBLISH", I},
    {"SPUBLISH", I},
    {"PING", S | B | A},  // RESP2 in subscribed mode: ["pong", ""]
    {"ECHO", B},
    {"SELECT", S},
    {"FLUSHALL", S},
    {"FLUSHDB", S},
    {"WAIT", I, block_arg::last_millis},
    {"WAITAOF", A, block_arg::last_millis},
    {"WATCH", S},
    {"UNWATCH", S},
    {"MULTI", S, block_arg::none, hand_back::none, tx_role::multi},
    {"EXEC", A | N, block_arg::none, hand_back::none, tx_role::exec},
    {"DISCARD", S, block_arg::none, hand_back::none, tx_role::discard},
    // Known by name only (replies not checked: 0), so that metrics and observers name them
    // instead of counting them as "OTHER".
    {"EVAL"},
    {"EVALSHA"},
    {"EVAL_RO"},
    {"EVALSHA_RO"},
    {"FCALL"},
    {"FCALL_RO"},
    {"SCRIPT"},
    {"FUNCTION"},
    {"CLIENT"},
    {"CONFIG"},
    {"INFO"},
    {"COMMAND"},
    {"OBJECT"},
    {"MEMORY"},
    {"SLOWLOG"},
    {"CLUSTER"},
    {"RENAME"},
    {"RENAMENX"},
    {"COPY"},
    {"GETBIT"},
    {"SETBIT"},
    {"BITCOUNT"},
    {"PFADD"},
    {"PFCOUNT"},
    {"HSCAN"},
    {"SSCAN"},
    {"ZSCAN"},
    {"SINTER"},
    {"SUNION"},
    {"SDIFF"},
    {"SMOVE"},
    {"ZRANGESTORE"},
    {"ZUNIONSTORE"},
    {"ZINTERSTORE"},
    {"ZMSCORE"},
    {"ZMPOP"},
    {"LMPOP"},
    {"XINFO"},
    {"XGROUP"},
    {"XCLAIM"},
    {"XAUTOCLAIM"},
    {"XPENDING"},
    {"GEOADD"},
    {"GEOSEARCH"},
    {"GEODIST"},
    {"PUBSUB"},
};

}  // namespace command_list_data
using command_list_data::command_list;

inline constexpr std::size_t command_list_size = std::size(command_list);
static_assert(command_list_size < 255, "ids are one byte");

/// command_id() by a walk through the table: for names known at compile time.
constexpr std::uint8_t command_id_by_walk(std::string_view name) noexcept {
  for (std::size_t i = 0; i < command_list_size; ++i)
    if (iequals_upper(name, command_list[i].name)) return static_cast<std::uint8_t>(i + 1);
  return 0;
}

}  // namespace redcoro::proto::detail
