#include <redcoro/cache/cache.hpp>
#include <redcoro/client/script.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <array>
#include <cmath>
#include <random>
#include <stdexcept>

namespace redcoro::cache {
namespace detail {
namespace {

using namespace std::literals;

// The value get_or_load stores for "not found" (options().negative_ttl). A NUL first: no
// JSON, number or text a person writes starts with one.
constexpr std::string_view marker = "\0redcoro.cache:absent"sv;

codec_error failure(cache_state& s, std::string_view key, error_code ec, std::string message) {
  s.errors.add(1);
  codec_error e;
  e.code = ec;
  e.key = key;
  e.message = message.empty() ? ec.message() : std::move(message);
  return e;
}

// A transport error, or the server's error reply, as the cache's error.
template <class T>
bool failed(cache_state& s, std::string_view key, const error_code& ec, const proto::result<T>& r,
            codec_error& out) {
  if (ec) {
    out = failure(s, key, ec, {});
    return true;
  }
  if (r.has_error()) {
    out = failure(s, key, r.error().code, r.error().message);
    return true;
  }
  return false;
}

// A glob that matches `text` literally: the prefix may hold * ? [ ] or a backslash.
std::string glob_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// One SCAN step, retried a few times: a cluster's scan reports a node's error without moving
// on, to be called again.
asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan_step(handle& redis,
                                                                           scan_cursor& cursor) {
  std::pair<error_code, std::vector<std::string>> out;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto [ec, keys] = co_await redis.async_scan(cursor, asio::as_tuple(asio::use_awaitable));
    out = {ec, std::move(keys)};
    if (!ec) break;
  }
  co_return out;
}

// Walks the keys of the cache matching `pattern` (after the prefix), a page at a time.
// The cache's own keys under its prefix: tag records and load locks. keys() does not list
// them; clear() removes them with the rest.
constexpr std::string_view own_tag = "~tag";     // ~tag:<tag>:{slot} and ~tagidx:<tag>
constexpr std::string_view own_lock = "~lock:";  // ~lock:<key>

bool own_key(std::string_view k, std::size_t prefix) {
  k.remove_prefix(prefix);
  return k.starts_with(own_tag) || k.starts_with(own_lock);
}

template <class Page>
asio::awaitable<result<void>> walk(std::shared_ptr<cache_state> s, std::string pattern, Page page,
                                   bool with_own = true) {
  // The cursor keeps a view of the pattern on a single server: it lives in this frame.
  const std::string match = glob_escape(s->opts.prefix) + pattern;
  scan_cursor cursor(cmd::scan_options{.match = match, .count = s->opts.scan_count, .type = {}});
  std::vector<std::string> mine;
  while (!cursor.done()) {
    auto [ec, keys] = co_await scan_step(s->redis, cursor);
    if (ec) co_return failure(*s, pattern, ec, "SCAN failed: " + ec.message());
    mine.clear();
    for (auto& k : keys)
      if (k.starts_with(s->opts.prefix) && (with_own || !own_key(k, s->opts.prefix.size())))
        mine.push_back(std::move(k));  // MATCH did it; be sure
    if (mine.empty()) continue;
    auto r = co_await page(mine);
    if (!r) co_return r;
  }
  co_return result<void>();
}

// Removes the keys walk() finds for `pattern`, a page per UNLINK (the cluster client splits
// it per slot and adds the counts).
asio::awaitable<result<std::int64_t>> unlink_matching(std::shared_ptr<cache_state> s,
                                                      std::string pattern) {
  std::int64_t removed = 0;
  const auto start = s->timed ? clock::now() : clock::time_point();
  const std::string label = pattern;
  auto r = co_await walk(
      s, std::move(pattern), [&](std::vector<std::string>& page) -> asio::awaitable<result<void>> {
        auto c = cmd::unlink(page);
        auto [ec, n] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
        codec_error err;
        if (failed(*s, page.front(), ec, n, err)) co_return err;
        removed += *n;
        s->deletes.add(static_cast<std::uint64_t>(*n));
        s->invalidated.add(static_cast<std::uint64_t>(*n));
        co_return result<void>();
      });
  if (s->timed)
    observe(*s, cache_event::kind::invalidate,
            r ? cache_event::outcome::ok : cache_event::outcome::failed, label, start,
            static_cast<std::uint64_t>(removed));
  if (!r) co_return r.error();
  co_return removed;
}

// For every hash slot, a short name that hashes to it: the hash tag that puts a tag's record
// in the slot of the keys it lists. Found once, by trying names of up to four characters in
// order (about 160,000 CRC16s, a few milliseconds).
const std::array<std::string, proto::slot_count>& slot_names() {
  static const auto names = [] {
    std::array<std::string, proto::slot_count> out;
    constexpr std::string_view alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::size_t left = out.size();
    std::string name;
    for (std::size_t len = 1; len <= 4 && left > 0; ++len) {
      name.assign(len, alphabet[0]);
      std::vector<std::size_t> digit(len, 0);
      while (left > 0) {
        auto& slot = out[proto::crc16(name) % proto::slot_count];
        if (slot.empty()) {
          slot = name;
          --left;
        }
        std::size_t i = len;  // next name, as an odometer
        while (i > 0 && ++digit[i - 1] == alphabet.size()) {
          digit[i - 1] = 0;
          name[i - 1] = alphabet[0];
          --i;
        }
        if (i == 0) break;
        name[i - 1] = alphabet[digit[i - 1]];
      }
    }
    return out;
  }();
  return names;
}

bool valid_tag(std::string_view tag) {
  return !tag.empty() && tag.find_first_of("{}") == std::string_view::npos;
}

std::string load_lock_key(const cache_state& s, std::string_view key) {
  std::string k(s.opts.prefix);
  k += own_lock;
  k += key;
  return k;
}

std::string tag_index(const cache_state& s, std::string_view tag) {
  std::string k(s.opts.prefix);
  k += own_tag;
  k += "idx:";
  k += tag;
  return k;
}

std::string tag_set(const cache_state& s, std::string_view tag, std::string_view slot_name) {
  std::string k(s.opts.prefix);
  k += own_tag;
  k += ':';
  k += tag;
  k += ":{";
  k += slot_name;
  k += '}';
  return k;
}

// KEYS[1] the value, KEYS[2..] its tag sets (one slot); ARGV[1] the bytes, ARGV[2] PX (0:
// none). A tag set lives as long as the longest-lived key it lists.
const script set_tagged_script(R"lua(
local px = tonumber(ARGV[2])
if px > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', px)
else redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #KEYS do
  local existed = redis.call('EXISTS', KEYS[i]) == 1
  local left = existed and redis.call('PTTL', KEYS[i]) or -1
  redis.call('SADD', KEYS[i], KEYS[1])
  if px == 0 then redis.call('PERSIST', KEYS[i])
  elseif not existed or (left >= 0 and left < px) then redis.call('PEXPIRE', KEYS[i], px) end
end
return 1)lua");

// KEYS[1] a tag's index: its slot names, taken (read and removed) at once, so that a key
// tagged after this is found by the next invalidation.
const script take_index_script(R"lua(
local m = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return m)lua");

// KEYS[1] a tag set: removes the keys it lists and itself; how many keys were there.
const script drop_tag_script(R"lua(
local m = redis.call('SMEMBERS', KEYS[1])
local n = 0
for i = 1, #m, 500 do
  n = n + redis.call('UNLINK', unpack(m, i, math.min(i + 499, #m)))
end
redis.call('UNLINK', KEYS[1])
return n)lua");

// KEYS[1] a load lock, ARGV[1] the holder's token.
const script release_lock_script(R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0)lua");

std::string random_token() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  static constexpr char hex[] = "0123456789abcdef";
  std::string t(32, '0');
  for (std::size_t i = 0; i < t.size(); i += 16) {
    auto v = gen();
    for (std::size_t j = 0; j < 16; ++j, v >>= 4)
      t[i + j] = hex[v & 15];
  }
  return t;
}

std::string message_of(std::exception_ptr e, std::string_view fallback) {
  try {
    std::rethrow_exception(std::move(e));
  } catch (const std::exception& x) {
    if (*x.what()) return x.what();
  } catch (...) {
    return std::string(fallback) + " (not a std::exception)";
  }
  return std::string(fallback);
}

}  // namespace

bool resolve(const cache_state& s, expiry ttl, std::optional<std::chrono::milliseconds>& out) {
  if (ttl.which() == expiry::kind::cache_default) ttl = s.opts.default_ttl;
  if (ttl.which() != expiry::kind::after) {
    out.reset();
    return true;
  }
  if (ttl.duration().count() <= 0) return false;
  out = ttl.duration();
  return true;
}

cache_state::cache_state(handle h, cache_options o) : redis(std::move(h)), opts(std::move(o)) {
  if (opts.default_ttl.which() == expiry::kind::cache_default) opts.default_ttl = no_ttl;
  if (opts.default_ttl.which() == expiry::kind::after && opts.default_ttl.duration().count() <= 0)
    throw std::invalid_argument("redcoro::cache: the default TTL must be positive (or no_ttl)");
  if (opts.scan_count <= 0) opts.scan_count = 500;
  if (opts.early_refresh && !(*opts.early_refresh > 0))
    throw std::invalid_argument("redcoro::cache: early_refresh (beta) must be positive");
  if (opts.load_lock && (opts.load_lock->lease.count() <= 0 || opts.load_lock->wait.count() < 0))
    throw std::invalid_argument("redcoro::cache: the load lock's lease must be positive");
  timed = opts.record_latency || static_cast<bool>(opts.observer);
  if (opts.near_cache) near.emplace(redis, *opts.near_cache);
}

void observe(cache_state& s, cache_event::kind what, cache_event::outcome how, std::string_view key,
             clock::time_point start, std::uint64_t count) {
  const auto took = clock::now() - start;
  if (what == cache_event::kind::get)
    s.latency.gets.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()));
  if (s.opts.observer) {
    cache_event e;
    e.what = what;
    e.result = how;
    e.key = key;
    e.duration = took;
    e.count = count;
    s.opts.observer(e);
  }
}

cache_event::outcome outcome_of(found f) noexcept {
  switch (f) {
    case found::value:
    case found::negative:
      return cache_event::outcome::hit;
    case found::absent:
      return cache_event::outcome::miss;
    case found::failed:
      break;
  }
  return cache_event::outcome::failed;
}

const std::string& cache_state::full(std::string_view k) {
  key.assign(opts.prefix);
  key.append(k);
  return key;
}

std::string_view absent_marker() noexcept {
  return marker;
}

found classify(cache_state& s, std::string_view key, const error_code& ec,
               const proto::result<std::optional<std::string>>& reply, codec_error& err) {
  if (failed(s, key, ec, reply, err)) return found::failed;
  const auto& v = *reply;
  if (!v) {
    s.misses.add(1);
    return found::absent;
  }
  if (v->size() == marker.size() && *v == marker) {
    s.misses.add(1);
    return found::negative;
  }
  s.hits.add(1);
  return found::value;
}

codec_error decode_failure(cache_state& s, std::string_view key, codec_error where) {
  s.errors.add(1);
  where.key = key;
  return where;
}

codec_error encode_failure(cache_state& s, std::string_view key, codec_error where) {
  s.errors.add(1);
  where.key = key;
  return where;
}

asio::awaitable<result<bool>> store(std::shared_ptr<cache_state> s, std::string_view key,
                                    std::string bytes, expiry ttl, bool only_if_absent) {
  std::optional<std::chrono::milliseconds> px;
  if (!resolve(*s, ttl, px))
    co_return failure(*s, key, make_error_code(error::invalid_ttl),
                      "a TTL must be positive: " + std::to_string(ttl.duration().count()) +
                          " ms (use no_ttl for none)");
  // cmd::set drops a PX that is not positive; resolve() has refused those.
  cmd::set_options o;
  if (px) o.ttl = *px;
  if (only_if_absent) o.condition = cmd::set_if::absent;
  const auto start = s->timed ? clock::now() : clock::time_point();
  auto c = cmd::set(s->full(key), bytes, o);
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  const bool bad = failed(*s, key, ec, r, err);
  if (s->timed)
    observe(*s, cache_event::kind::set,
            bad ? cache_event::outcome::failed : cache_event::outcome::ok, key, start);
  if (bad) co_return err;
  const bool done = r->has_value();
  if (done) s->sets.add(1);
  co_return done;
}

asio::awaitable<result<void>> store_tagged(std::shared_ptr<cache_state> s, std::string_view key,
                                           std::string bytes, expiry ttl,
                                           std::vector<std::string> tags) {
  std::optional<std::chrono::milliseconds> px;
  if (!resolve(*s, ttl, px))
    co_return failure(*s, key, make_error_code(error::invalid_ttl), "a TTL must be positive");
  // The slot the value lands in, as the server hashes it: the connection's prefix too.
  std::string value_key(s->opts.prefix);
  value_key += key;
  const std::string server_key = std::string(s->redis.key_prefix()) + value_key;
  const std::uint16_t slot = proto::key_slot(server_key);
  const std::string& slot_name = slot_names()[slot];
  std::vector<std::string> keys{value_key};
  for (const auto& tag : tags) {
    if (!valid_tag(tag))
      co_return failure(*s, key, make_error_code(error::invalid_tag),
                        "a tag must not be empty nor hold a brace: \"" + tag + "\"");
    keys.push_back(tag_set(*s, tag, slot_name));
    // A brace in a prefix could give the record another hash tag than the value's.
    if (proto::key_slot(std::string(s->redis.key_prefix()) + keys.back()) != slot)
      co_return failure(
          *s, key, make_error_code(error::invalid_tag),
          "the prefix's braces put the tag's record in another slot than \"" + server_key + "\"");
  }
  // The index first: a record it does not name would never be invalidated.
  for (const auto& tag : tags) {
    auto c = cmd::sadd(tag_index(*s, tag), slot_name);
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    codec_error err;
    if (failed(*s, key, ec, r, err)) co_return err;
  }
  std::vector<std::string> args{std::move(bytes), std::to_string(px ? px->count() : 0)};
  auto c = set_tagged_script.call<std::int64_t>(keys, args);
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (failed(*s, key, ec, r, err)) co_return err;
  s->sets.add(1);
  co_return result<void>();
}

asio::awaitable<result<void>> drop_before_write(std::shared_ptr<cache_state> s,
                                                std::string_view key) {
  auto c = cmd::unlink(s->full(key));
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (failed(*s, key, ec, r, err)) co_return err;
  co_return result<void>();
}

codec_error writer_failure(cache_state& s, std::string_view key, std::exception_ptr e) {
  return failure(s, key, make_error_code(error::write_failed),
                 message_of(std::move(e), "the writer threw"));
}

codec_error loader_failure(cache_state& s, std::string_view key, std::exception_ptr e) {
  s.load_errors.add(1);
  return failure(s, key, make_error_code(error::load_failed),
                 message_of(std::move(e), "the loader threw"));
}

asio::awaitable<before_load> prepare_load(std::shared_ptr<cache_state> s, std::string_view key,
                                          flight& f, std::string& token) {
  if (!s->opts.load_lock) co_return before_load::load;
  const auto opts = *s->opts.load_lock;
  const std::string lock = load_lock_key(*s, key);
  const std::string value_key = s->opts.prefix + std::string(key);
  auto take = [&]() -> asio::awaitable<int> {  // 1 taken, 0 busy, -1 Redis failed
    std::string t = random_token();
    auto c =
        cmd::set(lock, t, cmd::set_options{.ttl = opts.lease, .condition = cmd::set_if::absent});
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    if (ec || r.has_error()) co_return -1;
    if (!r->has_value()) co_return 0;
    token = std::move(t);
    co_return 1;
  };
  const int first = co_await take();
  if (first != 0) co_return before_load::load;  // ours, or Redis fails: load anyway
  // Another process loads: wait for its value, polling with a growing step.
  const auto deadline = clock::now() + opts.wait;
  auto step = std::chrono::milliseconds(2);
  asio::steady_timer timer(s->redis.get_executor());
  while (clock::now() < deadline) {
    timer.expires_after(std::min<clock::duration>(step, deadline - clock::now()));
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    step = std::min(step * 2, std::chrono::milliseconds(50));
    auto p = pipeline(cmd::get(value_key), cmd::exists(lock));
    auto [ec, r] = co_await s->exec(std::move(p), asio::as_tuple(asio::use_awaitable));
    auto& got = std::get<0>(r);
    if (ec || got.has_error() || std::get<1>(r).has_error()) break;
    if (got->has_value()) {
      if (**got == marker) {
        f.state = flight::outcome::absent;
      } else {
        f.bytes = std::move(**got);
        f.state = flight::outcome::value;
      }
      co_return before_load::filled;
    }
    // The lock went without a value: its loader failed or found nothing. Take it over.
    if (*std::get<1>(r) == 0 && co_await take() != 0) break;
  }
  co_return before_load::load;
}

asio::awaitable<void> finish_load(std::shared_ptr<cache_state> s, std::string_view key, flight& f,
                                  expiry ttl, std::string token, clock::duration took) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
  s->latency.loads.record(static_cast<std::uint64_t>(ns));
  s->load_ns = s->load_ns == 0 ? static_cast<double>(ns) : 0.8 * s->load_ns + 0.2 * ns;
  if (s->opts.observer) {
    cache_event e;
    e.what = cache_event::kind::load;
    e.result = f.state == flight::outcome::failed ? cache_event::outcome::failed
                                                  : cache_event::outcome::ok;
    e.key = key;
    e.duration = took;
    s->opts.observer(e);
  }
  // A failure to store is not the caller's: the value is good.
  if (f.state == flight::outcome::value) {
    auto stored = co_await store(s, key, f.bytes, ttl, false);
    (void)stored;
  } else if (f.state == flight::outcome::absent && s->opts.negative_ttl) {
    auto stored = co_await store(s, key, std::string(marker), *s->opts.negative_ttl, false);
    (void)stored;
  }
  if (!token.empty()) {
    const std::string lock = load_lock_key(*s, key);
    auto c = release_lock_script.call<std::int64_t>(lock, token);
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    (void)ec;  // not released: it expires after its lease
  }
}

