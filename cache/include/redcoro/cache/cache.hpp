#pragma once

#include <redcoro/cache/codec.hpp>
#include <redcoro/cache/error.hpp>
#include <redcoro/client/commands.hpp>
#include <redcoro/client/histogram.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/tracking_cache.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace redcoro::cache {

namespace asio = boost::asio;

/// The tag of "no TTL": the value stays until it is deleted or evicted.
struct no_ttl_t {
  explicit constexpr no_ttl_t(int) noexcept {}
};
inline constexpr no_ttl_t no_ttl{0};

/// How long a value lives: the cache's default TTL (default-constructed), a duration (sent as
/// `PX`, in milliseconds; a duration finer than a millisecond is rounded up), or no_ttl.
class expiry {
 public:
  enum class kind : std::uint8_t { cache_default, after, none };

  constexpr expiry() noexcept = default;
  constexpr expiry(no_ttl_t) noexcept : kind_(kind::none) {}  // NOLINT: implicit on purpose
  template <class Rep, class Period>
  constexpr expiry(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT
      : kind_(kind::after), ttl_(std::chrono::ceil<std::chrono::milliseconds>(d)) {}

  constexpr kind which() const noexcept { return kind_; }
  /// The duration, for kind::after.
  constexpr std::chrono::milliseconds duration() const noexcept { return ttl_; }

 private:
  kind kind_ = kind::cache_default;
  std::chrono::milliseconds ttl_{0};
};

/// One operation, as the observer sees it.
struct cache_event {
  enum class kind : std::uint8_t { get, set, del, load, refresh, invalidate };
  enum class outcome : std::uint8_t { hit, miss, ok, failed };
  kind what = kind::get;
  outcome result = outcome::ok;
  std::string_view key;  ///< as the caller named it; a prefix, pattern or tag for invalidate
  std::chrono::nanoseconds duration{0};
  std::uint64_t count = 1;  ///< keys: get_many's keys, invalidate's removed keys
};

/// Settings of a cache.
struct cache_options {
  /// Put before every key of this cache (after the connection's own key_prefix, if any):
  /// `"users:"` makes `get("42")` read `users:42`. keys() and clear() see only keys under it;
  /// clear() refuses to run without one.
  std::string prefix{};
  /// The TTL of set() and get_or_load() when the call does not give one: a duration, or
  /// no_ttl (the default). Must be positive.
  expiry default_ttl = no_ttl;
  /// get_or_load(): when set, a loader's "not found" (std::nullopt) is remembered in Redis for
  /// this long, so that a missing record does not reach the source on every call.
  std::optional<std::chrono::milliseconds> negative_ttl{};
  /// COUNT hint of the SCAN steps of keys() and clear(), and so the size of clear()'s UNLINK
  /// batches.
  std::int64_t scan_count = 500;

  /// get_or_load() across processes: when set, a miss first takes a short lock in Redis
  /// (`SET <prefix>~lock:<key> <token> NX PX lease`) so that one process loads while the
  /// others poll for its value, for at most `wait`; a process that still finds neither the
  /// value nor a free lock by then loads by itself (availability over strictness).
  struct load_lock_options {
    std::chrono::milliseconds lease{5000};  ///< how long a lock outlives a crashed loader
    std::chrono::milliseconds wait{5000};   ///< how long the others wait for its value
  };
  std::optional<load_lock_options> load_lock{};
  /// get_or_load(): probabilistic early refresh (the "XFetch" rule). When set (β, 1.0 is the
  /// usual), a hit also reads the key's PTTL in the same round trip, and refreshes the value
  /// in the background, while it is still served, with a probability that grows as the
  /// expiry nears: when `-load_time * β * ln(rand())` ≥ the time left. A hot key is then
  /// reloaded before it expires instead of missing for every caller at once.
  std::optional<double> early_refresh{};
  /// Records the latency of every get (get, async_get, get_many, get_or_load's lookup) in
  /// latency().gets. Costs two clock reads per get; loads are always recorded.
  bool record_latency = false;
  /// Called after every operation with what it did (see cache_event), from the cache's
  /// executor; for exporters and tracing. Setting it times every operation.
  std::function<void(const cache_event&)> observer{};
  /// A near cache: when set, the cache's reads (get, async_get, get_many, get_or_load's
  /// lookup) are answered from process memory when they can be, kept correct by the server's
  /// invalidations (a handle_tracking_cache over the cache's handle, with these settings; see
  /// client/README.md, "Client-side caching"). Everything the cache sends goes through it, so a
  /// value the cache wrote is what it reads back. Copies of the cache share it.
  std::optional<tracking_cache_config> near_cache{};
};

/// Counters of one cache (copies share them), from the moment it was made.
struct cache_metrics {
  std::uint64_t hits = 0;         ///< get/get_many/get_or_load keys found (and decoded)
  std::uint64_t misses = 0;       ///< keys not found (or, in get_or_load, not decodable)
  std::uint64_t sets = 0;         ///< values written (set, set_if_absent that set, loads)
  std::uint64_t deletes = 0;      ///< keys removed by del and clear
  std::uint64_t loads = 0;        ///< loader calls of get_or_load
  std::uint64_t load_errors = 0;  ///< loader calls that threw
  std::uint64_t errors = 0;       ///< calls that failed: transport, server, codec errors
  std::uint64_t invalidated = 0;  ///< keys removed by invalidate_* (and clear)
  std::uint64_t refreshes = 0;    ///< early refreshes started (options().early_refresh)

