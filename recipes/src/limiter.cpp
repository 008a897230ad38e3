#include <redcoro/recipes/limiter.hpp>

#include <cstdio>
#include <stdexcept>

namespace redcoro::recipes {
namespace detail {
namespace {

// Every script: KEYS[1] the key's state; ARGV limit, window (ms), weight n (0: only ask),
// and for the log a nonce that makes its members unique. The time is the server's (TIME);
// numbers written back go through string.format('%.0f'), since Lua's own number-to-string
// keeps 14 digits and a time in microseconds has 16. Each returns
// {allowed, remaining, retry_after ms, reset_after ms}.

// One hash per key: w (the window's start, ms) and c (its count). A count of an older window
// is not carried over; the key expires when its window ends (cleanup only: the window number
// decides).
const script fixed_lua(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now - now % window
local left = start + window - now
local s = redis.call('HMGET', KEYS[1], 'w', 'c')
local used = 0
if tonumber(s[1]) == start then used = tonumber(s[2]) end
local need = math.max(n, 1)
if used + need > limit then
  return {0, limit - used, left, left}
end
if n > 0 then
  used = used + n
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', start), 'c', used)
  redis.call('PEXPIRE', KEYS[1], left)
end
local reset = 0
if used > 0 then reset = left end
return {1, limit - used, 0, reset}
)lua");

// A sorted set of the allowed requests, scored by their time (us). The window is
// (now - window, now]: an entry leaves it `window` after it was added.
const script log_lua(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]) * 1000, tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local used = redis.call('ZCARD', KEYS[1])
local need = math.max(n, 1)
if used + need <= limit then
  if n > 0 then
    local at = string.format('%.0f', now)
    for i = 1, n do
      redis.call('ZADD', KEYS[1], at, ARGV[4] .. ':' .. i)
    end
    used = used + n
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  local reset = 0
  if used > 0 then
    local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    reset = math.ceil((tonumber(newest[2]) + window - now) / 1000)
  end
  return {1, limit - used, 0, reset}
end
-- Room for this request once the (used + need - limit) oldest have left.
local k = used + need - limit
local oldest = redis.call('ZRANGE', KEYS[1], k - 1, k - 1, 'WITHSCORES')
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local retry = math.ceil((tonumber(oldest[2]) + window - now) / 1000)
local reset = math.ceil((tonumber(newest[2]) + window - now) / 1000)
return {0, math.max(limit - used, 0), math.max(retry, 1), math.max(reset, 1)}
)lua");

// Two windows in one hash: w (the current window's start, ms), c (its count), p (the
// previous window's count). The estimate is p * (the share of the previous window still
// inside the sliding one) + c; compared multiplied by the window, so in whole numbers (exact
// in Lua's doubles), never off by a rounding.
const script sliding_lua(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start = now - now % window
local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w, cur, prev = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
if w ~= start then
  if w == start - window then prev = cur else prev = 0 end
  cur = 0
end
local overlap = window - (now - start)
local need = math.max(n, 1)
local function reset_of(c, p)
  if c > 0 then return start + 2 * window - now end
  if p > 0 then return start + window - now end
  return 0
end
if prev * overlap + (cur + need) * window <= limit * window then
  if n > 0 then
    cur = cur + n
    redis.call('HSET', KEYS[1], 'w', string.format('%.0f', start), 'c', cur, 'p', prev)
    redis.call('PEXPIRE', KEYS[1], 2 * window)
  end
  local room = limit * window - prev * overlap - cur * window
  return {1, math.floor(room / window), 0, reset_of(cur, prev)}
end
local retry
if cur + need <= limit then
  -- Later in this window, once enough of the previous one has slid out.
  retry = start + window - math.floor((limit - cur - need) * window / prev) - now
else
  -- In the next window, where this one's count is the previous one.
  retry = start + 2 * window - math.floor((limit - need) * window / cur) - now
end
local room = limit * window - prev * overlap - cur * window
return {0, math.max(math.floor(room / window), 0), math.max(retry, 1), reset_of(cur, prev)}
)lua");

// GCRA in its leaky-bucket form, in whole numbers: the key holds t (when it was last
// written, us) and d (the debt: how far the theoretical arrival time is ahead of t, in us
// times the limit). A request costs `window` of debt (the emission interval, window / limit,
// times the limit), the debt drains at `limit` per us, and a request is allowed while the debt
// stays within window * limit (a full bucket: `limit` requests at once). Exact in Lua's doubles
// while window (us) * limit < 2^53.
const script gcra_lua(R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]) * 1000, tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 't', 'd')
local debt = 0
if s[1] then
  local elapsed = math.min(math.max(now - tonumber(s[1]), 0), window)
  debt = math.max(tonumber(s[2]) - elapsed * limit, 0)
