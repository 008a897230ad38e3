#include "connection_impl.hpp"
#include <redcoro/client/detail/tracking_backend.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/proto/command_info.hpp>

#include <algorithm>
#include <array>
#include <unordered_map>

namespace redcoro {
namespace detail {
namespace {

// Which arguments of a cacheable command are keys.
enum class key_shape : std::uint8_t { none, first, all };

// The commands whose replies may be cached: read-only, and the same reply for the same key
// contents (nothing random, nothing that depends on the clock: no TTL, no SRANDMEMBER).
struct cacheable_table {
  std::array<key_shape, 256> by_id{};
  // Commands that change nothing: what they name stays cached when they pass through.
  std::array<bool, 256> reads{};
  cacheable_table() {
    // (Each one redcoro knows, command_info.cpp: a name it does not know has no id.)
    for (const char* name :
         {"GET",           "STRLEN",    "GETRANGE",         "GETBIT",     "BITCOUNT", "HGET",
          "HMGET",         "HGETALL",   "HEXISTS",          "HLEN",       "HKEYS",    "HVALS",
          "HSTRLEN",       "SMEMBERS",  "SISMEMBER",        "SMISMEMBER", "SCARD",    "ZRANGE",
          "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCORE",     "ZMSCORE",  "ZCARD",
          "ZRANK",         "ZREVRANK",  "ZCOUNT",           "LRANGE",     "LINDEX",   "LLEN",
          "TYPE",          "XRANGE",    "XREVRANGE",        "XLEN",       "GEODIST"})
      add(name, key_shape::first);
    add("MGET", key_shape::all);
    add("EXISTS", key_shape::all);
    for (const char* name : {"TTL", "PTTL", "SRANDMEMBER", "SCAN", "SSCAN", "HSCAN", "ZSCAN",
                             "KEYS", "DBSIZE", "PING", "ECHO"})
      if (const std::uint8_t id = proto::command_id(name)) reads[id] = true;
    for (std::size_t id = 0; id < by_id.size(); ++id)
      reads[id] = reads[id] || by_id[id] != key_shape::none;
  }
  void add(std::string_view name, key_shape shape) {
    if (const std::uint8_t id = proto::command_id(name)) by_id[id] = shape;
  }
};
const cacheable_table cacheable;

proto::value value_of(proto::result<proto::value>& r) {
  if (r.has_error())
    return proto::value(proto::type::simple_error, std::move(r.error_storage().message));
  return std::move(*r);
}

void replay(const proto::value& v, const proto::any_adapter& a) {
  // A plain string, number or null (most cached replies): one node, made here.
  if (v.attributes.empty() && !proto::is_aggregate(v.data_type) &&
      v.data_type != proto::type::verbatim_string && v.data_type != proto::type::streamed_string &&
      v.data_type != proto::type::streamed_string_part) {
    a.on_node(0, proto::node(v.data_type, false, 0, 1, v.text));
    return;
  }
  proto::for_each_node(v, [&](const proto::node& n) { a.on_node(0, n); });
}

// What a value takes in memory, roughly: its strings and a node's bookkeeping each.
std::size_t footprint(const proto::value& v) {
  std::size_t n = sizeof(proto::value) + v.text.size();
  for (const proto::value& e : v.elements)
    n += footprint(e);
  for (const proto::value& a : v.attributes)
    n += footprint(a);
  return n;
}

}  // namespace

// One connection's link to a cache: what the connection tells (connection_impl.hpp's
// tracking_sink), and whether its session tracks keys now. Owned by the cache; a connection
// that ends leaves it down.
class connection_tracker final : public tracking_sink {
 public:
  explicit connection_tracker(tracking_cache_impl& c) noexcept : cache_(&c) {}
  const std::vector<std::string>& tracking_options() const noexcept override;
  void on_tracking_session(bool tracking) override;
  void on_invalidate(const std::vector<std::string_view>& keys, bool all) override;
  void on_session_lost() override;

  bool up = false;
  bool tracks = false;