  /// hits / (hits + misses); 0 before the first get.
  double hit_ratio() const noexcept {
    const auto n = hits + misses;
    return n ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
  }
};

/// Latencies of one cache (copies share them), in nanoseconds.
struct cache_latency {
  histogram gets;   ///< with options().record_latency (or an observer) only
  histogram loads;  ///< the loader calls of get_or_load, always
};

/// A value, or why there is none. The error is a codec_error: `code` is a redcoro::error
/// (transport: connection_lost, timeout, closed...), proto::error::server_error (the
/// server's reply, in `message`), or a cache::error (a value that does not decode: `path`
/// names the member; load_failed; invalid_ttl...); `key` is the key as the caller named it.
template <class T>
class result;

/// Thrown by result::value() when the result holds an error.
class cache_exception : public std::system_error {
 public:
  explicit cache_exception(const codec_error& e)
      : std::system_error(e.code, e.to_string()), error_(e) {}
  const codec_error& error() const noexcept { return error_; }

 private:
  codec_error error_;
};

template <class T>
class result {
 public:
  using value_type = T;
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}            // NOLINT
  result(codec_error e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  bool has_error() const noexcept { return v_.index() == 1; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws cache_exception when there is none.
  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::move(std::get<0>(v_)); }
  T& operator*() noexcept { return *std::get_if<0>(&v_); }
  const T& operator*() const noexcept { return *std::get_if<0>(&v_); }
  T* operator->() noexcept { return std::get_if<0>(&v_); }
  const T* operator->() const noexcept { return std::get_if<0>(&v_); }

  /// The error; only when has_error().
  const codec_error& error() const noexcept { return *std::get_if<1>(&v_); }

 private:
  void check() const {
    if (v_.index() != 0) throw cache_exception(std::get<1>(v_));
  }
  std::variant<T, codec_error> v_;
};

template <>
class result<void> {
 public:
  result() = default;
  result(codec_error e) : error_(std::move(e)) {}  // NOLINT
  bool has_value() const noexcept { return !error_; }
  bool has_error() const noexcept { return static_cast<bool>(error_); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) throw cache_exception(*error_);
  }
  const codec_error& error() const noexcept { return *error_; }

 private:
  std::optional<codec_error> error_;
};

/// What ttl() found.
struct key_ttl {
  bool exists = false;  ///< the key is there
  /// Time left; std::nullopt when the key has no TTL (or does not exist).
  std::optional<std::chrono::milliseconds> remaining;
};

