#include <redcoro/cache/write_behind.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <deque>
#include <optional>
#include <unordered_map>

namespace redcoro::cache {

using clock = std::chrono::steady_clock;

namespace {

struct entry {
  std::string key;  // as the caller named it
  std::string bytes;
  std::optional<std::chrono::milliseconds> px;
  bool remove = false;
  std::uint64_t seq = 0;
  clock::time_point at;
};

// How one sent write ended.
enum class sent : std::uint8_t { pending, ok, lost, refused };

}  // namespace

struct write_behind::state {
  state(cache c, write_behind_options o)
      : cache_(std::move(c)),
        opts(o),
        wake(cache_.redis().get_executor()),
        room(cache_.redis().get_executor(), clock::time_point::max()),
        progress(cache_.redis().get_executor(), clock::time_point::max()) {}

  cache cache_;
  write_behind_options opts;
  std::deque<entry> queue;     // accepted, not sent (or sent again)
  std::vector<entry> sending;  // the batch in flight
  std::uint64_t next_seq = 1;
  std::uint64_t done_through = 0;  // every write with seq <= this is written or failed
  asio::steady_timer wake;         // the flusher sleeps on it
  asio::steady_timer room;         // writers waiting for room
  asio::steady_timer progress;     // flush() and close() waiting
  int urgent = 0;                  // flush() calls waiting: send without waiting for max_delay
  bool closing = false;            // no more writes accepted
  bool abandoned = false;          // close() gave up: the flusher stops after its batch
  bool stopped = false;            // the flusher has ended
  std::vector<write_failure> failures;
  detail::counter accepted, written, retried, failed;

  std::size_t held() const noexcept { return queue.size() + sending.size(); }

  void fail(const entry& e, std::error_code code, std::string message) {
    write_failure f;
    f.key = e.key;
    f.error.code = code;
    f.error.key = e.key;
    f.error.message = std::move(message);
    failures.push_back(std::move(f));
    failed.add(1);
  }