bool refresh_due(cache_state& s, std::chrono::milliseconds left) {
  if (left.count() < 0) return false;  // no TTL (or gone)
  thread_local std::mt19937_64 gen(std::random_device{}());
  // u in (0, 1]: -ln(u) in [0, inf).
  const double u = 1.0 - std::uniform_real_distribution<double>(0.0, 1.0)(gen);
  // Before this process has loaded anything, a load is taken to last 100 ms.
  const double load_ms = s.load_ns > 0 ? s.load_ns / 1e6 : 100.0;
  return -load_ms * *s.opts.early_refresh * std::log(u) >= static_cast<double>(left.count());
}

void spawn(cache_state& s, asio::awaitable<void> work) {
  asio::co_spawn(s.redis.get_executor(), std::move(work), asio::detached);
}

asio::awaitable<result<std::vector<std::optional<std::string>>>> fetch_many(
    std::shared_ptr<cache_state> s, std::span<const std::string> keys) {
  using out = result<std::vector<std::optional<std::string>>>;
  if (keys.empty()) co_return out(std::vector<std::optional<std::string>>());
  std::vector<std::string> full;
  full.reserve(keys.size());
  for (const auto& k : keys)
    full.push_back(s->opts.prefix + k);
  auto c = cmd::mget(full);
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (failed(*s, keys.front(), ec, r, err)) co_return err;
  std::uint64_t hits = 0;
  for (const auto& v : *r)
    if (v && *v != marker) ++hits;
  s->hits.add(hits);
  s->misses.add(r->size() - hits);
  co_return std::move(*r);
}