namespace detail {

// One load in flight (get_or_load): the callers that missed the same key wait on the timer
// (cancelled when the load ends) and read the outcome. The value is shared in its stored
// form, so that the flight needs no type.
struct flight {
  explicit flight(const asio::any_io_executor& ex)
      : wake(ex, asio::steady_timer::time_point::max()) {}
  enum class outcome : std::uint8_t { pending, value, absent, failed };
  asio::steady_timer wake;
  outcome state = outcome::pending;
  std::string bytes;
  codec_error error;
};

// A counter written from the cache's executor only (one writer at a time) and read from
// anywhere: a relaxed load and store instead of a locked read-modify-write, which costs
// more than the rest of a cache hit's bookkeeping.
class counter {
 public:
  void add(std::uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// What every copy of a cache shares.
struct cache_state {
  cache_state(handle h, cache_options o);

  handle redis;
  cache_options opts;
  std::optional<handle_tracking_cache> near;  // opts.near_cache

  // Sends through the near cache when there is one, else to the handle.
  template <class X, class Token>
  auto exec(X x, Token&& token) {
    if (near) return near->async_exec(std::move(x), std::forward<Token>(token));
    return redis.async_exec(std::move(x), std::forward<Token>(token));
  }
  std::string key;  // a reused buffer for the prefixed key of the call being started
  std::unordered_map<std::string, std::shared_ptr<flight>> flights;

  counter hits, misses, sets, deletes, loads, load_errors, errors, invalidated, refreshes;
  // Written on the cache's executor only (latency()).
  cache_latency latency;
  // Whether operations are timed: record_latency or an observer.
  bool timed = false;
  // The loader's time, smoothed (early refresh's "load_time"); 0 before the first load.
  double load_ns = 0;

  // The prefixed key, in `key`: valid until the next call.
  const std::string& full(std::string_view k);
};

// How a GET's reply reads: found (the bytes in `reply`), absent, or failed (`err` set).
enum class found : std::uint8_t { value, absent, negative, failed };
found classify(cache_state& s, std::string_view key, const error_code& ec,
               const proto::result<std::optional<std::string>>& reply, codec_error& err);
codec_error decode_failure(cache_state& s, std::string_view key, codec_error where);
codec_error encode_failure(cache_state& s, std::string_view key, codec_error where);

using clock = std::chrono::steady_clock;
// A call's TTL against the cache's default: false when not positive; `out` nullopt for none.
bool resolve(const cache_state& s, expiry ttl, std::optional<std::chrono::milliseconds>& out);
// The observer's event, and the get histogram; only when s.timed.
void observe(cache_state& s, cache_event::kind what, cache_event::outcome how, std::string_view key,
             clock::time_point start, std::uint64_t count = 1);
cache_event::outcome outcome_of(found f) noexcept;

// The non-template coroutines: each keeps the state alive while it runs.
asio::awaitable<result<bool>> store(std::shared_ptr<cache_state> s, std::string_view key,
                                    std::string bytes, expiry ttl, bool only_if_absent);
asio::awaitable<result<void>> store_tagged(std::shared_ptr<cache_state> s, std::string_view key,
                                           std::string bytes, expiry ttl,
                                           std::vector<std::string> tags);
// write_through: the entry goes before the source is written.
asio::awaitable<result<void>> drop_before_write(std::shared_ptr<cache_state> s,
                                                std::string_view key);
codec_error writer_failure(cache_state& s, std::string_view key, std::exception_ptr e);

// What get_or_load's leader does before calling the loader (options().load_lock).
enum class before_load : std::uint8_t {
  load,   // call the loader (holding the lock when `token` is not empty)
  filled  // another process loaded it meanwhile: the flight holds its outcome
};
asio::awaitable<before_load> prepare_load(std::shared_ptr<cache_state> s, std::string_view key,
                                          flight& f, std::string& token);
// After the load: stores it (or the "not found" marker), records the time, lets the lock go.
asio::awaitable<void> finish_load(std::shared_ptr<cache_state> s, std::string_view key, flight& f,
                                  expiry ttl, std::string token, clock::duration took);
codec_error loader_failure(cache_state& s, std::string_view key, std::exception_ptr e);
// Early refresh: whether a hit with `left` to live should reload now.
bool refresh_due(cache_state& s, std::chrono::milliseconds left);
void spawn(cache_state& s, asio::awaitable<void> work);
asio::awaitable<result<std::vector<std::optional<std::string>>>> fetch_many(
    std::shared_ptr<cache_state> s, std::span<const std::string> keys);
// A GET (with its PTTL in `left` when `left` is not null: -1 for none).
asio::awaitable<found> lookup(std::shared_ptr<cache_state> s, std::string_view key,
                              std::string& bytes, codec_error& err,
                              std::chrono::milliseconds* left = nullptr);
asio::awaitable<void> wait_for(std::shared_ptr<flight> f);
// Joins the load of `key` in flight, or starts one (second: true: the caller leads it).
std::pair<std::shared_ptr<flight>, bool> join(cache_state& s, std::string_view key);
// Ends a flight: wakes its waiters and forgets it, so that the next miss loads again.
void land(cache_state& s, std::string_view key, flight& f);
std::string_view absent_marker() noexcept;

// Ends a flight however the leader leaves (a throw, a destroyed coroutine): the waiters are
// never left waiting.
class flight_guard {
 public:
  flight_guard(std::shared_ptr<cache_state> s, std::string_view key, std::shared_ptr<flight> f)
      : s_(std::move(s)), key_(key), f_(std::move(f)) {}
  flight_guard(const flight_guard&) = delete;
  flight_guard& operator=(const flight_guard&) = delete;
  ~flight_guard() {
    if (f_->state == flight::outcome::pending) {
      f_->state = flight::outcome::failed;
      f_->error.code = make_error_code(error::load_failed);
      f_->error.key = key_;
      f_->error.message = "the loading call ended before the loader finished";
    }
    land(*s_, key_, *f_);
  }
  flight& get() noexcept { return *f_; }

 private:
  std::shared_ptr<cache_state> s_;
  std::string key_;
  std::shared_ptr<flight> f_;
};

template <class T>
result<std::optional<T>> decode_shared(cache_state& s, std::string_view key, const flight& f) {
  if (f.state == flight::outcome::absent) return std::optional<T>();
  if (f.state != flight::outcome::value) return f.error;
  T v{};
  codec_error where;
  if (redcoro::cache::decode(f.bytes, v, where)) return decode_failure(s, key, std::move(where));
  return std::optional<T>(std::move(v));
}

// The leader of a key's load: the loader once (or another process's value, with a load lock),
// its outcome in the flight for the callers that wait.
template <class T, class Loader>
asio::awaitable<result<std::optional<T>>> lead(std::shared_ptr<cache_state> s, std::string_view key,
                                               Loader& loader, expiry ttl, flight& f) {
  std::string token;
  const before_load b = co_await prepare_load(s, key, f, token);
  if (b == before_load::filled) co_return decode_shared<T>(*s, key, f);
  std::optional<T> loaded;
  std::exception_ptr thrown;
  s->loads.add(1);
  const auto start = clock::now();
  try {
    loaded = co_await loader();
  } catch (...) {
    thrown = std::current_exception();
  }
  const auto took = clock::now() - start;
  if (thrown) {
    f.state = flight::outcome::failed;
    f.error = loader_failure(*s, key, thrown);
  } else if (!loaded) {
    f.state = flight::outcome::absent;
  } else if (codec_error where; redcoro::cache::encode(*loaded, f.bytes, where)) {
    f.state = flight::outcome::failed;
    f.error = encode_failure(*s, key, std::move(where));
  } else {
    f.state = flight::outcome::value;
  }
  // Stored before the waiters wake and the flight is forgotten, so that a miss seen after
  // this load ends finds the value instead of loading again.
  co_await finish_load(s, key, f, ttl, std::move(token), took);
  if (f.state == flight::outcome::failed) co_return f.error;
  co_return std::move(loaded);
}

// An early refresh, in the background: a load of `key` unless one runs already.
template <class T, class Loader>
asio::awaitable<void> refresh(std::shared_ptr<cache_state> s, std::string key, Loader loader,
                              expiry ttl) {
  auto joined = join(*s, key);
  if (!joined.second) co_return;
  s->refreshes.add(1);
  flight_guard guard(s, key, std::move(joined.first));
  const auto start = s->timed ? clock::now() : clock::time_point();
  auto r = co_await lead<T>(s, key, loader, ttl, guard.get());
  // Nobody waits for it: a failure leaves the old value to expire.
  if (s->timed)
    observe(*s, cache_event::kind::refresh,
            r ? cache_event::outcome::ok : cache_event::outcome::failed, key, start);
}

// The end of a get: the reply as a result.
template <class T>
result<std::optional<T>> finish_get(cache_state& s, std::string_view key, const error_code& ec,
                                    proto::result<std::optional<std::string>>& reply) {
  codec_error err;
  switch (classify(s, key, ec, reply, err)) {
    case found::failed:
      return err;
    case found::absent:
    case found::negative:
      return std::optional<T>();
    case found::value:
      break;
  }
  if constexpr (std::is_same_v<T, std::string> &&
                std::is_base_of_v<text_codec<std::string>, codec<std::string>>) {
    // The stored bytes are the value: hand over the reply's own string.
    return std::optional<T>(std::move(**reply));
  } else {
    T v{};
    codec_error where;
    if (cache::decode(**reply, v, where)) return decode_failure(s, key, std::move(where));
    return std::optional<T>(std::move(v));
  }
}

// The completion of a get's GET: decodes, then calls the caller's handler. It shows the
// caller's executor and cancellation slot as its own (nothing copied), so the connection
// completes it inline and a cancellation reaches the GET.
template <class T, class Handler>
struct get_handler {
  cache_state* s;
  std::string_view key;
  Handler h;

  using executor_type = asio::associated_executor_t<Handler, asio::any_io_executor>;
  executor_type get_executor() const noexcept {
    return asio::get_associated_executor(h, s->redis.get_executor());
  }
  using cancellation_slot_type = asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return asio::get_associated_cancellation_slot(h);
  }

  clock::time_point start;  // only when s->timed

  void operator()(error_code ec, proto::result<std::optional<std::string>> reply) {
    auto r = finish_get<T>(*s, key, ec, reply);
    if (s->timed)
      observe(*s, cache_event::kind::get,
              r.has_error() ? cache_event::outcome::failed
                            : (*r ? cache_event::outcome::hit : cache_event::outcome::miss),
              key, start);
    std::move(h)(std::move(r));
  }
};

}  // namespace detail

/// A typed cache over a redcoro::handle: values stored through codec<T> (strings and numbers
/// as they are, described structs as JSON) under a key prefix, with a default TTL, cache-aside
/// loading with single flight, and counters. It works the same on a single server, a pooled
/// client and a cluster (it uses only the handle).
///
/// \code
///   redcoro::cache::cache users(redis, {.prefix = "users:", .default_ttl = 5min});
///   co_await users.set("42", user);                    // users:42, PX 300000
///   auto u = co_await users.get<user>("42");           // result<std::optional<user>>
///   auto v = co_await users.get_or_load<user>("7", [&] { return load_user(7); });
/// \endcode
///
/// A cache is a small value: copies share one state (the connection, the loads in flight,
/// the counters). Use it from the handle's executor. Keys given as std::string_view, and the
/// cache object itself (or a copy of it), must stay alive until a call completes, as with an
/// Asio I/O object: `co_await c.get<T>(key)` does that.
class cache {
 public:
  /// Throws std::invalid_argument for a default TTL that is not positive.
  explicit cache(handle redis, cache_options options = {});