  void settle() {
    done_through = queue.empty() ? next_seq - 1 : queue.front().seq - 1;
    progress.cancel();
    room.cancel();
  }
};

namespace {

// Sends the batch, every write at once (the connection pipelines them), and waits for every
// reply. Returns how each ended and, for refusals, the server's message.
asio::awaitable<void> send(std::shared_ptr<write_behind::state> s, std::vector<sent>& how,
                           std::vector<std::string>& why) {
  auto& redis = s->cache_.redis();
  const std::string& prefix = s->cache_.options().prefix;
  std::size_t pending = s->sending.size();
  asio::steady_timer all(redis.get_executor(), clock::time_point::max());
  how.assign(pending, sent::pending);
  why.assign(pending, {});
  auto done = [&](std::size_t i, const error_code& ec, const auto& r) {
    if (ec) {
      how[i] = sent::lost;
    } else if (r.has_error()) {
      how[i] = sent::refused;
      why[i] = r.error().message;
    } else {
      how[i] = sent::ok;
    }
    if (--pending == 0) all.cancel();
  };
  for (std::size_t i = 0; i < s->sending.size(); ++i) {
    const entry& e = s->sending[i];
    const std::string key = prefix + e.key;
    if (e.remove) {
      redis.async_exec(cmd::unlink(key), [&done, i](error_code ec, auto r) { done(i, ec, r); });
    } else {
      cmd::set_options o;
      if (e.px) o.ttl = *e.px;
      redis.async_exec(cmd::set(key, e.bytes, o),
                       [&done, i](error_code ec, auto r) { done(i, ec, r); });
    }
  }
  while (pending > 0) {
    error_code ignored;
    co_await all.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
}

asio::awaitable<void> flusher(std::shared_ptr<write_behind::state> s) {
  std::vector<sent> how;
  std::vector<std::string> why;
  error_code ignored;
  for (;;) {
    if (s->abandoned) break;
    if (s->queue.empty()) {
      if (s->closing) break;
      s->wake.expires_at(clock::time_point::max());
      co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    const auto due = s->queue.front().at + s->opts.max_delay;
    if (s->queue.size() < s->opts.batch_size && !s->closing && s->urgent == 0 &&
        clock::now() < due) {
      s->wake.expires_at(due);
      co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    const std::size_t n = std::min(s->queue.size(), s->opts.batch_size);
    s->sending.assign(std::make_move_iterator(s->queue.begin()),
                      std::make_move_iterator(s->queue.begin() + static_cast<std::ptrdiff_t>(n)));
    s->queue.erase(s->queue.begin(), s->queue.begin() + static_cast<std::ptrdiff_t>(n));
    co_await send(s, how, why);
    if (s->abandoned) break;  // close() has reported the batch
    // A lost write whose key a later write of the batch set is replaced: sending it again
    // would undo the later one.
    std::unordered_map<std::string_view, std::size_t> last_ok;
    for (std::size_t i = 0; i < n; ++i)
      if (how[i] != sent::lost) last_ok[s->sending[i].key] = i;
    std::vector<entry> again;
    for (std::size_t i = 0; i < n; ++i) {
      entry& e = s->sending[i];
      if (how[i] == sent::refused) {
        s->fail(e, proto::error::server_error, std::move(why[i]));
      } else if (how[i] == sent::lost) {
        auto it = last_ok.find(e.key);
        if (it != last_ok.end() && it->second > i)
          s->written.add(1);
        else
          again.push_back(std::move(e));
      } else {
        s->written.add(1);
      }
    }
    s->sending.clear();
    s->queue.insert(s->queue.begin(), std::make_move_iterator(again.begin()),
                    std::make_move_iterator(again.end()));
    s->retried.add(again.size());
    s->settle();
    if (!again.empty()) {
      s->wake.expires_at(clock::now() + s->opts.retry_delay);
      co_await s->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  s->stopped = true;
  s->progress.cancel();
  s->room.cancel();
}

}  // namespace

write_behind::write_behind(cache c, write_behind_options options)
    : s_(std::make_shared<state>(std::move(c), options)) {
  if (s_->opts.capacity == 0) s_->opts.capacity = 1;
  if (s_->opts.batch_size == 0) s_->opts.batch_size = 1;
  asio::co_spawn(s_->wake.get_executor(), flusher(s_), asio::detached);
}

write_behind::~write_behind() {
  if (!s_->closing) {
    s_->closing = true;
    s_->wake.cancel();
  }
}

asio::awaitable<result<void>> write_behind::enqueue(std::string_view key, std::string bytes,
                                                    expiry ttl, bool remove) {
  auto s = s_;
  auto refuse = [&](error e, std::string message) {
    codec_error err;
    err.code = make_error_code(e);
    err.key = key;
    err.message = std::move(message);
    return err;
  };
  entry e;
  if (!remove && !detail::resolve(*s->cache_.s_, ttl, e.px))
    co_return refuse(error::invalid_ttl, "a TTL must be positive (use no_ttl for none)");
  while (!s->closing && s->held() >= s->opts.capacity) {
    if (s->opts.full == write_behind_options::when_full::fail)
      co_return refuse(error::queue_full, "the write-behind queue holds " +
                                              std::to_string(s->opts.capacity) + " writes");
    error_code ignored;
    co_await s->room.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (s->closing) co_return refuse(error::not_written, "the write-behind queue is closed");
  e.key = key;
  e.bytes = std::move(bytes);
  e.remove = remove;
  e.seq = s->next_seq++;
  e.at = clock::now();
  const bool was_empty = s->queue.empty();
  s->queue.push_back(std::move(e));
  s->accepted.add(1);
  if (was_empty || s->queue.size() >= s->opts.batch_size) s->wake.cancel();
  co_return result<void>();
}

asio::awaitable<result<void>> write_behind::del(std::string_view key) {
  return enqueue(key, {}, {}, true);
}

asio::awaitable<std::vector<write_failure>> write_behind::flush() {
  auto s = s_;
  const std::uint64_t target = s->next_seq - 1;
  ++s->urgent;
  s->wake.cancel();
  while (s->done_through < target && !s->stopped) {
    error_code ignored;
    co_await s->progress.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  --s->urgent;
  co_return std::exchange(s->failures, {});
}

asio::awaitable<std::vector<write_failure>> write_behind::close(std::chrono::milliseconds bound) {
  auto s = s_;
  s->closing = true;
  s->wake.cancel();
  s->room.cancel();
  asio::steady_timer limit(s->wake.get_executor());
  limit.expires_after(bound);
  bool timed_out = false;
  limit.async_wait([&timed_out, s](error_code ec) {
    if (!ec) {
      timed_out = true;
      s->progress.cancel();
    }
  });
  while (!s->stopped && !timed_out) {
    error_code ignored;
    co_await s->progress.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  limit.cancel();
  if (!s->stopped) {
    // The bound passed: what is left is not written, or not known to be.
    s->abandoned = true;
    for (const auto& e : s->sending)
      s->fail(e, make_error_code(error::not_written),
              "sent, but no reply came before close()'s bound: it may have been written");
    for (const auto& e : s->queue)
      s->fail(e, make_error_code(error::not_written), "not sent before close()'s bound");
    s->queue.clear();
    s->wake.cancel();
  }
  co_return std::exchange(s->failures, {});
}

write_behind_metrics write_behind::metrics() const noexcept {
  write_behind_metrics m;
  m.queued = s_->abandoned ? 0 : s_->held();
  m.accepted = s_->accepted.get();
  m.written = s_->written.get();
  m.retried = s_->retried.get();
  m.failed = s_->failed.get();
  return m;
}

}  // namespace redcoro::cache
