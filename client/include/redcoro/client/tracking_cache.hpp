#pragma once

#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/operation.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace redcoro {

/// How the server decides which keys' changes it reports (CLIENT TRACKING).
enum class tracking_mode : std::uint8_t {
  /// The server remembers the keys this connection read and reports their changes once
  /// each: every cacheable read is cached.
  reads,
  /// BCAST: the server reports every change to keys under `prefixes` (all keys when empty),
  /// read or not; only reads of such keys are cached.
  broadcast,
  /// OPTIN: a read is cached only when the caller asks (async_exec_cached); the others go to
  /// the server and are not remembered there.
  opt_in,
};

struct tracking_cache_config {
  tracking_mode mode = tracking_mode::reads;
  /// broadcast: the key prefixes to track (as the caller names keys: a connection's
  /// key_prefix is added to them). Empty: every key.
  std::vector<std::string> prefixes;
  /// NOLOOP: the server does not report the changes this connection makes itself; the cache
  /// drops what a write through it names instead, before sending it.
  bool noloop = false;
  /// What the cached replies may take, counted with their commands and bookkeeping; past it
  /// the least recently used are dropped.
  std::size_t max_bytes = 64 * 1024 * 1024;
  /// The longest a reply is served locally; 0: as long as the key's own TTL allows (and no
  /// change is reported). A key's TTL on the server always bounds it.
  std::chrono::milliseconds max_ttl{0};
};

/// What a tracking_cache did so far, and holds now.
struct tracking_cache_stats {
  std::uint64_t hits = 0;           ///< replies served from process memory
  std::uint64_t misses = 0;         ///< cacheable reads sent to the server
  std::uint64_t shared_misses = 0;  ///< reads that waited for another's identical miss
  std::uint64_t uncached = 0;       ///< requests passed through (not cacheable, or off)
  std::uint64_t invalidations = 0;  ///< cached replies dropped because their key changed
  std::uint64_t flushes = 0;        ///< times everything was dropped (disconnect, FLUSHALL)
  std::uint64_t evictions = 0;      ///< dropped for room (max_bytes)
  std::uint64_t expirations = 0;    ///< dropped because their TTL (or max_ttl) passed
  std::uint64_t not_stored = 0;     ///< replies not kept: their key changed while in flight
  std::size_t entries = 0;
  std::size_t bytes = 0;
  /// The current session tracks keys: without it nothing is served locally.
  bool available = false;
};

namespace detail {
struct tracking_cache_impl;

// One async_exec on a tracking_cache: the operation layer's entry. It is a connection's entry
// too: a request that is not cached is queued on the connection as it is.
struct tracking_entry : exec_entry {
  using done_fn = void (*)(tracking_entry& self, error_code ec);
  tracking_entry(const proto::request& r, proto::any_adapter a, bool cache, done_fn f)
      : exec_entry(r, a, &from_connection), done(f), cache_asked(cache) {}
  static void from_connection(exec_entry& e, error_code ec) {
    auto& self = static_cast<tracking_entry&>(e);
    self.done(self, ec);
  }

  done_fn done;
  bool cache_asked;        // async_exec_cached
  bool forwarded = false;  // queued on the connection
  void* fill = nullptr;    // the miss it waits for
  tracking_entry* next_waiter = nullptr;
};

// The entry types of async_exec (cache as the mode says) and async_exec_cached.
template <bool Cache>
struct tracking_entry_of : tracking_entry {
  using complete_fn = void (*)(tracking_entry_of& self, error_code ec);
  tracking_entry_of(const proto::request& r, proto::any_adapter a, complete_fn f)
      : tracking_entry(r, a, Cache, &relay), complete_of(f) {}
  static void relay(tracking_entry& e, error_code ec) {
    auto& self = static_cast<tracking_entry_of&>(e);
    self.complete_of(self, ec);
  }
  complete_fn complete_of;
};

void* allocate_op(tracking_cache_impl& c, std::size_t size);
void deallocate_op(tracking_cache_impl& c, void* p, std::size_t size) noexcept;
const asio::any_io_executor& executor_of(const tracking_cache_impl& c) noexcept;
bool initiating(const tracking_cache_impl& c) noexcept;
void start_exec(tracking_cache_impl& c, tracking_entry& e);
void cancel_exec(tracking_cache_impl& c, tracking_entry& e, asio::cancellation_type type);
bool try_cached(tracking_cache_impl& c, const proto::request& req, proto::any_adapter a);
tracking_cache_stats stats_of(const tracking_cache_impl& c);
bool available(const tracking_cache_impl& c) noexcept;
void clear(tracking_cache_impl& c);
/// Detaches it from its connections and drops everything (the owning object is going).
void close(tracking_cache_impl& c);
}  // namespace detail