  const cache_options& options() const noexcept { return s_->opts; }
  handle& redis() const noexcept { return s_->redis; }
  /// The counters now.
  cache_metrics metrics() const noexcept;
  /// What the near cache did (cache_options::near_cache); nullopt without one.
  std::optional<tracking_cache_stats> near_cache_stats() const;

  /// The value of `key`: std::nullopt when it is absent; an error when the connection failed
  /// or the stored bytes do not decode as a T (cache::error, naming the key and the member).
  template <cacheable T>
  asio::awaitable<result<std::optional<T>>> get(std::string_view key) {
    return async_get<T>(key, asio::use_awaitable);
  }

  /// get() with any completion token (a callback, asio::deferred, use_future...):
  /// `void(result<std::optional<T>>)`. A hit costs what the GET underneath costs, plus the
  /// decode: the handler is passed straight to the handle, with no coroutine of our own.
  template <cacheable T, class Token>
  auto async_get(std::string_view key, Token&& token) {
    return asio::async_initiate<Token, void(result<std::optional<T>>)>(
        [](auto handler, detail::cache_state* s, std::string_view k) {
          auto c = cmd::get(s->full(k));
          const auto start = s->timed ? detail::clock::now() : detail::clock::time_point();
          s->exec(std::move(c),
                  detail::get_handler<T, decltype(handler)>{s, k, std::move(handler), start});
        },
        token, s_.get(), key);
  }

