#include <redcoro/client/script.hpp>
#include <redcoro/recipes/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <optional>
#include <system_error>

namespace redcoro::recipes {
namespace detail {

struct session_state {
  session_state(handle h, session_options o) : redis(std::move(h)), opts(std::move(o)) {}
  handle redis;
  session_options opts;
};

namespace {

// Every script starts with these: the server's clock in milliseconds, and the sliding step
// that never goes past the cap. A session is a hash: d (the data), c (created), cap (the
// absolute deadline), idle (the sliding TTL), all in ms of the server's clock; its key
// expires at min(last use + idle, cap). The index is a sorted set of the user's tokens,
// scored by when each expires, and lives as long as its longest-lived session.
#define REDCORO_SESSION_LUA_COMMON                                         \
  "local function now_ms()\n"                                              \
  "  local t = redis.call('TIME')\n"                                       \
  "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"   \
  "end\n"                                                                  \
  "local function keep_index(idx)\n"                                       \
  "  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')\n"        \
  "  if top[2] then redis.call('PEXPIREAT', idx, tonumber(top[2])) end\n"  \
  "end\n"                                                                  \
  "local function slide(key, idx, token, now)\n"                           \
  "  local v = redis.call('HMGET', key, 'cap', 'idle')\n"                  \
  "  if not v[1] then redis.call('ZREM', idx, token) return nil end\n"     \
  "  local cap = tonumber(v[1])\n"                                         \
  "  if now >= cap then\n"                                                 \
  "    redis.call('DEL', key) redis.call('ZREM', idx, token) return nil\n" \
  "  end\n"                                                                \
  "  local exp = math.min(now + tonumber(v[2]), cap)\n"                    \
  "  redis.call('PEXPIREAT', key, exp)\n"                                  \
  "  redis.call('ZADD', idx, exp, token)\n"                                \
  "  keep_index(idx)\n"                                                    \
  "  return exp\n"                                                         \
  "end\n"

// KEYS: session, index. ARGV: data, idle ms, lifetime ms, token. -1: the token is taken.
const script create_script(REDCORO_SESSION_LUA_COMMON
                           "local now = now_ms()\n"
                           "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
                           "local cap = now + tonumber(ARGV[3])\n"
                           "local exp = math.min(now + tonumber(ARGV[2]), cap)\n"
                           "redis.call('HSET', KEYS[1], 'd', ARGV[1], 'c', now, 'cap', cap,"
                           " 'idle', ARGV[2])\n"
                           "redis.call('PEXPIREAT', KEYS[1], exp)\n"
                           "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
                           "redis.call('ZADD', KEYS[2], exp, ARGV[4])\n"
                           "keep_index(KEYS[2])\n"
                           "return exp - now\n");

// KEYS: session, index. ARGV: token, "1" to slide. The data, or nil.
const script get_script(REDCORO_SESSION_LUA_COMMON
                        "local now = now_ms()\n"
                        "local d = redis.call('HGET', KEYS[1], 'd')\n"
                        "if not d then redis.call('ZREM', KEYS[2], ARGV[1]) return false end\n"
                        "if ARGV[2] == '1' then\n"
                        "  if not slide(KEYS[1], KEYS[2], ARGV[1], now) then return false end\n"
                        "elseif now >= tonumber(redis.call('HGET', KEYS[1], 'cap')) then\n"
                        "  redis.call('DEL', KEYS[1]) redis.call('ZREM', KEYS[2], ARGV[1])\n"
                        "  return false\n"
                        "end\n"
                        "return d\n");

// KEYS: session, index. ARGV: token, data (absent: a touch). Time left, or -1.
const script update_script(REDCORO_SESSION_LUA_COMMON
                           "local now = now_ms()\n"
                           "local exp = slide(KEYS[1], KEYS[2], ARGV[1], now)\n"
                           "if not exp then return -1 end\n"
                           "if ARGV[2] then redis.call('HSET', KEYS[1], 'd', ARGV[2]) end\n"
                           "return exp - now\n");

// KEYS: session, index. ARGV: token. 1 when it existed.
const script destroy_script(
    "local n = redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return n\n");

// KEYS: index. The session keys are the index key with "idx" replaced by "s:<token>": built
// here, in the same slot (the user's hash tag), with the connection's key prefix included.
// Pairs of (token, ms left), soonest first.
const script list_script(REDCORO_SESSION_LUA_COMMON
                         "local now = now_ms()\n"
                         "local base = string.sub(KEYS[1], 1, -4)\n"
                         "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
                         "local m = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
                         "local out = {}\n"
                         "for i = 1, #m, 2 do\n"
                         "  local ttl = redis.call('PTTL', base .. 's:' .. m[i])\n"
                         "  if ttl > 0 then\n"
                         "    out[#out + 1] = {m[i], ttl}\n"
                         "  else\n"
                         "    redis.call('ZREM', KEYS[1], m[i])\n"
                         "  end\n"
                         "end\n"
                         "keep_index(KEYS[1])\n"
                         "return out\n");

// KEYS: index. How many sessions ended.
const script destroy_all_script(
    "local base = string.sub(KEYS[1], 1, -4)\n"
    "local m = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "local n = 0\n"
    "for i = 1, #m do n = n + redis.call('DEL', base .. 's:' .. m[i]) end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n");

#undef REDCORO_SESSION_LUA_COMMON

constexpr std::size_t token_bytes = 24;  // 192 bits
constexpr std::size_t token_chars = 32;  // their base64url

bool valid_user(std::string_view user) {
  return !user.empty() && user.find_first_of("{}") == std::string_view::npos;
}

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// 192 bits from the kernel's CSPRNG, as base64url.
error_code random_token(std::string& out) {
  std::array<unsigned char, token_bytes> raw{};
  std::size_t got = 0;
  while (got < raw.size()) {
    const ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return error_code(errno, boost::system::system_category());
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  out.clear();
  for (std::size_t i = 0; i < raw.size(); i += 3) {
    const unsigned v = (unsigned{raw[i]} << 16) | (unsigned{raw[i + 1]} << 8) | raw[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  return {};
}

std::string user_base(const session_state& s, std::string_view user) {
  std::string k;
  k.reserve(s.opts.prefix.size() + user.size() + 8);
  k.append(s.opts.prefix).append("{").append(user).append("}:");
  return k;
}

// The keys of a session id: false when the id cannot be one of ours.
struct session_keys {
  std::string token;
  std::string session;
  std::string index;
};
bool keys_of(const session_state& s, std::string_view id, session_keys& out) {
  if (id.size() < token_chars + 2 || id[token_chars] != '.') return false;
  const std::string_view token = id.substr(0, token_chars);
  const std::string_view user = id.substr(token_chars + 1);
  for (char c : token)
    if (!base64url_char(c)) return false;
  if (!valid_user(user)) return false;
  const std::string base = user_base(s, user);
  out.token = token;
  out.session = base + "s:" + out.token;
  out.index = base + "idx";
  return true;
}

// A transport error, or the server's error reply, as one code.
template <class T>
error_code failure(const error_code& ec, const proto::result<T>& r) {
  if (ec) return ec;
  if (r.has_error()) return r.error().code;
  return {};
}

template <class T>
asio::awaitable<std::pair<error_code, proto::result<T>>> run(session_state& s, command<T> c) {
  auto [ec, r] = co_await s.redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  co_return std::pair{failure(ec, r), std::move(r)};
}

error_code not_found() {
  return error_code(make_error_code(error::session_not_found));
}
error_code invalid() {
  return error_code(make_error_code(error::invalid_argument));
}

}  // namespace

std::shared_ptr<session_state> make_session_state(handle h, session_options o) {
  if (o.idle_timeout.count() <= 0 || o.max_lifetime.count() <= 0 ||
      o.prefix.find_first_of("{}") != std::string::npos)
    throw std::system_error(make_error_code(error::invalid_argument),
                            "redcoro::recipes::session_store: TTLs must be positive and the "
                            "prefix may not hold braces");
  return std::make_shared<session_state>(std::move(h), std::move(o));
}

const handle& redis_of(const session_state& s) noexcept {
  return s.redis;
}
const session_options& options_of(const session_state& s) noexcept {
  return s.opts;
}

asio::awaitable<std::pair<error_code, std::string>> session_create(std::shared_ptr<session_state> s,
                                                                   std::string user,
                                                                   std::string bytes) {
  if (!valid_user(user)) co_return std::pair{invalid(), std::string()};
  const std::string base = user_base(*s, user);
  const std::string idle = std::to_string(s->opts.idle_timeout.count());
  const std::string life = std::to_string(s->opts.max_lifetime.count());
  std::string token;
  // A taken token (twice in 2^96 sessions of one user) is drawn again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (auto ec = random_token(token)) co_return std::pair{ec, std::string()};
    const std::array<std::string, 2> keys{base + "s:" + token, base + "idx"};
    const std::array<std::string_view, 4> args{bytes, idle, life, token};
    auto op = run(*s, create_script.call<std::int64_t>(keys, args));
    auto [ec, r] = co_await std::move(op);
    if (ec) co_return std::pair{ec, std::string()};
    if (*r >= 0) co_return std::pair{error_code(), token + "." + user};
  }
  co_return std::pair{invalid(), std::string()};
}

asio::awaitable<std::pair<error_code, std::string>> session_get(std::shared_ptr<session_state> s,
                                                                std::string id) {
  session_keys k;
  if (!keys_of(*s, id, k)) co_return std::pair{not_found(), std::string()};
  const std::array<std::string, 2> keys{k.session, k.index};
  const std::array<std::string_view, 2> args{k.token, s->opts.touch_on_get ? "1" : "0"};
  auto op = run(*s, get_script.call<std::optional<std::string>>(keys, args));
  auto [ec, r] = co_await std::move(op);
  if (ec) co_return std::pair{ec, std::string()};
  if (!*r) co_return std::pair{not_found(), std::string()};
  co_return std::pair{error_code(), std::move(**r)};
}

namespace {
asio::awaitable<std::pair<error_code, std::chrono::milliseconds>> slide(
    std::shared_ptr<session_state> s, std::string id, const std::string* bytes) {
  using ms = std::chrono::milliseconds;
  session_keys k;
  if (!keys_of(*s, id, k)) co_return std::pair{not_found(), ms(0)};
  const std::array<std::string, 2> keys{k.session, k.index};
  std::optional<command<std::int64_t>> c;
  if (bytes) {
    const std::array<std::string_view, 2> args{k.token, *bytes};
    c.emplace(update_script.call<std::int64_t>(keys, args));
  } else {
    c.emplace(update_script.call<std::int64_t>(keys, k.token));
  }
  auto op = run(*s, std::move(*c));
  auto [ec, r] = co_await std::move(op);
  if (ec) co_return std::pair{ec, ms(0)};
  if (*r < 0) co_return std::pair{not_found(), ms(0)};
  co_return std::pair{error_code(), ms(*r)};
}
}  // namespace

asio::awaitable<std::pair<error_code, std::chrono::milliseconds>> session_update(
    std::shared_ptr<session_state> s, std::string id, std::string bytes) {
  auto op = slide(std::move(s), std::move(id), &bytes);
  co_return co_await std::move(op);
}

asio::awaitable<std::pair<error_code, std::chrono::milliseconds>> session_touch(
    std::shared_ptr<session_state> s, std::string id) {
  auto op = slide(std::move(s), std::move(id), nullptr);
  co_return co_await std::move(op);
}

asio::awaitable<std::pair<error_code, bool>> session_destroy(std::shared_ptr<session_state> s,
                                                             std::string id) {
  session_keys k;
  if (!keys_of(*s, id, k)) co_return std::pair{error_code(), false};
  const std::array<std::string, 2> keys{k.session, k.index};
  auto op = run(*s, destroy_script.call<std::int64_t>(keys, k.token));
  auto [ec, r] = co_await std::move(op);
  if (ec) co_return std::pair{ec, false};
  co_return std::pair{error_code(), *r > 0};
}

asio::awaitable<std::pair<error_code, std::vector<session_info>>> session_list(
    std::shared_ptr<session_state> s, std::string user) {
  std::vector<session_info> out;
  if (!valid_user(user)) co_return std::pair{invalid(), out};
  const std::string index = user_base(*s, user) + "idx";
  auto op = run(*s, list_script.call<std::vector<std::pair<std::string, std::int64_t>>>(index));
  auto [ec, r] = co_await std::move(op);
  if (ec) co_return std::pair{ec, out};
  out.reserve(r->size());
  for (auto& [token, left] : *r)
    out.push_back({token + "." + user, std::chrono::milliseconds(left)});
  co_return std::pair{error_code(), std::move(out)};
}

asio::awaitable<std::pair<error_code, std::int64_t>> session_destroy_all(
    std::shared_ptr<session_state> s, std::string user) {
  if (!valid_user(user)) co_return std::pair{invalid(), std::int64_t{0}};
  const std::string index = user_base(*s, user) + "idx";
  auto op = run(*s, destroy_all_script.call<std::int64_t>(index));
  auto [ec, r] = co_await std::move(op);
  if (ec) co_return std::pair{ec, std::int64_t{0}};
  co_return std::pair{error_code(), *r};
}

}  // namespace detail

session_store::session_store(handle redis, session_options options)
    : s_(detail::make_session_state(std::move(redis), std::move(options))) {}

}  // namespace redcoro::recipes
