#pragma once

#include <redcoro/client/command.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

/// \file
/// Typed helpers for the common command families. Each builds a `command<T>` (one request,
/// one reply type) and goes through the same connection::async_exec as everything else, so
/// every helper works with coroutines, callbacks and futures, inside pipeline(...) and
/// transaction(...). Anything not here: `redcoro::command<T>("NAME", args...)`, or
/// `"NAME"_cmd` in place of the string to have the name looked up at compile time
/// (proto/command_name.hpp).
///
/// \code
///   using namespace redcoro;
///   auto name = co_await conn.async_exec(cmd::get("user:1:name"), asio::use_awaitable);
///   if (name.value()) ...                        // std::optional<std::string>
/// \endcode
///
/// Keys are `std::string_view`; values and members take any command argument (strings,
/// numbers, byte buffers, your types with redcoro_to_bulk). Every argument is sent as a
/// length-prefixed bulk string.

namespace redcoro {

/// One stream entry: its ID and its field/value pairs in order.
struct stream_entry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  friend bool operator==(const stream_entry&, const stream_entry&) = default;
};
inline auto redcoro_fields(stream_entry& e) {
  return std::tie(e.id, e.fields);
}

/// The entries XREAD/XREADGROUP returned, per stream, in the order of the request.
using stream_batch = std::vector<std::pair<std::string, std::vector<stream_entry>>>;

/// One SLOWLOG GET entry.
struct slowlog_entry {
  std::int64_t id = 0;
  std::int64_t unix_time = 0;
  std::int64_t micros = 0;
  std::vector<std::string> args;
  std::string client_address;
  std::string client_name;
};
inline auto redcoro_fields(slowlog_entry& e) {
  return std::tie(e.id, e.unix_time, e.micros, e.args, e.client_address, e.client_name);
}

/// INFO's text, parsed: section name (lower case, as the server prints it after `# `) to
/// field to value.
struct server_info {
  std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> sections;

  /// A field of a section, or nullopt.
  std::optional<std::string_view> get(std::string_view section, std::string_view field) const;
};
void redcoro_from_bulk(server_info& out, std::string_view text, std::error_code& ec);

namespace cmd {

// The helpers name their commands at compile time (proto/command_name.hpp).
using proto::literals::operator""_cmd;

using std::string_view;
using string_map = std::unordered_map<std::string, std::string>;

/// One argument of a typed helper: a string, a number or a byte buffer, viewed (not copied)
/// until the helper has written it into its request.
class arg {
 public:
  arg(std::string_view s) noexcept : text_(s) {}    // NOLINT: implicit on purpose
  arg(const char* s) noexcept : text_(s) {}         // NOLINT
  arg(const std::string& s) noexcept : text_(s) {}  // NOLINT
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool> && !std::is_same_v<I, char>) arg(I v)
  noexcept  // NOLINT
      : kind_(std::is_signed_v<I> ? kind::signed_number : kind::unsigned_number) {
    if constexpr (std::is_signed_v<I>)
      signed_ = v;
    else
      unsigned_ = v;
  }
  arg(double v) noexcept : kind_(kind::floating), floating_(v) {}  // NOLINT
  /// Raw bytes: a contiguous range of std::byte or unsigned char.
  template <class R>
  requires(!std::is_convertible_v<const R&, std::string_view> && proto::detail::byte_buffer<R>)
      arg(const R& bytes)
  noexcept  // NOLINT
      : text_(reinterpret_cast<const char*>(std::ranges::data(bytes)), std::ranges::size(bytes)) {}

  friend void redcoro_to_bulk(proto::arg_sink& sink, const arg& a) { a.write(sink); }

 private:
  enum class kind : std::uint8_t { text, signed_number, unsigned_number, floating };
  void write(proto::arg_sink& sink) const;

  kind kind_ = kind::text;
  std::string_view text_;
  std::int64_t signed_ = 0;
  std::uint64_t unsigned_ = 0;
  double floating_ = 0;
};

/// One argument (anything `arg` takes) or a range of them (keys, members, IDs; a map or a
/// range of pairs gives two arguments per element), viewed until the helper has written them.
class args {
 public:
  /// No arguments at all.
  args() noexcept : write_([](proto::arg_sink&, const void*) {}) {}
  template <class A>
  requires std::is_constructible_v<arg, const A&> args(const A& one)
  noexcept  // NOLINT
      : one_(one) {}
  template <std::ranges::input_range R>
  requires(!std::is_constructible_v<arg, const R&>) args(const R& range)
  noexcept  // NOLINT
      : range_(&range), write_([](proto::arg_sink& sink, const void* r) {
          for (const auto& e : *static_cast<const R*>(r))
            sink.add(e);
        }) {}