  /// The values of `keys`, in order (std::nullopt for each absent one), in one MGET; on a
  /// cluster the handle splits it per slot and puts the values back in order. A value that
  /// does not decode fails the whole call, naming its key.
  template <cacheable T>
  asio::awaitable<result<std::vector<std::optional<T>>>> get_many(
      std::span<const std::string> keys) {
    auto s = s_;
    auto raw = co_await detail::fetch_many(s, keys);
    if (!raw) co_return raw.error();
    std::vector<std::optional<T>> out(raw->size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      auto& bytes = (*raw)[i];
      if (!bytes || *bytes == detail::absent_marker()) continue;
      T v{};
      codec_error where;
      if (redcoro::cache::decode(*bytes, v, where))
        co_return detail::decode_failure(*s, keys[i], std::move(where));
      out[i] = std::move(v);
    }
    co_return out;
  }

  /// Stores `value` under `key` with `ttl` (default: the cache's default TTL).
  template <cacheable T>
  asio::awaitable<result<void>> set(std::string_view key, const T& value, expiry ttl = {}) {
    auto s = s_;
    std::string bytes;
    codec_error where;
    if (redcoro::cache::encode(value, bytes, where))
      co_return detail::encode_failure(*s, key, std::move(where));
    auto r = co_await detail::store(s, key, std::move(bytes), ttl, false);
    if (!r) co_return r.error();
    co_return result<void>();
  }
  /// A string given as a view or a literal, stored as its bytes.
  asio::awaitable<result<void>> set(std::string_view key, std::string_view value, expiry ttl = {});

