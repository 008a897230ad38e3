#include <redcoro/client/script.hpp>
#include <redcoro/proto/key_slot.hpp>
#include <redcoro/recipes/stream_worker.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <unordered_set>

namespace redcoro::recipes {

const std::string* stream_message::field(std::string_view name) const noexcept {
  for (const auto& [k, v] : fields)
    if (k == name) return &v;
  return nullptr;
}

namespace detail {

namespace {

using asio::as_tuple;
using asio::use_awaitable;

// Moves a message to the dead-letter stream and acknowledges it: one script, so that it is
// never both acknowledged and lost, nor moved twice. The dead-letter entry holds dead.reason,
// dead.id (the message's id), dead.deliveries, dead.group and dead.consumer, then the
// message's own fields.
#define REDCORO_DEAD_LETTER_LUA                                                                  \
  "local function dead_letter(stream, dead, group, consumer, maxlen, id, fields, n, reason)\n"   \
  "  local a = {dead}\n"                                                                         \
  "  if tonumber(maxlen) > 0 then a[#a + 1] = 'MAXLEN' a[#a + 1] = '~' a[#a + 1] = maxlen end\n" \
  "  local meta = {'*', 'dead.reason', reason, 'dead.id', id, 'dead.deliveries',"                \
  " tostring(n), 'dead.group', group, 'dead.consumer', consumer}\n"                              \
  "  for i = 1, #meta do a[#a + 1] = meta[i] end\n"                                              \
  "  for i = 1, #fields do a[#a + 1] = fields[i] end\n"                                          \
  "  redis.call('XADD', unpack(a))\n"                                                            \
  "  redis.call('XACK', stream, group, id)\n"                                                    \
  "end\n"

// A handler failed. KEYS: stream, dead letter. ARGV: group, consumer, id, max deliveries,
// dead-letter maxlen, reason. -1: no longer pending (acknowledged by another); -2: claimed by
// another consumer since; 0: moved to the dead letter; n > 0: left pending after n deliveries.
const script fail_script(REDCORO_DEAD_LETTER_LUA
                         "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)\n"
                         "if not p[1] then return -1 end\n"
                         "if p[1][2] ~= ARGV[2] then return -2 end\n"
                         "local n = p[1][4]\n"
                         "if n < tonumber(ARGV[4]) then return n end\n"
                         "local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])\n"
                         "local fields = {}\n"
                         "if e[1] then fields = e[1][2] end\n"
                         "dead_letter(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[5], ARGV[3],"
                         " fields, n, ARGV[6])\n"
                         "return 0\n");

// Reclaims messages idle for long enough. KEYS: stream, dead letter. ARGV: group, consumer,
// min idle ms, cursor, count, max deliveries, dead-letter maxlen. The delivery count of each
// (XAUTOCLAIM has just raised it) comes from XPENDING; one delivered more than max times
// without an answer (its consumers died on it) goes to the dead letter instead of running
// again. Replies {next cursor, {{{id, fields}, deliveries}...}, moved to the dead letter}.
const script claim_script(REDCORO_DEAD_LETTER_LUA
                          "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3],"
                          " ARGV[4], 'COUNT', ARGV[5])\n"
                          "local out = {}\n"
                          "local dead = 0\n"
                          "for _, e in ipairs(r[2]) do\n"
                          "  if e and e[1] then\n"
                          "    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)\n"
                          "    local n = 1\n"
                          "    if p[1] then n = p[1][4] end\n"
                          "    local fields = e[2] or {}\n"
                          "    if n > tonumber(ARGV[6]) then\n"
                          "      dead_letter(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[7], e[1],"
                          " fields, n, 'delivered ' .. n .. ' times without an acknowledgement')\n"
                          "      dead = dead + 1\n"
                          "    else\n"
                          "      out[#out + 1] = {{e[1], fields}, n}\n"
                          "    end\n"
                          "  end\n"
                          "end\n"
                          "return {r[1], out, dead}\n");

#undef REDCORO_DEAD_LETTER_LUA

using claim_reply =
    std::tuple<std::string, std::vector<std::pair<stream_entry, std::int64_t>>, std::int64_t>;

error_code err(error e) {
  return error_code(make_error_code(e));
}

[[noreturn]] void refuse(const char* why) {
  throw std::system_error(make_error_code(error::invalid_argument),
                          std::string("redcoro::recipes::stream_worker: ") + why);
}

std::string default_consumer() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  unsigned char r[4] = {};
  if (::getrandom(r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) r[0] = r[1] = 0;
  char tail[16];
  std::snprintf(tail, sizeof tail, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
  return std::string(host.data()) + "-" + std::to_string(::getpid()) + "-" + tail;
}

}  // namespace

struct worker_state {
  worker_state(handle h, stream_worker_options o, stream_handler f)
      : redis(std::move(h)),
        opts(std::move(o)),
        handler(std::move(f)),
        ex(redis.get_executor()),
        wake(ex, asio::steady_timer::time_point::max()),
        pause(ex),
        done(ex, asio::steady_timer::time_point::max()) {}