 private:
  tracking_cache_impl* cache_;
};

struct tracking_cache_impl final : std::enable_shared_from_this<tracking_cache_impl> {
  // One locally held reply. Its command's bytes are its name in `entries`; its keys, in
  // `by_key`.
  struct entry {
    std::string command;
    std::vector<std::string> keys;
    proto::value reply;
    clock::time_point expires = clock::time_point::max();
    std::size_t bytes = 0;
    entry* newer = nullptr;  // the LRU list: most recently used first
    entry* older = nullptr;
  };

  // A miss on its way to the server: the command, then PTTL of each key, in one request
  // (after CLIENT CACHING YES in opt_in mode). Readers of the same command wait for it.
  struct fill final : exec_entry {
    explicit fill(std::shared_ptr<tracking_cache_impl> c)
        : exec_entry(req, proto::any_adapter(adapter_impl), &filled), cache(std::move(c)) {}
    static void filled(exec_entry& e, error_code ec) {
      auto& self = static_cast<fill&>(e);
      const auto cache = self.cache;  // on_filled frees `self`; the cache may go with it
      cache->on_filled(self, ec);
    }
    std::shared_ptr<tracking_cache_impl> cache;  // a fill outlives a cache destroyed meanwhile
    std::string command;
    std::vector<std::string> keys;
    proto::request req;
    proto::generic_response replies;
    proto::response_adapter<proto::generic_response> adapter_impl{replies};
    std::size_t reply_at = 0;  // where the command's reply is
    std::uint64_t epoch = 0;   // of the cache when sent: kept only if still the same
    clock::time_point sent_at;
    bool valid = true;  // no invalidation of its keys arrived since it was sent
    bool sent = false;
    tracking_entry* waiters = nullptr;
  };

  // CLIENT TRACKING ON sent on a session that started before the connection was tracked.
  struct tracking_on final : exec_entry {
    tracking_on(std::shared_ptr<tracking_cache_impl> c, connection_impl& conn,
                connection_tracker& t)
        : exec_entry(req, proto::any_adapter(adapter_impl), &answered),
          cache(std::move(c)),
          ci(&conn),
          tracker(&t) {}
    static void answered(exec_entry& e, error_code ec) {
      std::unique_ptr<tracking_on> self(static_cast<tracking_on*>(&e));
      if (ec || self->replies.empty() || self->replies[0].has_error() || !self->cache->attached)
        return;
      // Answered on the session that is up now (a lost session fails its requests).
      connection_impl& c = *self->ci;
      if (!c.mux.ready() || c.tracking_session_ || c.tracking != self->tracker) return;
      c.tracking_session_ = true;
      self->tracker->on_tracking_session(true);
    }
    std::shared_ptr<tracking_cache_impl> cache;
    connection_impl* ci;
    connection_tracker* tracker;
    proto::request req;
    proto::generic_response replies;
    proto::response_adapter<proto::generic_response> adapter_impl{replies};
  };

  tracking_cache_impl(std::unique_ptr<tracking_backend> b, const tracking_cache_config& c)
      : backend(std::move(b)), cfg(c) {
    const std::string& prefix = backend->key_prefix();
    if (cfg.mode == tracking_mode::broadcast) {
      options.push_back("BCAST");
      for (const std::string& p : cfg.prefixes) {
        options.push_back("PREFIX");
        options.push_back(prefix + p);
      }
      if (cfg.prefixes.empty() && !prefix.empty()) {
        options.push_back("PREFIX");
        options.push_back(prefix);
      }
    }
    if (cfg.mode == tracking_mode::opt_in) options.push_back("OPTIN");
    if (cfg.noloop) options.push_back("NOLOOP");
  }

  connection_tracker& track(connection& conn) {
    connection_impl& c = impl_of(conn);
    trackers.push_back(std::make_unique<connection_tracker>(*this));
    connection_tracker& t = *trackers.back();
    c.tracking = &t;
    if (!c.running_ || c.closed_) return t;  // every handshake from now on asks for it
    // A session up now answers reads without tracking until CLIENT TRACKING ON is answered:
    // until then, nothing is kept (tracking() is false).
    t.up = c.mux.ready();
    if (t.up) session_changed(true);
    // A session is up or on its way; its handshake may have been written without tracking.
    auto* on = new tracking_on(shared_from_this(), c, t);
    on->req.push("CLIENT", "TRACKING", "ON", options);
    start_exec(c, *on);
    return t;
  }