  /// Stores `value` only if `key` is absent (SET NX): true when it was stored.
  template <cacheable T>
  asio::awaitable<result<bool>> set_if_absent(std::string_view key, const T& value,
                                              expiry ttl = {}) {
    auto s = s_;
    std::string bytes;
    codec_error where;
    if (redcoro::cache::encode(value, bytes, where))
      co_return detail::encode_failure(*s, key, std::move(where));
    auto r = co_await detail::store(s, key, std::move(bytes), ttl, true);
    co_return r;
  }

  /// Removes `key`: true when it was there.
  asio::awaitable<result<bool>> del(std::string_view key);
  /// Whether `key` is there.
  asio::awaitable<result<bool>> exists(std::string_view key);
  /// Whether `key` is there and how long it has left.
  asio::awaitable<result<key_ttl>> ttl(std::string_view key);
  /// Sets the TTL of `key` again (default: the cache's default TTL; no_ttl removes it): true
  /// when the key is there.
  asio::awaitable<result<bool>> touch(std::string_view key, expiry ttl = {});

  /// The keys of this cache that match `pattern` (a Redis glob, applied after the prefix),
  /// without the prefix, through SCAN over the whole deployment (every primary of a cluster).
  /// Keys written or removed while it runs may or may not be seen, as with SCAN.
  asio::awaitable<result<std::vector<std::string>>> keys(std::string pattern = "*");
  /// Removes every key of this cache (SCAN, then UNLINK per batch): how many were removed.
  /// Refused (error::no_prefix) for a cache without a prefix.
  asio::awaitable<result<std::int64_t>> clear();

  /// Stores `value` like set(), and records it under each of `tags`, so that
  /// invalidate_tag() removes it. A tag is any non-empty text without braces
  /// (error::invalid_tag). The value and its tag records are written by one script, per slot
  /// atomic; see the README for how tags work on a cluster.
  template <cacheable T>
  asio::awaitable<result<void>> set_tagged(std::string_view key, const T& value,
                                           std::vector<std::string> tags, expiry ttl = {}) {
    auto s = s_;
    std::string bytes;
    codec_error where;
    if (redcoro::cache::encode(value, bytes, where))
      co_return detail::encode_failure(*s, key, std::move(where));
    co_return co_await detail::store_tagged(s, key, std::move(bytes), ttl, std::move(tags));
  }

