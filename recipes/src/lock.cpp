#include <redcoro/client/commands.hpp>
#include <redcoro/client/error.hpp>
#include <redcoro/recipes/lock.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace redcoro::recipes {
namespace detail {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// KEYS: the lock, its fencing counter. ARGV: token, lease (ms).
// Taken: {1, fencing token}. Busy: {0, the holder's remaining lease in ms}.
const script acquire_lua(R"lua(
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
)lua");

// KEYS: the lock, its wake list. ARGV: token, how long a wake notice waits for a waiter (ms).
// The notice is one element: a release wakes one blocked waiter (BLPOP), the one that can
// take the lock; the list never grows.
const script release_lua(R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('LPUSH', KEYS[2], '1')
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
)lua");

// KEYS: the lock. ARGV: token, lease (ms).
const script extend_lua(R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua");

error_code reply_error_code(const proto::reply_error& e) {
  return e.code;
}

// The watchdog of one acquisition: extends the lease every lease / 3; retries sooner after a
// failed round trip, and gives up (lost) once a whole lease has passed since the last extend
// that the server confirmed, or at once when the server says another holds it.
asio::awaitable<void> watchdog(std::shared_ptr<held_state> s) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto lease = s->core->opts.lease;
  const auto every = std::max<std::chrono::milliseconds>(lease / 3, 1ms);
  auto confirmed = clock::now();  // the lease was set (at the latest) at this time
  auto next = every;
  while (s->state == held_state::status::held) {
    if (!s->watchdog_timer)
      s->watchdog_timer = std::make_unique<asio::steady_timer>(s->core->redis.get_executor());
    s->watchdog_timer->expires_after(next);
    error_code ec;
    co_await s->watchdog_timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (s->state != held_state::status::held) co_return;
    const auto sent = clock::now();
    auto c = extend_command(*s, lease);
    auto [xec, r] =
        co_await s->core->redis.async_exec(std::move(c), asio::as_tuple(asio::use_awaitable));
    if (s->state != held_state::status::held) co_return;
    if (!xec && r.has_value()) {
      if (*r == 1) {
        confirmed = sent;
        next = every;
        continue;
      }
      s->mark_lost();  // the token is gone: the lease expired, maybe another holds it
      co_return;
    }
    // No answer: keep trying while the last confirmed lease may still run.
    if (clock::now() >= confirmed + lease) {
      s->mark_lost();
      co_return;
    }
    next = std::max<std::chrono::milliseconds>(
        std::min<std::chrono::milliseconds>(every, lease / 10), 1ms);
  }
}

// Sleeps `d` on a timer that a release seen by this lock's blocked waiter cuts short.
asio::awaitable<void> sleep_or_wake(lock_core& c, std::chrono::milliseconds d) {
  asio::steady_timer t(c.redis.get_executor(), d);
  struct listed {
    lock_core& c;
    asio::steady_timer* t;
    ~listed() { std::erase(c.sleepers, t); }
  } entry{c, &t};
  c.sleepers.push_back(&t);
  error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Waits up to `d` for the lock to be worth another try: one waiter of this lock object blocks
// on the wake list (BLPOP on a dedicated connection, so the shared connection stays free), so
// a release in any process wakes it; it wakes the other waiters of this object, which sleep.
asio::awaitable<void> pause(std::shared_ptr<lock_core> c, std::chrono::milliseconds d) {
  // BLPOP's timeout is checked by the server at its own tick (1 / hz, 100 ms by default):
  // for short delays a timer is as good and exact.
  if (c->blocking_waiter || c->no_dedicated || d < 50ms) {
    co_await sleep_or_wake(*c, d);
    co_return;
  }
  c->blocking_waiter = true;
  auto pop = cmd::blpop(c->wake_key, d);
  auto [ec, r] =
      co_await c->redis.async_exec_dedicated(std::move(pop), asio::as_tuple(asio::use_awaitable));
  c->blocking_waiter = false;
  if (ec == redcoro::error::unsupported) {
    c->no_dedicated = true;  // a single connection: timers from now on
    co_await sleep_or_wake(*c, d);
    co_return;
  }
  // A notice: a release happened, the other waiters of this object try again too.
  if (!ec && r.has_value() && r->has_value()) c->wake_sleepers();
  if (ec) {
    // A connection problem: the next attempt reports it if it lasts; do not spin meanwhile.
    co_await sleep_or_wake(*c, std::min<std::chrono::milliseconds>(d, 50ms));
  }
}

}  // namespace

lock_core::lock_core(handle h, std::string name, lock_options o)
    : redis(std::move(h)), opts(std::move(o)), rng(std::random_device{}()) {
  if (name.empty()) throw std::invalid_argument("redcoro::recipes::lock: an empty name");
  if (opts.lease.count() <= 0)
    throw std::invalid_argument("redcoro::recipes::lock: the lease must be positive");
  if (opts.wait.count() < 0) opts.wait = std::chrono::milliseconds(0);
  if (opts.retry_min.count() <= 0) opts.retry_min = std::chrono::milliseconds(1);
  if (opts.retry_max < opts.retry_min) opts.retry_max = opts.retry_min;
  key = opts.prefix + "{" + name + "}";
  fence_key = key + ":fence";
  wake_key = key + ":wake";
}

void lock_core::new_token(char* out) {
  // Two hex digits per byte from a table: this runs once per acquisition.
  static constexpr auto pairs = [] {
    std::array<char, 512> t{};
    constexpr char hex[] = "0123456789abcdef";
    for (int i = 0; i < 256; ++i) {
      t[static_cast<std::size_t>(2 * i)] = hex[i >> 4];
      t[static_cast<std::size_t>(2 * i + 1)] = hex[i & 15];
    }
    return t;
  }();
  for (int half = 0; half < 2; ++half) {
    std::uint64_t v = rng();
    for (int i = 0; i < 8; ++i, v >>= 8) {
      const std::size_t b = 2 * (v & 0xff);
      *out++ = pairs[b];
      *out++ = pairs[b + 1];
    }
  }
}

void lock_core::wake_sleepers() {
  for (asio::steady_timer* t : sleepers)
    t->cancel();
}

held_state::held_state(std::shared_ptr<lock_core> c) : core(std::move(c)) {
  core->new_token(token_buf);
}

std::shared_ptr<held_state> new_attempt(const std::shared_ptr<lock_core>& c) {
  return std::make_shared<held_state>(c);
}

asio::steady_timer& held_state::lost_wait() {
  if (!lost_timer)
    lost_timer = std::make_unique<asio::steady_timer>(core->redis.get_executor(),
                                                      asio::steady_timer::time_point::max());
  return *lost_timer;
}

void held_state::mark_lost() {
  if (state != status::held) return;
  state = status::lost;
  if (watchdog_timer) watchdog_timer->cancel();
  if (lost_timer) lost_timer->cancel();
  if (on_lost) {
    auto f = std::move(on_lost);
    on_lost = nullptr;
    f(make_error_code(error::lock_lost));
  }
}

void held_state::stop() {
  if (state == status::held) state = status::released;
  on_lost = nullptr;
  if (watchdog_timer) watchdog_timer->cancel();
  if (lost_timer) lost_timer->cancel();
}

const script& acquire_script() {
  return acquire_lua;
}
const script& release_script() {
  return release_lua;
}
const script& extend_script() {
  return extend_lua;
}

command<std::array<std::int64_t, 2>> acquire_command(held_state& s) {
  const lock_core& c = *s.core;
  const std::string_view token = s.token();
  const std::array<cmd::arg, 2> keys{c.key, c.fence_key};
  const std::array<cmd::arg, 2> argv{token, c.opts.lease.count()};
  return acquire_lua.call<std::array<std::int64_t, 2>>(keys, argv);
}

command<std::int64_t> release_command(held_state& s) {
  // The release starts now: the watchdog stops, whatever the server answers.
  s.stop();
  const std::array<cmd::arg, 2> keys{s.core->key, s.core->wake_key};
  const std::array<cmd::arg, 2> argv{s.token(), s.core->opts.lease.count()};
  return release_lua.call<std::int64_t>(keys, argv);
}

command<std::int64_t> extend_command(held_state& s, std::chrono::milliseconds lease) {
  const std::array<cmd::arg, 2> argv{s.token(), lease.count()};
  return extend_lua.call<std::int64_t>(s.core->key, argv);
}

error_code check_extend(const held_state* s, std::chrono::milliseconds lease) {
  if (!s || s->state == held_state::status::released) return make_error_code(error::lock_not_held);
  if (lease.count() <= 0) return make_error_code(error::invalid_argument);
  return {};
}

lock_guard make_guard(std::shared_ptr<held_state> s, std::int64_t fence) {
  s->fence = fence;
  if (s->core->opts.watchdog)
    asio::co_spawn(s->core->redis.get_executor(), watchdog(s), asio::detached);
  return lock_guard(std::move(s));
}

std::pair<error_code, lock_guard> finish_try(std::shared_ptr<held_state> s, error_code ec,
                                             const acquire_reply& r) {
  if (ec) return {ec, lock_guard()};
  if (r.has_error()) return {reply_error_code(r.error()), lock_guard()};
  if ((*r)[0] != 1) return {error_code(), lock_guard()};
  return {error_code(), make_guard(std::move(s), (*r)[1])};
}

error_code finish_release(held_state* s, error_code ec, const proto::result<std::int64_t>& r) {
  if (ec) return ec;
  if (r.has_error()) return reply_error_code(r.error());
  if (*r != 1) return make_error_code(error::lock_not_held);
  // Waiters of this process need not wait for the server's notice.
  s->core->wake_sleepers();
  return {};
}

error_code finish_extend(held_state* s, error_code ec, const proto::result<std::int64_t>& r) {
  if (ec) return ec;
  if (r.has_error()) return reply_error_code(r.error());
  if (*r != 1) {
    s->mark_lost();
    return make_error_code(error::lock_not_held);
  }
  return {};
}

asio::awaitable<std::pair<error_code, lock_guard>> acquire(std::shared_ptr<lock_core> c,
                                                           std::chrono::milliseconds wait) {
  // A cancellation is answered where it is checked, not by an exception from the next wait.
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto deadline = clock::now() + wait;
  auto delay = c->opts.retry_min;
  auto attempt = new_attempt(c);
  for (;;) {
    auto cmd = acquire_command(*attempt);
    auto [ec, r] =
        co_await c->redis.async_exec(std::move(cmd), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return std::pair{ec, lock_guard()};
    if (r.has_error()) co_return std::pair{reply_error_code(r.error()), lock_guard()};
    if ((*r)[0] == 1) co_return std::pair{error_code(), make_guard(std::move(attempt), (*r)[1])};

    const auto now = clock::now();
    if (now >= deadline)
      co_return std::pair{make_error_code(error::lock_wait_timeout), lock_guard()};
    // Full jitter over the upper half of the delay, so that waiters that failed together do
    // not all come back together; never past the holder's lease (it may lapse), nor the bound.
    std::uniform_int_distribution<std::int64_t> pick(delay.count() / 2, delay.count());
    auto d = std::chrono::milliseconds(std::max<std::int64_t>(pick(c->rng), 1));
    if ((*r)[1] >= 0) d = std::min(d, std::chrono::milliseconds((*r)[1] + 1));
    d = std::min(d, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    co_await pause(c, d);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none)
      co_return std::pair{make_error_code(asio::error::operation_aborted), lock_guard()};
    delay = std::min(delay * 2, c->opts.retry_max);
  }
}

}  // namespace detail

lock_guard& lock_guard::operator=(lock_guard&& other) noexcept {
  if (this != &other) {
    release_in_background();
    s_ = std::move(other.s_);
  }
  return *this;
}

lock_guard::~lock_guard() {
  release_in_background();
}

bool lock_guard::owns_lock() const noexcept {
  return s_ && s_->state == detail::held_state::status::held;
}

bool lock_guard::lost() const noexcept {
  return s_ && s_->state == detail::held_state::status::lost;
}

std::string_view lock_guard::token() const noexcept {
  return s_ ? s_->token() : std::string_view();
}

std::int64_t lock_guard::fence() const noexcept {
  return s_ ? s_->fence : 0;
}

void lock_guard::on_lost(std::function<void(error_code)> f) {
  if (!s_) return;
  if (s_->state == detail::held_state::status::lost) {
    asio::post(s_->core->redis.get_executor(),
               [f = std::move(f)] { f(make_error_code(error::lock_lost)); });
    return;
  }
  s_->on_lost = std::move(f);
}

void lock_guard::release_in_background() noexcept {
  if (!s_) return;
  auto s = std::move(s_);
  // A lost lock is not ours to delete; a released one is gone already.
  if (s->state != detail::held_state::status::held) {
    s->stop();
    return;
  }
  try {
    auto c = detail::release_command(*s);
    auto* raw = s.get();
    raw->core->redis.async_exec(std::move(c),
                                [s = std::move(s)](error_code ec, proto::result<std::int64_t> r) {
                                  detail::finish_release(s.get(), ec, r);
                                });
  } catch (...) {
    // Out of memory: the lease ends it.
  }
}

lock::lock(handle redis, std::string name, lock_options options)
    : c_(std::make_shared<detail::lock_core>(std::move(redis), std::move(name),
                                             std::move(options))) {}

}  // namespace redcoro::recipes