  void untrack(connection& conn) noexcept {
    connection_impl& c = impl_of(conn);
    for (const auto& t : trackers)
      if (c.tracking == t.get()) c.tracking = nullptr;  // its invalidations are dropped now
  }

  void detach() {
    if (!attached) return;
    attached = false;
    backend->detach();
    flush();
  }

  // A session began or ended on one of the connections: whether reads may be kept is asked
  // again. One that ended (or one that does not track) takes what it promised with it:
  // conservatively, everything. One that tracks promises nothing yet.
  void session_changed(bool lost) {
    if (lost) flush();
    available = attached && tracking();
  }

  // Every tracked connection with a session up tracks keys, and one is up (a connection that
  // ended leaves its tracker down).
  bool tracking() const noexcept {
    bool up = false;
    for (const auto& t : trackers) {
      if (!t->up) continue;
      if (!t->tracks) return false;
      up = true;
    }
    return up;
  }

  void on_invalidate(const std::vector<std::string_view>& keys, bool all) {
    if (all) {
      flush();
      return;
    }
    for (std::string_view key : keys)
      drop_key(key);
  }

  // --- the store ---------------------------------------------------------------------------

  // Drops everything held, and makes every miss in flight unfit to keep.
  void flush() {
    ++epoch;
    if (entries.empty()) return;
    ++counters.flushes;
    by_key.clear();
    entries.clear();  // frees them
    newest = oldest = nullptr;
    bytes = 0;
  }

  void drop_key(std::string_view key) {
    for (auto [at, end] = fills_by_key.equal_range(key); at != end; ++at)
      at->second->valid = false;
    for (auto it = by_key.find(key); it != by_key.end(); it = by_key.find(key)) {
      ++counters.invalidations;
      erase(*it->second);
    }
  }

  void erase(entry& e) {
    for (const std::string& k : e.keys)
      for (auto [at, end] = by_key.equal_range(k); at != end; ++at)
        if (at->second == &e) {
          by_key.erase(at);
          break;
        }
    unlink(e);
    bytes -= e.bytes;
    entries.erase(entries.find(std::string_view(e.command)));  // frees it
  }

  void unlink(entry& e) noexcept {
    (e.newer ? e.newer->older : newest) = e.older;
    (e.older ? e.older->newer : oldest) = e.newer;
    e.newer = e.older = nullptr;
  }
  void link_newest(entry& e) noexcept {
    e.older = newest;
    e.newer = nullptr;
    (newest ? newest->newer : oldest) = &e;
    newest = &e;
  }

  // The live entry of a request of one cacheable command, or nullptr (an expired one is
  // dropped on the way).
  entry* find(const proto::request& r) {
    if (entries.empty()) return nullptr;
    const auto it = entries.find(r.command_bytes(0));
    if (it == entries.end()) return nullptr;
    entry& e = *it->second;
    if (e.expires != clock::time_point::max()) {
      if (clock::now() >= e.expires) {
        ++counters.expirations;
        erase(e);
        return nullptr;
      }
    }
    if (&e != newest) {
      unlink(e);
      link_newest(e);
    }
    return &e;
  }

  void store(fill& f, proto::value reply, clock::time_point expires) {
    auto owned = std::make_unique<entry>();
    entry& e = *owned;
    e.command = std::move(f.command);
    e.keys = std::move(f.keys);
    e.reply = std::move(reply);
    e.expires = expires;
    e.bytes = sizeof(entry) + 3 * sizeof(void*) * (1 + e.keys.size()) + e.command.size() +
              footprint(e.reply);
    for (const std::string& k : e.keys)
      e.bytes += k.size();
    if (e.bytes > cfg.max_bytes) return;
    const auto [it, fresh] = entries.try_emplace(std::string_view(e.command), std::move(owned));
    if (!fresh) return;  // a miss of the same command sent while this one was on its way
    for (const std::string& k : e.keys)
      by_key.emplace(std::string_view(k), &e);
    link_newest(e);
    bytes += e.bytes;
    while (bytes > cfg.max_bytes && oldest && oldest != &e) {
      ++counters.evictions;
      erase(*oldest);
    }
  }