  friend void redcoro_to_bulk(proto::arg_sink& sink, const args& a) {
    if (a.write_)
      a.write_(sink, a.range_);
    else
      sink.add(a.one_);
  }

 private:
  arg one_{std::string_view()};
  const void* range_ = nullptr;
  void (*write_)(proto::arg_sink&, const void*) = nullptr;
};

namespace detail {
// Up to a few optional arguments, passed to request::push as one range.
class optional_args {
 public:
  optional_args() = default;
  // The views point into this object's own number buffers.
  optional_args(const optional_args&) = delete;
  optional_args& operator=(const optional_args&) = delete;

  void add(std::string_view a) { args_[n_++] = a; }
  void add_number(std::int64_t v) {
    auto& buf = numbers_[numbers_used_++];
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    (void)ec;
    add(std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data())));
  }
  /// `name n` when n is positive (COUNT, MAXLEN and the like).
  void add_if_positive(std::string_view name, std::int64_t n) {
    if (n <= 0) return;
    add(name);
    add_number(n);
  }
  std::span<const std::string_view> get() const noexcept { return {args_.data(), n_}; }

 private:
  std::array<std::string_view, 8> args_{};
  std::array<std::array<char, 24>, 2> numbers_{};
  std::size_t n_ = 0;
  std::size_t numbers_used_ = 0;
};
}  // namespace detail

// --- strings ------------------------------------------------------------------------------

inline command<std::optional<std::string>> get(string_view key) {
  return command<std::optional<std::string>>("GET"_cmd, key);
}

/// SET's conditions: NX (only if absent), XX (only if present).
enum class set_if : std::uint8_t { always, absent, present };

struct set_options {
  std::chrono::milliseconds ttl{0};  ///< PX when positive
  set_if condition = set_if::always;
  bool keep_ttl = false;  ///< KEEPTTL
};

/// SET; the reply is engaged ("OK") when the value was set, nullopt when the condition
/// (set_if::absent / present) was not met.
inline command<std::optional<std::string>> set(string_view key, arg value,
                                               const set_options& o = {}) {
  detail::optional_args extra;
  extra.add_if_positive("PX", o.ttl.count());
  if (o.condition == set_if::absent) extra.add("NX");
  if (o.condition == set_if::present) extra.add("XX");
  if (o.keep_ttl) extra.add("KEEPTTL");
  return command<std::optional<std::string>>("SET"_cmd, key, value, extra.get());
}

inline command<std::vector<std::optional<std::string>>> mget(args keys) {
  return command<std::vector<std::optional<std::string>>>("MGET"_cmd, keys);
}
/// MSET of key/value pairs (a map, or a range of pairs).
inline command<std::string> mset(args pairs) {
  return command<std::string>("MSET"_cmd, pairs);
}
inline command<std::optional<std::string>> getdel(string_view key) {
  return command<std::optional<std::string>>("GETDEL"_cmd, key);
}
inline command<std::int64_t> incr(string_view key) {
  return command<std::int64_t>("INCR"_cmd, key);
}
inline command<std::int64_t> incrby(string_view key, std::int64_t by) {
  return command<std::int64_t>("INCRBY"_cmd, key, by);
}
inline command<std::int64_t> decr(string_view key) {
  return command<std::int64_t>("DECR"_cmd, key);
}
inline command<std::int64_t> decrby(string_view key, std::int64_t by) {
  return command<std::int64_t>("DECRBY"_cmd, key, by);
}
inline command<double> incrbyfloat(string_view key, double by) {
  return command<double>("INCRBYFLOAT"_cmd, key, by);
}
inline command<std::int64_t> append(string_view key, arg value) {
  return command<std::int64_t>("APPEND"_cmd, key, value);
}
inline command<std::int64_t> strlen(string_view key) {
  return command<std::int64_t>("STRLEN"_cmd, key);
}

// --- keys and expiry ----------------------------------------------------------------------