asio::awaitable<found> lookup(std::shared_ptr<cache_state> s, std::string_view key,
                              std::string& bytes, codec_error& err,
                              std::chrono::milliseconds* left) {
  const auto start = s->timed ? clock::now() : clock::time_point();
  found f;
  if (left) {
    // The time left comes in the same round trip (early refresh).
    const std::string& k = s->full(key);
    auto p = pipeline(cmd::get(k), cmd::pttl(k));
    auto [ec, r] = co_await s->exec(std::move(p), asio::as_tuple(asio::use_awaitable));
    auto& got = std::get<0>(r);
    f = classify(*s, key, ec, got, err);
    if (f == found::value) bytes = std::move(**got);
    const auto& ttl = std::get<1>(r);
    *left = std::chrono::milliseconds(!ec && ttl.has_value() ? *ttl : -1);
  } else {
    auto c = cmd::get(s->full(key));
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    f = classify(*s, key, ec, r, err);
    if (f == found::value) bytes = std::move(**r);
  }
  if (s->timed) observe(*s, cache_event::kind::get, outcome_of(f), key, start);
  if (f == found::negative) {
    // A remembered "not found" is an answer: a hit for get_or_load.
    s->misses.sub(1);
    s->hits.add(1);
  }
  co_return f;
}

asio::awaitable<void> wait_for(std::shared_ptr<flight> f) {
  while (f->state == flight::outcome::pending) {
    error_code ec;
    co_await f->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

std::pair<std::shared_ptr<flight>, bool> join(cache_state& s, std::string_view key) {
  auto [it, inserted] = s.flights.try_emplace(s.full(key));
  if (inserted) it->second = std::make_shared<flight>(s.redis.get_executor());
  return {it->second, inserted};
}

void land(cache_state& s, std::string_view key, flight& f) {
  auto it = s.flights.find(s.full(key));
  if (it != s.flights.end() && it->second.get() == &f) s.flights.erase(it);
  f.wake.cancel();
}

}  // namespace detail

cache::cache(handle redis, cache_options options)
    : s_(std::make_shared<detail::cache_state>(std::move(redis), std::move(options))) {}

std::optional<tracking_cache_stats> cache::near_cache_stats() const {
  if (!s_->near) return std::nullopt;
  return s_->near->stats();
}

cache_metrics cache::metrics() const noexcept {
  cache_metrics m;
  m.hits = s_->hits.get();
  m.misses = s_->misses.get();
  m.sets = s_->sets.get();
  m.deletes = s_->deletes.get();
  m.loads = s_->loads.get();
  m.load_errors = s_->load_errors.get();
  m.errors = s_->errors.get();
  m.invalidated = s_->invalidated.get();
  m.refreshes = s_->refreshes.get();
  return m;
}

cache_latency cache::latency() const {
  return s_->latency;
}

asio::awaitable<result<void>> cache::set(std::string_view key, std::string_view value, expiry ttl) {
  auto s = s_;
  auto r = co_await detail::store(s, key, std::string(value), ttl, false);
  if (!r) co_return r.error();
  co_return result<void>();
}

asio::awaitable<result<bool>> cache::del(std::string_view key) {
  auto s = s_;
  const auto start = s->timed ? detail::clock::now() : detail::clock::time_point();
  auto c = cmd::unlink(s->full(key));
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  const bool bad = detail::failed(*s, key, ec, r, err);
  if (s->timed)
    detail::observe(*s, cache_event::kind::del,
                    bad ? cache_event::outcome::failed : cache_event::outcome::ok, key, start);
  if (bad) co_return err;
  s->deletes.add(static_cast<std::uint64_t>(*r));
  co_return *r > 0;
}

asio::awaitable<result<bool>> cache::exists(std::string_view key) {
  auto s = s_;
  auto c = cmd::exists(s->full(key));
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (detail::failed(*s, key, ec, r, err)) co_return err;
  co_return *r > 0;
}

asio::awaitable<result<key_ttl>> cache::ttl(std::string_view key) {
  auto s = s_;
  auto c = cmd::pttl(s->full(key));
  auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (detail::failed(*s, key, ec, r, err)) co_return err;
  key_ttl out;
  out.exists = *r != -2;
  if (*r >= 0) out.remaining = std::chrono::milliseconds(*r);
  co_return out;
}

asio::awaitable<result<bool>> cache::touch(std::string_view key, expiry ttl) {
  auto s = s_;
  std::optional<std::chrono::milliseconds> px;
  if (!detail::resolve(*s, ttl, px))
    co_return detail::failure(*s, key, make_error_code(error::invalid_ttl), {});
  if (px) {
    auto c = cmd::expire(s->full(key), *px);
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    codec_error err;
    if (detail::failed(*s, key, ec, r, err)) co_return err;
    co_return *r;
  }
  // PERSIST answers 0 for a key without a TTL too: EXISTS says whether it is there.
  const std::string& k = s->full(key);
  auto p = pipeline(cmd::persist(k), cmd::exists(k));
  auto [ec, r] = co_await s->exec(std::move(p), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (detail::failed(*s, key, ec, std::get<0>(r), err)) co_return err;
  if (detail::failed(*s, key, ec, std::get<1>(r), err)) co_return err;
  co_return *std::get<1>(r) > 0;
}

asio::awaitable<result<std::vector<std::string>>> cache::keys(std::string pattern) {
  auto s = s_;
  std::vector<std::string> out;
  const std::size_t skip = s->opts.prefix.size();
  auto r = co_await detail::walk(
      s, std::move(pattern),
      [&](std::vector<std::string>& page) -> asio::awaitable<result<void>> {
        for (auto& k : page)
          out.push_back(k.substr(skip));
        co_return result<void>();
      },
      false);
  if (!r) co_return r.error();
  co_return out;
}

asio::awaitable<result<std::int64_t>> cache::clear() {
  auto s = s_;
  if (s->opts.prefix.empty())
    co_return detail::failure(*s, {}, make_error_code(error::no_prefix),
                              "clear() needs a cache prefix: without one it would remove every "
                              "key of the database");
  co_return co_await detail::unlink_matching(s, "*");
}

asio::awaitable<result<std::int64_t>> cache::invalidate_prefix(std::string_view prefix) {
  auto s = s_;
  if (s->opts.prefix.empty() && prefix.empty())
    co_return detail::failure(*s, {}, make_error_code(error::no_prefix),
                              "invalidate_prefix(\"\") on a cache without a prefix would remove "
                              "every key of the database");
  co_return co_await detail::unlink_matching(s, detail::glob_escape(prefix) + "*");
}

asio::awaitable<result<std::int64_t>> cache::invalidate_matching(std::string pattern) {
  auto s = s_;
  if (s->opts.prefix.empty() && pattern.find_first_not_of('*') == std::string::npos)
    co_return detail::failure(*s, pattern, make_error_code(error::no_prefix),
                              "invalidate_matching(\"" + pattern +
                                  "\") on a cache without a prefix would remove every key of "
                                  "the database");
  co_return co_await detail::unlink_matching(s, std::move(pattern));
}

asio::awaitable<result<std::int64_t>> cache::invalidate_tag(std::string_view tag_view) {
  auto s = s_;
  const std::string tag(tag_view);
  if (!detail::valid_tag(tag))
    co_return detail::failure(*s, tag, make_error_code(error::invalid_tag),
                              "a tag must not be empty nor hold a brace: \"" + tag + "\"");
  const auto start = s->timed ? detail::clock::now() : detail::clock::time_point();
  const std::string index = detail::tag_index(*s, tag);
  std::vector<std::string> names;
  {
    auto c = detail::take_index_script.call<std::vector<std::string>>(index);
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    codec_error err;
    if (detail::failed(*s, tag, ec, r, err)) co_return err;
    names = std::move(*r);
  }
  // One script per slot that holds keys of the tag, 16 at a time.
  std::int64_t removed = 0;
  std::vector<std::string> unfinished;  // put back into the index, for the next call
  std::optional<codec_error> first_error;
  std::size_t next = 0;
  std::size_t running = 0;
  asio::steady_timer all_done(s->redis.get_executor(), asio::steady_timer::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < names.size()) {
      const std::string& name = names[next++];
      auto c = detail::drop_tag_script.call<std::int64_t>(detail::tag_set(*s, tag, name));
      auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
      codec_error err;
      if (detail::failed(*s, tag, ec, r, err)) {
        unfinished.push_back(name);
        if (!first_error) first_error = std::move(err);
      } else {
        removed += *r;
      }
    }
    if (--running == 0) all_done.cancel();
  };
  const std::size_t workers = std::min<std::size_t>(16, names.size());
  running = workers;
  for (std::size_t i = 0; i < workers; ++i)
    asio::co_spawn(s->redis.get_executor(), worker(), asio::detached);
  while (running > 0) {
    error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  s->deletes.add(static_cast<std::uint64_t>(removed));
  s->invalidated.add(static_cast<std::uint64_t>(removed));
  if (!unfinished.empty()) {
    auto c = cmd::sadd(index, unfinished);
    auto [ec, r] = co_await s->exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    (void)ec;  // reported below either way
  }
  if (s->timed)
    detail::observe(*s, cache_event::kind::invalidate,
                    first_error ? cache_event::outcome::failed : cache_event::outcome::ok, tag,
                    start, static_cast<std::uint64_t>(removed));
  if (first_error) co_return *first_error;
  co_return removed;
}

}  // namespace redcoro::cache