end
local capacity = window * limit
local need = math.max(n, 1)
if debt + need * window > capacity then
  return {0, math.floor((capacity - debt) / window),
          math.ceil((debt + need * window - capacity) / limit / 1000),
          math.ceil(debt / limit / 1000)}
end
if n > 0 then
  debt = debt + n * window
  redis.call('HSET', KEYS[1], 't', string.format('%.0f', now), 'd', string.format('%.0f', debt))
  redis.call('PEXPIRE', KEYS[1], math.ceil(debt / limit / 1000) + 1)
end
return {1, math.floor((capacity - debt) / window), 0, math.ceil(debt / limit / 1000)}
)lua");

const char* name_of(limiter_algorithm a) {
  switch (a) {
    case limiter_algorithm::fixed_window:
      return "fixed";
    case limiter_algorithm::sliding_log:
      return "log";
    case limiter_algorithm::sliding_window:
      return "sliding";
    case limiter_algorithm::token_bucket:
      return "gcra";
  }
  return "unknown";
}

}  // namespace

limiter_state::limiter_state(handle h, limiter_options o)
    : redis(std::move(h)), opts(std::move(o)), rng(std::random_device{}()) {
  if (opts.limit <= 0)
    throw std::invalid_argument("redcoro::recipes::rate_limiter: the limit must be positive");
  if (opts.window.count() <= 0)
    throw std::invalid_argument("redcoro::recipes::rate_limiter: the window must be 1 ms or more");
  if (opts.algorithm == limiter_algorithm::token_bucket &&
      static_cast<double>(opts.window.count()) * 1000.0 * static_cast<double>(opts.limit) >=
          9007199254740992.0)
    throw std::invalid_argument(
        "redcoro::recipes::rate_limiter: token_bucket needs window (us) x limit below 2^53");
  tag = opts.prefix + name_of(opts.algorithm) + ":{";
}

const script& limiter_script(limiter_algorithm a) {
  switch (a) {
    case limiter_algorithm::fixed_window:
      return fixed_lua;
    case limiter_algorithm::sliding_log:
      return log_lua;
    case limiter_algorithm::sliding_window:
      return sliding_lua;
    case limiter_algorithm::token_bucket:
      return gcra_lua;
  }
  return fixed_lua;
}

command<std::array<std::int64_t, 4>> limit_command(limiter_state& s, std::string_view key,
                                                   std::int64_t n, error_code& bad) {
  if (n < 0 || n > s.opts.limit) {
    bad = make_error_code(error::invalid_argument);
    return command<std::array<std::int64_t, 4>>(proto::request());
  }
  // The key is copied into the command as it is made: one buffer serves every call.
  std::string& k = s.key;
  k.assign(s.tag).append(key).push_back('}');
  const script& lua = limiter_script(s.opts.algorithm);
  if (s.opts.algorithm == limiter_algorithm::sliding_log) {
    char nonce[17];
    std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(s.rng()));
    const std::array<cmd::arg, 4> argv{s.opts.limit, s.opts.window.count(), n,
                                       std::string_view(nonce, 16)};
    return lua.call<std::array<std::int64_t, 4>>(k, argv);
  }
  const std::array<cmd::arg, 3> argv{s.opts.limit, s.opts.window.count(), n};
  return lua.call<std::array<std::int64_t, 4>>(k, argv);
}

std::pair<error_code, limit_result> finish_limit(error_code ec, const limit_reply& r) {
  if (ec) return {ec, limit_result()};
  if (r.has_error()) return {r.error().code, limit_result()};
  const auto& v = *r;
  limit_result d;
  d.allowed = v[0] == 1;
  d.remaining = v[1];
  d.retry_after = std::chrono::milliseconds(v[2]);
  d.reset_after = std::chrono::milliseconds(v[3]);
  return {error_code(), d};
}

command<std::int64_t> reset_command(limiter_state& s, std::string_view key) {
  std::string k;
  k.reserve(s.tag.size() + key.size() + 1);
  k.append(s.tag).append(key).push_back('}');
  return command<std::int64_t>("DEL", k);
}

error_code finish_reset(error_code ec, const proto::result<std::int64_t>& r) {
  if (ec) return ec;
  if (r.has_error()) return r.error().code;
  return {};
}

}  // namespace detail

rate_limiter::rate_limiter(handle redis, limiter_options options)
    : s_(std::make_shared<detail::limiter_state>(std::move(redis), std::move(options))) {}

std::string rate_limiter::key_of(std::string_view key) const {
  return s_->tag + std::string(key) + "}";
}

}  // namespace redcoro::recipes