/// DEL of one key or of a range of keys; the reply counts the keys removed.
inline command<std::int64_t> del(args keys) {
  return command<std::int64_t>("DEL"_cmd, keys);
}
inline command<std::int64_t> unlink(args keys) {
  return command<std::int64_t>("UNLINK"_cmd, keys);
}
inline command<std::int64_t> exists(args keys) {
  return command<std::int64_t>("EXISTS"_cmd, keys);
}
/// PEXPIRE; true when the timeout was set.
inline command<bool> expire(string_view key, std::chrono::milliseconds ttl) {
  return command<bool>("PEXPIRE"_cmd, key, ttl.count());
}
inline command<bool> persist(string_view key) {
  return command<bool>("PERSIST"_cmd, key);
}
/// PTTL in milliseconds: -1 without expiry, -2 when the key does not exist.
inline command<std::int64_t> pttl(string_view key) {
  return command<std::int64_t>("PTTL"_cmd, key);
}
inline command<std::int64_t> ttl(string_view key) {
  return command<std::int64_t>("TTL"_cmd, key);
}
/// TYPE: "string", "list", "set", "zset", "hash", "stream" or "none".
inline command<std::string> type(string_view key) {
  return command<std::string>("TYPE"_cmd, key);
}
inline command<std::string> rename(string_view key, string_view new_key) {
  return command<std::string>("RENAME"_cmd, key, new_key);
}
inline command<std::vector<std::string>> keys(string_view pattern) {
  return command<std::vector<std::string>>("KEYS"_cmd, pattern);
}

/// One SCAN step: the next cursor (0 when the iteration is over) and the keys of this step.
using scan_page = std::pair<std::uint64_t, std::vector<std::string>>;

struct scan_options {
  std::string_view match;  ///< MATCH pattern, when not empty
  std::int64_t count = 0;  ///< COUNT hint, when positive
  std::string_view type;   ///< TYPE filter, when not empty
};
inline command<scan_page> scan(std::uint64_t cursor, const scan_options& o = {}) {
  detail::optional_args extra;
  if (!o.match.empty()) {
    extra.add("MATCH");
    extra.add(o.match);
  }
  extra.add_if_positive("COUNT", o.count);
  if (!o.type.empty()) {
    extra.add("TYPE");
    extra.add(o.type);
  }
  return command<scan_page>("SCAN"_cmd, cursor, extra.get());
}

// --- hashes -------------------------------------------------------------------------------

inline command<std::optional<std::string>> hget(string_view key, string_view field) {
  return command<std::optional<std::string>>("HGET"_cmd, key, field);
}
/// HSET of field/value pairs (a map, or a range of pairs); the reply counts new fields.
inline command<std::int64_t> hset(string_view key, args pairs) {
  return command<std::int64_t>("HSET"_cmd, key, pairs);
}
inline command<std::int64_t> hset(string_view key, string_view field, arg value) {
  return command<std::int64_t>("HSET"_cmd, key, field, value);
}
inline command<string_map> hgetall(string_view key) {
  return command<string_map>("HGETALL"_cmd, key);
}
inline command<std::vector<std::optional<std::string>>> hmget(string_view key, args fields) {
  return command<std::vector<std::optional<std::string>>>("HMGET"_cmd, key, fields);
}
inline command<std::int64_t> hincrby(string_view key, string_view field, std::int64_t by) {
  return command<std::int64_t>("HINCRBY"_cmd, key, field, by);
}
inline command<double> hincrbyfloat(string_view key, string_view field, double by) {
  return command<double>("HINCRBYFLOAT"_cmd, key, field, by);
}
inline command<std::int64_t> hdel(string_view key, args fields) {
  return command<std::int64_t>("HDEL"_cmd, key, fields);
}
inline command<bool> hexists(string_view key, string_view field) {
  return command<bool>("HEXISTS"_cmd, key, field);
}
inline command<std::int64_t> hlen(string_view key) {
  return command<std::int64_t>("HLEN"_cmd, key);
}
inline command<std::vector<std::string>> hkeys(string_view key) {
  return command<std::vector<std::string>>("HKEYS"_cmd, key);
}
inline command<std::vector<std::string>> hvals(string_view key) {
  return command<std::vector<std::string>>("HVALS"_cmd, key);
}

// --- lists --------------------------------------------------------------------------------

