#include <redcoro/cache/cache.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>

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

// Resolves a call's TTL against the cache's default: nullopt for none.
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
template <class Page>
asio::awaitable<result<void>> walk(std::shared_ptr<cache_state> s, std::string pattern, Page page) {
  // The cursor keeps a view of the pattern on a single server: it lives in this frame.
  const std::string match = glob_escape(s->opts.prefix) + pattern;
  scan_cursor cursor(cmd::scan_options{.match = match, .count = s->opts.scan_count, .type = {}});
  std::vector<std::string> mine;
  while (!cursor.done()) {
    auto [ec, keys] = co_await scan_step(s->redis, cursor);
    if (ec) co_return failure(*s, pattern, ec, "SCAN failed: " + ec.message());
    mine.clear();
    for (auto& k : keys)
      if (k.starts_with(s->opts.prefix)) mine.push_back(std::move(k));  // MATCH did it; be sure
    if (mine.empty()) continue;
    auto r = co_await page(mine);
    if (!r) co_return r;
  }
  co_return result<void>();
}

}  // namespace

cache_state::cache_state(handle h, cache_options o) : redis(std::move(h)), opts(std::move(o)) {
  if (opts.default_ttl.which() == expiry::kind::cache_default) opts.default_ttl = no_ttl;
  if (opts.default_ttl.which() == expiry::kind::after && opts.default_ttl.duration().count() <= 0)
    throw std::invalid_argument("redcoro::cache: the default TTL must be positive (or no_ttl)");
  if (opts.scan_count <= 0) opts.scan_count = 500;
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
  auto c = cmd::set(s->full(key), bytes, o);
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (failed(*s, key, ec, r, err)) co_return err;
  const bool done = r->has_value();
  if (done) s->sets.add(1);
  co_return done;
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
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
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
                              std::string& bytes, codec_error& err) {
  auto c = cmd::get(s->full(key));
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  const found f = classify(*s, key, ec, r, err);
  if (f == found::value) bytes = std::move(**r);
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

cache_metrics cache::metrics() const noexcept {
  cache_metrics m;
  m.hits = s_->hits.get();
  m.misses = s_->misses.get();
  m.sets = s_->sets.get();
  m.deletes = s_->deletes.get();
  m.loads = s_->loads.get();
  m.load_errors = s_->load_errors.get();
  m.errors = s_->errors.get();
  return m;
}

asio::awaitable<result<void>> cache::set(std::string_view key, std::string_view value, expiry ttl) {
  auto s = s_;
  auto r = co_await detail::store(s, key, std::string(value), ttl, false);
  if (!r) co_return r.error();
  co_return result<void>();
}

asio::awaitable<result<bool>> cache::del(std::string_view key) {
  auto s = s_;
  auto c = cmd::unlink(s->full(key));
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (detail::failed(*s, key, ec, r, err)) co_return err;
  s->deletes.add(static_cast<std::uint64_t>(*r));
  co_return *r > 0;
}

asio::awaitable<result<bool>> cache::exists(std::string_view key) {
  auto s = s_;
  auto c = cmd::exists(s->full(key));
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
  codec_error err;
  if (detail::failed(*s, key, ec, r, err)) co_return err;
  co_return *r > 0;
}

asio::awaitable<result<key_ttl>> cache::ttl(std::string_view key) {
  auto s = s_;
  auto c = cmd::pttl(s->full(key));
  auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
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
    auto [ec, r] = co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    codec_error err;
    if (detail::failed(*s, key, ec, r, err)) co_return err;
    co_return *r;
  }
  // PERSIST answers 0 for a key without a TTL too: EXISTS says whether it is there.
  const std::string& k = s->full(key);
  auto p = pipeline(cmd::persist(k), cmd::exists(k));
  auto [ec, r] = co_await s->redis.async_exec(std::move(p), asio::as_tuple(asio::use_awaitable));
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
      s, std::move(pattern), [&](std::vector<std::string>& page) -> asio::awaitable<result<void>> {
        for (auto& k : page)
          out.push_back(k.substr(skip));
        co_return result<void>();
      });
  if (!r) co_return r.error();
  co_return out;
}

asio::awaitable<result<std::int64_t>> cache::clear() {
  auto s = s_;
  if (s->opts.prefix.empty())
    co_return detail::failure(*s, {}, make_error_code(error::no_prefix),
                              "clear() needs a cache prefix: without one it would remove every "
                              "key of the database");
  std::int64_t removed = 0;
  auto r = co_await detail::walk(
      s, "*", [&](std::vector<std::string>& page) -> asio::awaitable<result<void>> {
        // One UNLINK per page (the cluster client splits it per slot, counts added).
        auto c = cmd::unlink(page);
        auto [ec, n] =
            co_await s->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
        codec_error err;
        if (detail::failed(*s, page.front(), ec, n, err)) co_return err;
        removed += *n;
        s->deletes.add(static_cast<std::uint64_t>(*n));
        co_return result<void>();
      });
  if (!r) co_return r.error();
  co_return removed;
}

}  // namespace redcoro::cache