  /// Removes every key of this cache that starts with `prefix` (after the cache's own):
  /// SCAN, then UNLINK per page, on every primary. How many keys went. Refused
  /// (error::no_prefix) when the cache has no prefix and `prefix` is empty.
  asio::awaitable<result<std::int64_t>> invalidate_prefix(std::string_view prefix);
  /// Removes every key of this cache that matches `pattern` (a Redis glob, after the
  /// prefix), as invalidate_prefix does. Refused (error::no_prefix) for a pattern of only
  /// `*` on a cache without a prefix.
  asio::awaitable<result<std::int64_t>> invalidate_matching(std::string pattern);
  /// Removes every key that set_tagged() recorded under `tag`, and the tag: how many keys
  /// went. Per slot atomic; across slots, keys tagged while it runs may survive it.
  asio::awaitable<result<std::int64_t>> invalidate_tag(std::string_view tag);

  /// Latency histograms (nanoseconds): a copy. Call it from the cache's executor.
  cache_latency latency() const;

  /// Cache-aside: the value of `key`, or, when it is absent (or does not decode), the value of
  /// `co_await loader()`, stored with `ttl` and returned. `loader` returns an
  /// `asio::awaitable<T>` or `asio::awaitable<std::optional<T>>` (std::nullopt: not found, then
  /// remembered for options().negative_ttl when that is set); it reports a failure by
  /// throwing.
  ///
  /// Single flight: while one load of a key runs, other callers of get_or_load on the same key
  /// through this cache (or a copy) wait for it and share its outcome, value or error; the
  /// loader runs once. A loader that throws stores nothing: every waiter gets
  /// error::load_failed with its message, and the next call loads again. When Redis fails
  /// (connection lost, timeout), the value is loaded and returned anyway; storing it is then
  /// best effort.
  template <cacheable T, class Loader>
  asio::awaitable<result<std::optional<T>>> get_or_load(std::string_view key, Loader loader,
                                                        expiry ttl = {}) {
    auto s = s_;
    {
      std::string bytes;
      codec_error err;
      std::chrono::milliseconds left{-1};
      const bool early = s->opts.early_refresh.has_value();
      const detail::found f = co_await detail::lookup(s, key, bytes, err, early ? &left : nullptr);
      if (f == detail::found::negative) co_return std::optional<T>();
      if (f == detail::found::value) {
        T v{};
        codec_error where;
        if (!redcoro::cache::decode(bytes, v, where)) {
          if constexpr (std::is_copy_constructible_v<Loader>) {
            if (early && detail::refresh_due(*s, left)) {
              std::string k(key);
              detail::spawn(*s, detail::refresh<T>(s, std::move(k), loader, ttl));
            }
          }
          co_return std::optional<T>(std::move(v));
        }
        // A value that does not decode (a schema changed under it): load it again.
        s->hits.sub(1);
        s->misses.add(1);
      }
    }
    auto joined = detail::join(*s, key);
    if (!joined.second) {
      co_await detail::wait_for(joined.first);
      co_return detail::decode_shared<T>(*s, key, *joined.first);
    }
    detail::flight_guard guard(s, key, std::move(joined.first));
    co_return co_await detail::lead<T>(s, key, loader, ttl, guard.get());
  }

  /// Write-through: writes `value` to the source with `co_await writer(value)`, then to the
  /// cache. The entry is removed *before* the writer runs, so that whichever step fails, no
  /// entry older than the source is left: a failed UNLINK stops the call before the source
  /// is touched; a writer that throws gives error::write_failed (its message) and leaves no
  /// entry; a failed SET leaves no entry either (the next get_or_load reads the source).
  template <cacheable T, class Writer>
  asio::awaitable<result<void>> write_through(std::string_view key, const T& value, Writer writer,
                                              expiry ttl = {}) {
    auto s = s_;
    std::string bytes;
    codec_error where;
    if (redcoro::cache::encode(value, bytes, where))
      co_return detail::encode_failure(*s, key, std::move(where));
    auto dropped = co_await detail::drop_before_write(s, key);
    if (!dropped) co_return dropped;
    std::exception_ptr thrown;
    try {
      co_await writer(value);
    } catch (...) {
      thrown = std::current_exception();
    }
    if (thrown) co_return detail::writer_failure(*s, key, thrown);
    auto r = co_await detail::store(s, key, std::move(bytes), ttl, false);
    if (!r) co_return r.error();
    co_return result<void>();
  }

 private:
  friend class write_behind;
  std::shared_ptr<detail::cache_state> s_;
};

}  // namespace redcoro::cache