  // --- requests ----------------------------------------------------------------------------

  // The shape of `r`'s keys when it may be served locally or kept: one cacheable command, a
  // session that tracks, and a mode that allows it; none otherwise.
  key_shape cacheable_shape(const proto::request& r, bool asked) const noexcept {
    if (!available || r.commands() != 1 || r.out_of_band_commands() != 0) return key_shape::none;
    if (cfg.mode == tracking_mode::opt_in && !asked) return key_shape::none;
    return cacheable.by_id[r.command_id(0)];
  }

  // The keys of a cacheable command; empty when one of them may not be kept (broadcast mode:
  // outside the tracked prefixes).
  std::vector<std::string> keys_of(const proto::request& r, key_shape shape) const {
    std::vector<std::string> keys;
    if (shape == key_shape::first) {
      keys.emplace_back(r.first_arg(0));
    } else {
      bool name = true;
      proto::request::for_each_arg(r.command_bytes(0), [&](std::string_view a) {
        if (!std::exchange(name, false)) keys.emplace_back(a);
      });
    }
    if (cfg.mode == tracking_mode::broadcast && !cfg.prefixes.empty())
      for (const std::string& k : keys)
        if (std::none_of(cfg.prefixes.begin(), cfg.prefixes.end(),
                         [&](const std::string& p) { return k.starts_with(p); }))
          return {};
    return keys;
  }

  void start(tracking_entry& e) {
    const proto::request& r = *e.req;
    const key_shape shape = cacheable_shape(r, e.cache_asked);
    if (shape != key_shape::none && e.adapter.replies() != 0) {
      if (entry* hit = find(r)) {
        ++counters.hits;
        e.adapter.prepare(1);
        replay(hit->reply, e.adapter);
        // Not inside the initiating function: through the executor.
        asio::post(backend->executor(), [&e] { e.done(e, {}); });
        return;
      }
      std::vector<std::string> keys = keys_of(r, shape);
      if (!keys.empty()) {
        wait_for_fill(e, std::move(keys));
        return;
      }
    }
    ++counters.uncached;
    if (!entries.empty() || !fills.empty()) drop_named(r);
    e.forwarded = true;
    backend->exec(e);
  }

  // Read-your-writes: what a request passed through names is dropped before it is sent
  // (and a miss of it in flight is not kept). The server's own report of this connection's
  // write comes after the write's reply (and not at all with NOLOOP), too late for a read
  // made as soon as the write completes. A value that happens to equal a key's name drops
  // that key too: harmless.
  void drop_named(const proto::request& r) {
    for (std::size_t i = 0; i < r.commands(); ++i) {
      if (cacheable.reads[r.command_id(i)]) continue;
      bool name = true;
      proto::request::for_each_arg(r.command_bytes(i), [&](std::string_view a) {
        if (!std::exchange(name, false)) {
          drop_key(a);
        } else if (is_flush(a)) {
          flush();
        }
      });
    }
  }

  static bool is_flush(std::string_view name) noexcept {
    const auto is = [&](std::string_view upper) {
      return name.size() == upper.size() &&
             std::equal(name.begin(), name.end(), upper.begin(),
                        [](char a, char b) { return (a & ~0x20) == b; });
    };
    return is("FLUSHALL") || is("FLUSHDB");
  }

  void wait_for_fill(tracking_entry& e, std::vector<std::string> keys) {
    const std::string_view command = e.req->command_bytes(0);
    fill* f = nullptr;
    if (const auto it = fills.find(command); it != fills.end()) {
      ++counters.shared_misses;
      f = it->second.get();
    } else {
      ++counters.misses;
      auto owned = std::make_unique<fill>(shared_from_this());
      f = owned.get();
      f->command.assign(command);
      f->keys = std::move(keys);
      f->req = proto::request(e.req->get_config());
      if (cfg.mode == tracking_mode::opt_in) {
        f->req.push("CLIENT", "CACHING", "YES");
        f->reply_at = 1;
      }
      f->req.append_serialized(command, 1);
      for (const std::string& k : f->keys)
        f->req.push("PTTL", k);
      f->epoch = epoch;
      f->sent_at = clock::now();
      fills.emplace(std::string_view(f->command), std::move(owned));
      for (const std::string& k : f->keys)
        fills_by_key.emplace(std::string_view(k), f);
    }
    e.fill = f;
    e.next_waiter = f->waiters;
    f->waiters = &e;
    if (f->st == exec_entry::state::idle && !f->sent) {
      f->sent = true;
      backend->exec(*f);  // may fail it at once
    }
  }