/// LPUSH of one value or a range of values; the reply is the list's new length.
inline command<std::int64_t> lpush(string_view key, args values) {
  return command<std::int64_t>("LPUSH"_cmd, key, values);
}
inline command<std::int64_t> rpush(string_view key, args values) {
  return command<std::int64_t>("RPUSH"_cmd, key, values);
}
inline command<std::optional<std::string>> lpop(string_view key) {
  return command<std::optional<std::string>>("LPOP"_cmd, key);
}
inline command<std::optional<std::string>> rpop(string_view key) {
  return command<std::optional<std::string>>("RPOP"_cmd, key);
}
inline command<std::vector<std::string>> lrange(string_view key, std::int64_t start,
                                                std::int64_t stop) {
  return command<std::vector<std::string>>("LRANGE"_cmd, key, start, stop);
}
inline command<std::int64_t> llen(string_view key) {
  return command<std::int64_t>("LLEN"_cmd, key);
}
inline command<std::optional<std::string>> lindex(string_view key, std::int64_t index) {
  return command<std::optional<std::string>>("LINDEX"_cmd, key, index);
}
inline command<std::int64_t> lrem(string_view key, std::int64_t count, arg value) {
  return command<std::int64_t>("LREM"_cmd, key, count, value);
}
inline command<std::string> ltrim(string_view key, std::int64_t start, std::int64_t stop) {
  return command<std::string>("LTRIM"_cmd, key, start, stop);
}

/// What BLPOP/BRPOP popped: the key and the value; nullopt when the timeout passed.
using popped = std::optional<std::pair<std::string, std::string>>;

/// BLPOP on one key or a range of keys; `timeout` 0 blocks without limit. It holds its
/// connection while it waits: run it through client::async_exec_dedicated (or a connection
/// of its own), and give the request a timeout longer than the server's.
inline command<popped> blpop(args keys, std::chrono::milliseconds timeout) {
  return command<popped>("BLPOP"_cmd, keys, static_cast<double>(timeout.count()) / 1000.0);
}
inline command<popped> brpop(args keys, std::chrono::milliseconds timeout) {
  return command<popped>("BRPOP"_cmd, keys, static_cast<double>(timeout.count()) / 1000.0);
}

// --- sets ---------------------------------------------------------------------------------

inline command<std::int64_t> sadd(string_view key, args members) {
  return command<std::int64_t>("SADD"_cmd, key, members);
}
inline command<std::int64_t> srem(string_view key, args members) {
  return command<std::int64_t>("SREM"_cmd, key, members);
}
inline command<std::unordered_set<std::string>> smembers(string_view key) {
  return command<std::unordered_set<std::string>>("SMEMBERS"_cmd, key);
}
inline command<bool> sismember(string_view key, arg member) {
  return command<bool>("SISMEMBER"_cmd, key, member);
}
inline command<std::int64_t> scard(string_view key) {
  return command<std::int64_t>("SCARD"_cmd, key);
}
inline command<std::unordered_set<std::string>> sinter(args keys) {
  return command<std::unordered_set<std::string>>("SINTER"_cmd, keys);
}
inline command<std::unordered_set<std::string>> sunion(args keys) {
  return command<std::unordered_set<std::string>>("SUNION"_cmd, keys);
}

// --- sorted sets --------------------------------------------------------------------------

/// Members with their scores, in the server's order.
using scored = std::vector<std::pair<std::string, double>>;

inline command<std::int64_t> zadd(string_view key, double score, arg member) {
  return command<std::int64_t>("ZADD"_cmd, key, score, member);
}
/// ZADD of (score, member) pairs.
inline command<std::int64_t> zadd(string_view key, args score_member_pairs) {
  return command<std::int64_t>("ZADD"_cmd, key, score_member_pairs);
}
inline command<double> zincrby(string_view key, double by, arg member) {
  return command<double>("ZINCRBY"_cmd, key, by, member);
}
inline command<std::optional<double>> zscore(string_view key, arg member) {
  return command<std::optional<double>>("ZSCORE"_cmd, key, member);
}
inline command<std::optional<std::int64_t>> zrank(string_view key, arg member) {
  return command<std::optional<std::int64_t>>("ZRANK"_cmd, key, member);
}
inline command<std::optional<std::int64_t>> zrevrank(string_view key, arg member) {
  return command<std::optional<std::int64_t>>("ZREVRANK"_cmd, key, member);
}
inline command<std::vector<std::string>> zrange(string_view key, std::int64_t start,
                                                std::int64_t stop) {
  return command<std::vector<std::string>>("ZRANGE"_cmd, key, start, stop);
}
inline command<scored> zrange_withscores(string_view key, std::int64_t start, std::int64_t stop) {
  return command<scored>("ZRANGE"_cmd, key, start, stop, "WITHSCORES");
}
/// Highest scores first (ZRANGE ... REV).
inline command<std::vector<std::string>> zrevrange(string_view key, std::int64_t start,
                                                   std::int64_t stop) {
  return command<std::vector<std::string>>("ZRANGE"_cmd, key, start, stop, "REV");
}
inline command<scored> zrevrange_withscores(string_view key, std::int64_t start,
                                            std::int64_t stop) {
  return command<scored>("ZRANGE"_cmd, key, start, stop, "REV", "WITHSCORES");
}
/// ZRANGE BYSCORE; `min`/`max` as the server takes them ("-inf", "(5", "10").
inline command<std::vector<std::string>> zrangebyscore(string_view key, string_view min,
                                                       string_view max) {
  return command<std::vector<std::string>>("ZRANGE"_cmd, key, min, max, "BYSCORE");
}
inline command<std::int64_t> zrem(string_view key, args members) {
  return command<std::int64_t>("ZREM"_cmd, key, members);
}
inline command<std::int64_t> zcard(string_view key) {
  return command<std::int64_t>("ZCARD"_cmd, key);
}
inline command<std::int64_t> zcount(string_view key, string_view min, string_view max) {
  return command<std::int64_t>("ZCOUNT"_cmd, key, min, max);
}
inline command<std::int64_t> zremrangebyscore(string_view key, string_view min, string_view max) {
  return command<std::int64_t>("ZREMRANGEBYSCORE"_cmd, key, min, max);
}