namespace detail {

/// What every client-side cache offers (tracking_cache over a connection,
/// cluster_tracking_cache over a cluster); see tracking_cache.
class tracking_cache_base {
 public:
  using executor_type = asio::any_io_executor;

  tracking_cache_base(const tracking_cache_base&) = delete;
  tracking_cache_base& operator=(const tracking_cache_base&) = delete;

  executor_type get_executor() const noexcept { return executor_of(*impl_); }

  /// As connection::async_exec; a cacheable read is answered from process memory when it
  /// can be, and kept when it was not (in opt_in mode: only through async_exec_cached).
  template <class Response, class Token>
  auto async_exec(const proto::request& req, Response& resp, Token&& token) {
    return initiate_exec<tracking_entry_of<false>>(*impl_, req, resp, std::forward<Token>(token));
  }
  template <owned_request X, class Token>
  auto async_exec(X x, Token&& token) {
    return initiate_exec<tracking_entry_of<false>>(*impl_, std::move(x),
                                                   std::forward<Token>(token));
  }
  /// As async_exec, and a cacheable read is kept in opt_in mode too (CLIENT CACHING YES).
  template <class Response, class Token>
  auto async_exec_cached(const proto::request& req, Response& resp, Token&& token) {
    return initiate_exec<tracking_entry_of<true>>(*impl_, req, resp, std::forward<Token>(token));
  }
  template <owned_request X, class Token>
  auto async_exec_cached(X x, Token&& token) {
    return initiate_exec<tracking_entry_of<true>>(*impl_, std::move(x), std::forward<Token>(token));
  }

  /// Without waiting: decodes the locally held reply of `req` (one cacheable command) into
  /// `resp` and returns true, or returns false and leaves `resp` as it was. For a loop that
  /// must not suspend (a game tick); on false, read through async_exec.
  template <class Response>
  bool try_get(const proto::request& req, Response& resp) {
    proto::response_adapter<Response> a(resp);
    return try_cached(*impl_, req, proto::any_adapter(a));
  }

  tracking_cache_stats stats() const { return stats_of(*impl_); }
  /// True while the sessions that answer reads track keys (tracking_cache_stats::available).
  bool available() const noexcept { return detail::available(*impl_); }
  /// Drops every locally held reply.
  void clear() { detail::clear(*impl_); }

  /// The cache's state, shared: what a reader of stats() holds that may outlive the cache
  /// (the HTTP exporter). Read it on the cache's executor only.
  friend std::shared_ptr<const tracking_cache_impl> shared_state(
      const tracking_cache_base& c) noexcept {
    return c.impl_;
  }

 protected:
  tracking_cache_base() = default;
  ~tracking_cache_base() {
    if (impl_) close(*impl_);
  }
  std::shared_ptr<tracking_cache_impl> impl_;  // shared with its misses in flight
};

}  // namespace detail

/// Client-side caching over one connection: replies of cacheable reads kept in process
/// memory and served from there (about a hundred nanoseconds instead of a round trip), kept
/// correct by the server's invalidations (CLIENT TRACKING, RESP3).
///
/// \code
///   redcoro::connection conn(ex, cfg);
///   redcoro::tracking_cache_config local;
///   local.max_bytes = 256 << 20;
///   redcoro::tracking_cache cache(conn, local);
///   conn.async_run(asio::detached);
///   auto v = co_await cache.async_exec(redcoro::cmd::get("config:limits"), asio::use_awaitable);
/// \endcode
///
/// What is cached: a request of exactly one command from a fixed list of read-only commands
/// with deterministic replies (client/README.md, "Client-side caching"); anything else goes
/// to the connection unchanged, so the cache can stand where the connection did (it
/// satisfies `executes_requests`). Error replies are not cached. To bypass it for one call,
/// call the connection (next_layer()).
///
/// The guarantee: a reply is served locally only while the session that read it lasts and
/// the server has not reported a change to its key; the invalidations are read in order with
/// the replies, so a reply read before an invalidation is never kept after it, and a read in
/// flight when its key changes is not kept at all. A disconnect, or a session whose server
/// refuses tracking (RESP2), drops everything and serves nothing locally until a session
/// tracks again. Concurrent misses of the same command share one request.
///
/// Make it before the connection runs, or while it runs (it then sends CLIENT TRACKING and
/// serves locally once the server accepted it); use it from the connection's executor;
/// destroy it before the connection.
class tracking_cache : public detail::tracking_cache_base {
 public:
  explicit tracking_cache(connection& conn, tracking_cache_config cfg = {});

  /// The connection: calls made on it bypass the local store.
  connection& next_layer() noexcept { return conn_; }

 private:
  connection& conn_;
};

}  // namespace redcoro