  void on_filled(fill& f, error_code ec) {
    // Out of the maps first: a reader resumed below may send the same command again.
    for (const std::string& k : f.keys)
      for (auto [at, end] = fills_by_key.equal_range(k); at != end; ++at)
        if (at->second == &f) {
          fills_by_key.erase(at);
          break;
        }
    std::unique_ptr<fill> owned;
    if (const auto it = fills.find(f.command); it != fills.end() && it->second.get() == &f) {
      owned = std::move(it->second);
      fills.erase(it);
    }
    tracking_entry* waiters = std::exchange(f.waiters, nullptr);
    proto::value reply;
    if (!ec && f.replies.size() > f.reply_at) {
      reply = value_of(f.replies[f.reply_at]);
      for (tracking_entry* w = waiters; w; w = w->next_waiter) {
        w->adapter.prepare(1);
        replay(reply, w->adapter);
        w->bytes_read = f.bytes_read;
      }
      keep(f, std::move(reply));
    }
    // Each reader resumes; none of them touches `f` (owned here) or the list.
    while (tracking_entry* w = waiters) {
      waiters = w->next_waiter;
      w->fill = nullptr;
      w->next_waiter = nullptr;
      w->done(*w, ec);
    }
  }

  // Stores a fill's reply unless it may be stale: an invalidation of one of its keys, a
  // flush or a lost session since it was sent, an error reply, or a key about to expire.
  void keep(fill& f, proto::value reply) {
    if (reply.is_error()) return;
    if (!f.valid || f.epoch != epoch || !available || !attached) {
      ++counters.not_stored;
      return;
    }
    auto expires = cfg.max_ttl.count() > 0 ? f.sent_at + cfg.max_ttl : clock::time_point::max();
    for (std::size_t i = f.reply_at + 1; i < f.replies.size(); ++i) {
      if (f.replies[i].has_error()) return;
      const auto ms = f.replies[i]->to_integer();
      if (!ms) return;
      if (*ms == 0) return;  // expiring now
      // From when it was sent: the server read the TTL later, so this errs early.
      if (*ms > 0) expires = std::min(expires, f.sent_at + std::chrono::milliseconds(*ms));
    }
    store(f, std::move(reply), expires);
  }

  void cancel(tracking_entry& e, asio::cancellation_type type) {
    if (e.forwarded) {
      backend->cancel(e, type);
      return;
    }
    auto* f = static_cast<fill*>(e.fill);
    if (!f) return;  // answered from memory: completes anyway
    // Waiting for another's request: leaving it costs the server nothing.
    for (tracking_entry** at = &f->waiters; *at; at = &(*at)->next_waiter)
      if (*at == &e) {
        *at = e.next_waiter;
        break;
      }
    e.fill = nullptr;
    e.next_waiter = nullptr;
    asio::post(backend->executor(),
               [&e] { e.done(e, error_code(asio::error::operation_aborted)); });
  }

  bool try_get(const proto::request& r, proto::any_adapter a) {
    if (cacheable_shape(r, true) == key_shape::none || a.replies() == 0) return false;
    entry* hit = find(r);
    if (!hit) return false;
    ++counters.hits;
    a.prepare(1);
    replay(hit->reply, a);
    return true;
  }

  std::unique_ptr<tracking_backend> backend;
  tracking_cache_config cfg;
  std::vector<std::string> options;  // of CLIENT TRACKING ON
  std::vector<std::unique_ptr<connection_tracker>> trackers;
  bool available = false;
  bool attached = true;
  bool initiating_ = false;
  std::uint64_t epoch = 0;
  tracking_cache_stats counters;

  std::unordered_map<std::string_view, std::unique_ptr<entry>> entries;
  std::unordered_multimap<std::string_view, entry*> by_key;
  entry* newest = nullptr;
  entry* oldest = nullptr;
  std::size_t bytes = 0;