// --- streams ------------------------------------------------------------------------------

struct xadd_options {
  std::string_view id = "*";
  std::int64_t max_len = 0;  ///< MAXLEN ~ n when positive (approximate trimming)
  bool exact = false;        ///< MAXLEN = n instead of ~
};
/// XADD of field/value pairs; the reply is the new entry's ID.
inline command<std::string> xadd(string_view key, args fields, const xadd_options& o = {}) {
  detail::optional_args extra;
  if (o.max_len > 0) {
    extra.add("MAXLEN");
    extra.add(o.exact ? "=" : "~");
    extra.add_number(o.max_len);
  }
  return command<std::string>("XADD"_cmd, key, extra.get(), o.id, fields);
}
inline command<std::int64_t> xlen(string_view key) {
  return command<std::int64_t>("XLEN"_cmd, key);
}
/// XRANGE from `start` to `end` ("-" and "+" for the ends), at most `count` when positive.
inline command<std::vector<stream_entry>> xrange(string_view key, string_view start = "-",
                                                 string_view end = "+", std::int64_t count = 0) {
  detail::optional_args extra;
  extra.add_if_positive("COUNT", count);
  return command<std::vector<stream_entry>>("XRANGE"_cmd, key, start, end, extra.get());
}
inline command<std::vector<stream_entry>> xrevrange(string_view key, string_view end = "+",
                                                    string_view start = "-",
                                                    std::int64_t count = 0) {
  detail::optional_args extra;
  extra.add_if_positive("COUNT", count);
  return command<std::vector<stream_entry>>("XREVRANGE"_cmd, key, end, start, extra.get());
}
/// XGROUP CREATE, with MKSTREAM when `make_stream`. A group that exists is a BUSYGROUP error.
inline command<std::string> xgroup_create(string_view key, string_view group,
                                          string_view start_id = "$", bool make_stream = true) {
  if (make_stream)
    return command<std::string>("XGROUP"_cmd, "CREATE", key, group, start_id, "MKSTREAM");
  return command<std::string>("XGROUP"_cmd, "CREATE", key, group, start_id);
}

struct xread_options {
  std::int64_t count = 0;  ///< COUNT when positive
  /// BLOCK when set (0: no limit). A blocking read holds its connection: run it through
  /// client::async_exec_dedicated.
  std::optional<std::chrono::milliseconds> block;
  bool no_ack = false;  ///< NOACK (XREADGROUP)
};

namespace detail {
inline void xread_extra(optional_args& extra, const xread_options& o) {
  extra.add_if_positive("COUNT", o.count);
  if (o.block) {
    extra.add("BLOCK");
    extra.add_number(o.block->count());
  }
}
}  // namespace detail