  handle redis;
  stream_worker_options opts;
  stream_handler handler;
  asio::any_io_executor ex;
  std::shared_ptr<connection> own;  // the reading connection when the handle has no pool

  // The read loop (and then the drain) waits on `wake` for room; a handler that ends and
  // stop() cancel it. Only one coroutine waits on it at a time.
  asio::steady_timer wake;
  asio::steady_timer pause;  // between retries of a failed read
  asio::steady_timer done;   // cancelled when async_run ends; async_stop waits on it

  std::size_t in_progress = 0;  // handlers running
  std::size_t reserved = 0;     // slots a read or claim in flight may fill
  std::unordered_set<std::string> active;
  bool running = false;
  bool stopping = false;
  bool finished = false;
  stream_worker_stats stats;
  std::string claim_cursor = "0-0";
  error_code fatal;  // why async_run ended on its own (the handle was closed)

  void fail(error_code ec) {
    if (!fatal) fatal = ec;
    stopping = true;
  }

  std::size_t room() const noexcept {
    const std::size_t used = in_progress + reserved;
    return used >= opts.concurrency ? 0 : opts.concurrency - used;
  }
};

namespace {

asio::awaitable<void> wait_wake(worker_state& s) {
  s.wake.expires_at(asio::steady_timer::time_point::max());
  error_code ec;
  co_await s.wake.async_wait(asio::redirect_error(use_awaitable, ec));
}

asio::awaitable<void> pause_for(worker_state& s, std::chrono::milliseconds d) {
  s.pause.expires_after(d);
  error_code ec;
  co_await s.pause.async_wait(asio::redirect_error(use_awaitable, ec));
}

asio::awaitable<void> handle_one(std::shared_ptr<worker_state> s, stream_message m) {
  std::string reason;
  try {
    auto running = s->handler(m);
    co_await std::move(running);
  } catch (const std::exception& e) {
    reason = e.what();
    if (reason.empty()) reason = "the handler threw";
  } catch (...) {
    reason = "the handler threw a non-standard exception";
  }
  if (reason.empty()) {
    ++s->stats.handled;
    auto c = cmd::xack(s->opts.stream, s->opts.group, m.id);
    auto [ec, r] = co_await s->redis.async_exec(std::move(c), as_tuple(use_awaitable));
    if (ec || r.has_error())
      ++s->stats.ack_errors;  // still pending: delivered again after claim_idle
    else if (*r > 0)
      ++s->stats.acked;
    else
      ++s->stats.stale_acks;
  } else {
    ++s->stats.failed;
    const std::array<std::string_view, 2> keys{s->opts.stream, s->opts.dead_letter};
    const std::string max = std::to_string(s->opts.max_deliveries);
    const std::string maxlen = std::to_string(s->opts.dead_letter_max_len);
    const std::array<std::string_view, 6> args{s->opts.group, s->opts.consumer, m.id,
                                               max,           maxlen,           reason};
    auto c = fail_script.call<std::int64_t>(keys, args);
    auto [ec, r] = co_await s->redis.async_exec(std::move(c), as_tuple(use_awaitable));
    if (ec || r.has_error())
      ++s->stats.ack_errors;  // left pending: delivered again, and counted again
    else if (*r == 0)
      ++s->stats.dead_lettered;
  }
  s->active.erase(m.id);
  --s->in_progress;
  s->wake.cancel();
}

void start(const std::shared_ptr<worker_state>& s, stream_message m) {
  ++s->in_progress;
  s->active.insert(m.id);
  asio::co_spawn(s->ex, handle_one(s, std::move(m)), asio::detached);
}

// One walk over the pending list, as far as there is room: what is left is claimed by
// another worker, or by this one at the next round.
asio::awaitable<void> claim_round(std::shared_ptr<worker_state> s) {
  const std::array<std::string_view, 2> keys{s->opts.stream, s->opts.dead_letter};
  const std::string idle = std::to_string(s->opts.claim_idle.count());
  const std::string max = std::to_string(s->opts.max_deliveries);
  const std::string maxlen = std::to_string(s->opts.dead_letter_max_len);
  while (!s->stopping) {
    const std::size_t room = s->room();
    if (room == 0) break;
    const std::string count = std::to_string(room);
    const std::array<std::string_view, 7> args{
        s->opts.group, s->opts.consumer, idle, s->claim_cursor, count, max, maxlen};
    auto c = claim_script.call<claim_reply>(keys, args);
    auto [ec, r] = co_await s->redis.async_exec(std::move(c), as_tuple(use_awaitable));
    if (ec || r.has_error()) {
      ++s->stats.read_errors;
      if (ec == error_code(redcoro::error::closed)) s->fail(ec);
      break;
    }
    auto& [next, entries, dead] = *r;
    s->stats.dead_lettered += static_cast<std::uint64_t>(dead);
    for (auto& [e, n] : entries) {
      ++s->stats.claimed;
      // Our own handler still runs on it (slower than claim_idle): it answers for it.
      if (s->active.contains(e.id)) continue;
      start(s, stream_message{std::move(e.id), std::move(e.fields), n});
    }
    s->claim_cursor = std::move(next);
    if (s->claim_cursor == "0-0") break;
  }
}

// Makes the group, again until it works or the worker stops.
asio::awaitable<bool> make_group(std::shared_ptr<worker_state> s) {
  auto delay = std::chrono::milliseconds(50);
  while (!s->stopping) {
    auto op = ensure_group(s->redis, s->opts.stream, s->opts.group, s->opts.start_id);
    auto [ec, created] = co_await std::move(op);
    if (!ec) co_return true;
    ++s->stats.read_errors;
    if (ec == error_code(redcoro::error::closed)) {
      s->fail(ec);
      break;
    }
    co_await pause_for(*s, delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
  co_return false;
}

asio::awaitable<void> read_loop(std::shared_ptr<worker_state> s) {
  std::vector<std::pair<std::string, std::string>> streams;
  streams.emplace_back(s->opts.stream, ">");
  auto delay = std::chrono::milliseconds(50);
  // Claims are made from this loop, between reads, so that a read and a claim never compete
  // for the same room: at most opts.concurrency messages are in progress, whoever brought
  // them.
  auto next_claim = std::chrono::steady_clock::now() + s->opts.claim_interval;
  while (!s->stopping) {
    while (!s->stopping && s->room() == 0)
      co_await wait_wake(*s);
    if (s->stopping) break;
    if (std::chrono::steady_clock::now() >= next_claim) {
      auto claiming = claim_round(s);
      co_await std::move(claiming);
      next_claim = std::chrono::steady_clock::now() + s->opts.claim_interval;
      continue;  // the room may be gone
    }
    const std::size_t room = s->room();
    s->reserved += room;
    cmd::xread_options o;
    o.count = static_cast<std::int64_t>(room);
    o.block = s->opts.block;
    auto c = cmd::xreadgroup(s->opts.group, s->opts.consumer, streams, o);
    error_code ec;
    proto::result<std::optional<stream_batch>> r;
    if (s->own) {
      std::tie(ec, r) = co_await s->own->async_exec(std::move(c), as_tuple(use_awaitable));
    } else {
      std::tie(ec, r) =
          co_await s->redis.async_exec_dedicated(std::move(c), as_tuple(use_awaitable));
    }
    s->reserved -= room;
    bool no_group = false;
    if (!ec && r.has_error()) {
      no_group = r.error().server_code() == "NOGROUP";
      ec = r.error().code;
    }
    if (ec) {
      // The read is retried (the stream or group was deleted: made again); a stop, or the
      // handle's close, ends it.
      ++s->stats.read_errors;
      if (ec == error_code(redcoro::error::closed)) {
        s->fail(ec);
        break;
      }
      if (no_group) {
        auto op = make_group(s);
        co_await std::move(op);
      }
      if (!s->stopping) co_await pause_for(*s, delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(2000));
      continue;
    }
    delay = std::chrono::milliseconds(50);
    if (!*r) continue;  // BLOCK ran out
    // Handled even when a stop came meanwhile: the group delivered them to this consumer.
    for (auto& [name, entries] : **r)
      for (auto& e : entries)
        start(s, stream_message{std::move(e.id), std::move(e.fields), 1});
  }
}

}  // namespace

std::shared_ptr<worker_state> make_worker(handle h, stream_worker_options o, stream_handler f) {
  if (o.stream.empty() || o.group.empty()) refuse("the stream and the group must be named");
  if (o.concurrency == 0) refuse("concurrency must be at least 1");
  if (o.max_deliveries < 1) refuse("max_deliveries must be at least 1");
  if (o.block.count() <= 0 || o.claim_idle.count() <= 0 || o.claim_interval.count() <= 0)
    refuse("block, claim_idle and claim_interval must be positive");
  if (!f) refuse("no handler");
  if (o.consumer.empty()) o.consumer = default_consumer();
  if (o.dead_letter.empty()) {
    const bool tagged = proto::hash_tag(o.stream).size() != o.stream.size();
    o.dead_letter = tagged ? o.stream + ":dead" : "{" + o.stream + "}:dead";
  }
  if (proto::key_slot(o.dead_letter) != proto::key_slot(o.stream))
    refuse("the dead-letter stream must hash to the stream's slot (share its hash tag)");
  return std::make_shared<worker_state>(std::move(h), std::move(o), std::move(f));
}

const asio::any_io_executor& worker_executor(const worker_state& s) noexcept {
  return s.ex;
}
const stream_worker_options& worker_options(const worker_state& s) noexcept {
  return s.opts;
}
stream_worker_stats worker_stats(const worker_state& s) noexcept {
  return s.stats;
}

void worker_request_stop(worker_state& s) {
  if (s.stopping) return;
  s.stopping = true;
  s.wake.cancel();
  s.pause.cancel();
}

asio::awaitable<std::pair<error_code, stream_worker_stats>> worker_run(
    std::shared_ptr<worker_state> s) {
  if (s->running || s->stopping || s->finished)
    co_return std::pair{err(error::worker_stopped), s->stats};
  s->running = true;
  if (s->redis.kind() == deployment::single && s->redis.as_connection()) {
    // Nothing to lend on a single connection: the worker reads on one of its own.
    s->own = std::make_shared<connection>(s->ex, s->redis.as_connection()->get_config());
    // The run's completion keeps the connection alive until its coroutines have ended: a
    // connection destroyed before its run completes would be resumed after it is gone.
    s->own->async_run([own = s->own](error_code) {});
  }
  auto grouping = make_group(s);
  const bool grouped = co_await std::move(grouping);
  if (grouped) {
    auto reading = read_loop(s);
    co_await std::move(reading);
  }
  // The drain: the handlers in progress (the read in progress has ended).
  while (s->in_progress > 0)
    co_await wait_wake(*s);
  if (s->own) s->own->close();
  s->running = false;
  s->finished = true;
  s->done.cancel();
  co_return std::pair{s->fatal, s->stats};
}

asio::awaitable<std::pair<error_code, stream_worker_stats>> worker_stop(
    std::shared_ptr<worker_state> s) {
  worker_request_stop(*s);
  while (s->running) {
    error_code ec;
    co_await s->done.async_wait(asio::redirect_error(use_awaitable, ec));
    // The caller gave up waiting (the end of the run cancels the timer too, but then the
    // worker no longer runs).
    if (ec == asio::error::operation_aborted && s->running) co_return std::pair{ec, s->stats};
  }
  co_return std::pair{error_code(), s->stats};
}

asio::awaitable<std::pair<error_code, bool>> ensure_group(handle redis, std::string stream,
                                                          std::string group, std::string start) {
  auto c = cmd::xgroup_create(stream, group, start, true);
  auto [ec, r] = co_await redis.async_exec(std::move(c), as_tuple(use_awaitable));
  if (ec) co_return std::pair{ec, false};
  if (r.has_error()) {
    if (r.error().server_code() == "BUSYGROUP") co_return std::pair{error_code(), false};
    co_return std::pair{error_code(r.error().code), false};
  }
  co_return std::pair{error_code(), true};
}

}  // namespace detail

stream_worker::stream_worker(handle redis, stream_worker_options options, stream_handler handler)
    : s_(detail::make_worker(std::move(redis), std::move(options), std::move(handler))) {}

}  // namespace redcoro::recipes