  std::unordered_map<std::string_view, std::unique_ptr<fill>> fills;
  std::unordered_multimap<std::string_view, fill*> fills_by_key;
};

const std::vector<std::string>& connection_tracker::tracking_options() const noexcept {
  return cache_->options;
}
void connection_tracker::on_tracking_session(bool tracking) {
  up = true;
  tracks = tracking;
  cache_->session_changed(!tracking);
}
void connection_tracker::on_invalidate(const std::vector<std::string_view>& keys, bool all) {
  cache_->on_invalidate(keys, all);
}
void connection_tracker::on_session_lost() {
  up = tracks = false;
  cache_->session_changed(true);
}

std::shared_ptr<tracking_cache_impl> make_tracking_cache(std::unique_ptr<tracking_backend> backend,
                                                         const tracking_cache_config& cfg) {
  tracking_backend& b = *backend;
  auto cache = std::make_shared<tracking_cache_impl>(std::move(backend), cfg);
  b.attach(*cache);
  return cache;
}
void track(tracking_cache_impl& cache, connection& conn) {
  cache.track(conn);
}
void untrack(tracking_cache_impl& cache, connection& conn) noexcept {
  cache.untrack(conn);
}

void* allocate_op(tracking_cache_impl& c, std::size_t size) {
  return c.backend->allocate(size);
}
void deallocate_op(tracking_cache_impl& c, void* p, std::size_t size) noexcept {
  c.backend->deallocate(p, size);
}
const asio::any_io_executor& executor_of(const tracking_cache_impl& c) noexcept {
  return c.backend->executor();
}
bool initiating(const tracking_cache_impl& c) noexcept {
  return c.initiating_;
}
void start_exec(tracking_cache_impl& c, tracking_entry& e) {
  c.initiating_ = true;
  c.start(e);
  c.initiating_ = false;
}
void cancel_exec(tracking_cache_impl& c, tracking_entry& e, asio::cancellation_type type) {
  c.cancel(e, type);
}
bool try_cached(tracking_cache_impl& c, const proto::request& req, proto::any_adapter a) {
  return c.try_get(req, a);
}
tracking_cache_stats stats_of(const tracking_cache_impl& c) {
  tracking_cache_stats s = c.counters;
  s.entries = c.entries.size();
  s.bytes = c.bytes;
  s.available = c.available;
  return s;
}
bool available(const tracking_cache_impl& c) noexcept {
  return c.available;
}
void clear(tracking_cache_impl& c) {
  c.flush();
}
void close(tracking_cache_impl& c) {
  c.detach();
}

namespace {

// One connection: requests go to it, and its session is the only one.
class connection_backend final : public tracking_backend {
 public:
  explicit connection_backend(connection& conn) noexcept : conn_(conn), ci_(impl_of(conn)) {}
  void attach(tracking_cache_impl& cache) override {
    cache_ = &cache;
    track(cache, conn_);
  }
  const asio::any_io_executor& executor() const noexcept override { return ci_.executor; }
  void* allocate(std::size_t size) override { return allocate_op(ci_, size); }
  void deallocate(void* p, std::size_t size) noexcept override { deallocate_op(ci_, p, size); }
  void exec(exec_entry& e) override { start_exec(ci_, e); }
  void cancel(exec_entry& e, asio::cancellation_type type) override { cancel_exec(ci_, e, type); }
  const std::string& key_prefix() const noexcept override { return ci_.cfg.key_prefix; }
  void detach() noexcept override {
    if (cache_) untrack(*cache_, conn_);
  }

 private:
  connection& conn_;
  connection_impl& ci_;
  tracking_cache_impl* cache_ = nullptr;
};

}  // namespace

}  // namespace detail

namespace detail {
std::shared_ptr<tracking_cache_impl> track_connection(connection& conn,
                                                      const tracking_cache_config& cfg) {
  return make_tracking_cache(std::make_unique<connection_backend>(conn), cfg);
}
}  // namespace detail

tracking_cache::tracking_cache(connection& conn, tracking_cache_config cfg) : conn_(conn) {
  impl_ = detail::track_connection(conn, cfg);
}

}  // namespace redcoro