/// XREAD of (stream, id) pairs; nullopt when a blocking read timed out.
template <class StreamIds>
inline command<std::optional<stream_batch>> xread(const StreamIds& streams,
                                                  const xread_options& o = {}) {
  std::vector<std::string_view> keys, ids;
  for (const auto& [k, id] : streams) {
    keys.push_back(k);
    ids.push_back(id);
  }
  detail::optional_args extra;
  detail::xread_extra(extra, o);
  return command<std::optional<stream_batch>>("XREAD"_cmd, extra.get(), "STREAMS", keys, ids);
}
/// XREADGROUP of (stream, id) pairs (">" for new messages); nullopt when a blocking read
/// timed out.
template <class StreamIds>
inline command<std::optional<stream_batch>> xreadgroup(string_view group, string_view consumer,
                                                       const StreamIds& streams,
                                                       const xread_options& o = {}) {
  std::vector<std::string_view> keys, ids;
  for (const auto& [k, id] : streams) {
    keys.push_back(k);
    ids.push_back(id);
  }
  detail::optional_args extra;
  detail::xread_extra(extra, o);
  if (o.no_ack) extra.add("NOACK");
  return command<std::optional<stream_batch>>("XREADGROUP"_cmd, "GROUP", group, consumer,
                                              extra.get(), "STREAMS", keys, ids);
}
/// XACK of one ID or a range of IDs; the reply counts the acknowledged entries.
inline command<std::int64_t> xack(string_view key, string_view group, args ids) {
  return command<std::int64_t>("XACK"_cmd, key, group, ids);
}
inline command<std::int64_t> xdel(string_view key, args ids) {
  return command<std::int64_t>("XDEL"_cmd, key, ids);
}

// --- scripting and functions --------------------------------------------------------------

/// FUNCTION LOAD [REPLACE]; the reply is the library's name.
inline command<std::string> function_load(string_view code, bool replace = false) {
  if (replace) return command<std::string>("FUNCTION"_cmd, "LOAD", "REPLACE", code);
  return command<std::string>("FUNCTION"_cmd, "LOAD", code);
}
/// FCALL (FCALL_RO when `read_only`) of a range of keys and a range of arguments.
template <class T = proto::value>
command<T> fcall(string_view function, args keys, args arguments = {}, bool read_only = false) {
  return command<T>(read_only ? "FCALL_RO"_cmd : "FCALL"_cmd, function,
                    proto::detail::arg_count(keys), keys, arguments);
}

// --- pub/sub (publishing side; subscribing is redcoro::subscriber) -----------------------

/// PUBLISH; the reply is the number of subscribers that received the message.
inline command<std::int64_t> publish(string_view channel, arg message) {
  return command<std::int64_t>("PUBLISH"_cmd, channel, message);
}
/// SPUBLISH to a shard channel.
inline command<std::int64_t> spublish(string_view channel, arg message) {
  return command<std::int64_t>("SPUBLISH"_cmd, channel, message);
}
/// PUBSUB CHANNELS [pattern]: channels with at least one subscriber.
inline command<std::vector<std::string>> pubsub_channels(string_view pattern = {}) {
  if (pattern.empty()) return command<std::vector<std::string>>("PUBSUB"_cmd, "CHANNELS");
  return command<std::vector<std::string>>("PUBSUB"_cmd, "CHANNELS", pattern);
}
/// PUBSUB NUMSUB: subscribers per channel, in the order asked.
inline command<std::vector<std::pair<std::string, std::int64_t>>> pubsub_numsub(args channels) {
  return command<std::vector<std::pair<std::string, std::int64_t>>>("PUBSUB"_cmd, "NUMSUB",
                                                                    channels);
}
inline command<std::vector<std::string>> pubsub_shardchannels(string_view pattern = {}) {
  if (pattern.empty()) return command<std::vector<std::string>>("PUBSUB"_cmd, "SHARDCHANNELS");
  return command<std::vector<std::string>>("PUBSUB"_cmd, "SHARDCHANNELS", pattern);
}

// --- server -------------------------------------------------------------------------------

/// INFO, parsed into sections (all of them when `section` is empty).
inline command<server_info> info(string_view section = {}) {
  if (section.empty()) return command<server_info>("INFO"_cmd);
  return command<server_info>("INFO"_cmd, section);
}
inline command<std::int64_t> dbsize() {
  return command<std::int64_t>("DBSIZE"_cmd);
}
/// MEMORY USAGE in bytes; nullopt when the key does not exist.
inline command<std::optional<std::int64_t>> memory_usage(string_view key) {
  return command<std::optional<std::int64_t>>("MEMORY"_cmd, "USAGE", key);
}
inline command<std::vector<slowlog_entry>> slowlog_get(std::int64_t count = 10) {
  return command<std::vector<slowlog_entry>>("SLOWLOG"_cmd, "GET", count);
}
inline command<std::string> ping() {
  return command<std::string>("PING"_cmd);
}
inline command<std::string> flushdb() {
  return command<std::string>("FLUSHDB"_cmd);
}

}  // namespace cmd
}  // namespace redcoro
