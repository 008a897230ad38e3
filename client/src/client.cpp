#include <redcoro/client/client.hpp>
#include <redcoro/client/detail/log.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/client/lease.hpp>

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <deque>

namespace redcoro {
namespace detail {

struct pool_state {
  pool_state(asio::any_io_executor e, connection_config c, std::size_t m)
      : ex(std::move(e)), cfg(std::move(c)), max(std::max<std::size_t>(1, m)) {
    // A lent connection may hold WATCH state between requests: never recycled under it.
    cfg.max_lifetime = std::chrono::milliseconds(0);
  }

  // A caller waiting for a connection: release() puts one in `slot` and cancels the timer.
  struct waiter {
    asio::steady_timer* timer;
    std::shared_ptr<connection>* slot;
  };

  std::shared_ptr<connection> make() {
    auto c = std::make_shared<connection>(ex, cfg);
    // The run keeps the connection alive until it ends: after close(), or when it gave up
    // reconnecting (reconnect_policy::max_attempts); such a connection is lent no more
    // (connection::run_ended(): release() and acquire() drop it).
    // Its counters outlive it: summed into `retired` when its run ends.
    c->async_run([c, r = retired](error_code) {
      auto m = c->metrics();
      m.queued = m.in_flight = 0;
      m.connected = false;
      r->merge(m);
    });
    all.push_back(c);
    std::erase_if(all, [](const auto& w) { return w.expired(); });
    ++total;
    return c;
  }

  void release(std::shared_ptr<connection> c) noexcept {
    if (closed || c->run_ended()) {
      c->close();
      --total;
      if (!closed && !waiters.empty()) hand_over(make());
      return;
    }
    if (c->pending_requests() > 0) {
      // A blocking command whose caller gave up is still on it: the connection unblocks it and
      // gives back what it took (closing it instead could lose an element the server popped
      // just before). It is lent again once its replies are in, so no later caller inherits
      // them.
      draining.push_back(std::move(c));
      return;
    }
    if (!waiters.empty())
      hand_over(std::move(c));
    else
      idle.push_back(std::move(c));
  }

  // Connections that were draining and are done move to the idle list; those whose run ended
  // leave the pool.
  void collect_drained() {
    for (auto it = draining.begin(); it != draining.end();) {
      if ((*it)->run_ended()) {
        --total;
        it = draining.erase(it);
      } else if ((*it)->pending_requests() == 0) {
        idle.push_back(std::move(*it));
        it = draining.erase(it);
      } else {
        ++it;
      }
    }
  }

  void hand_over(std::shared_ptr<connection> c) noexcept {
    waiter w = waiters.front();
    waiters.pop_front();
    *w.slot = std::move(c);
    w.timer->cancel();
  }

  // (A friend of lease's, which only pools make.)
  static lease lend(std::shared_ptr<pool_state> p, std::shared_ptr<connection> c) {
    return lease(std::move(p), std::move(c));
  }

  // Every connection of the pool that still runs: lent, idle or draining.
  template <class F>
  void for_each_connection(F f) {
    for (auto& w : all)
      if (auto c = w.lock()) f(*c);
  }

  void close() {
    closed = true;
    for_each_connection([](connection& c) { c.close(); });
    idle.clear();
    draining.clear();
    for (waiter w : waiters)
      w.timer->cancel();
    waiters.clear();
  }

  asio::any_io_executor ex;
  connection_config cfg;
  std::size_t max;
  std::size_t total = 0;  // lent and idle
  std::vector<std::shared_ptr<connection>> idle;
  std::vector<std::shared_ptr<connection>> draining;  // see release()
  std::vector<std::weak_ptr<connection>> all;
  std::deque<waiter> waiters;
  bool closed = false;
  // The metrics of the pool's connections whose run has ended.
  std::shared_ptr<connection_metrics> retired = std::make_shared<connection_metrics>();
};

void pool_metrics(const pool_state& p, client_metrics& out) {
  out.pool_open = p.total;
  out.pool_leased = p.total - std::min(p.total, p.idle.size() + p.draining.size());
  out.pool_waiting = p.waiters.size();
  out.pool = *p.retired;
  for (const auto& w : p.all) {
    auto c = w.lock();
    if (c && !c->run_ended()) out.pool.merge(c->metrics());  // ended ones are in `retired`
  }
}

}  // namespace detail

lease& lease::operator=(lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

lease::~lease() {
  release();
}

void lease::release() noexcept {
  if (pool_ && conn_) pool_->release(std::move(conn_));
  pool_.reset();
  conn_.reset();
}

client_metrics client::metrics() const {
  client_metrics m;
  m.shared = shared_.metrics();
  detail::pool_metrics(*pool_, m);
  return m;
}

client::client(executor_type ex, connection_config cfg)
    : shared_(ex, cfg), pool_(detail::make_pool(ex, cfg, cfg.pool_size)) {}

client::~client() {
  close();
}

void client::close() {
  shared_.close();
  detail::close_pool(*pool_);
}

void client::reconnect() {
  shared_.reconnect();
  detail::reconnect_pool(*pool_);
}

void detail::log_callback_failure(const std::shared_ptr<spdlog::logger>& given,
                                  const std::exception_ptr& e) {
  const auto& log = given ? given : detail::default_logger();
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log->error("optimistic transaction: the caller's function threw: {}", x.what());
  } catch (...) {
    log->error("optimistic transaction: the caller's function threw");
  }
}

std::shared_ptr<detail::pool_state> detail::make_pool(asio::any_io_executor ex,
                                                      connection_config cfg, std::size_t max) {
  return std::make_shared<pool_state>(std::move(ex), std::move(cfg), max);
}

void detail::close_pool(pool_state& p) {
  p.close();
}

void detail::reconnect_pool(pool_state& p) {
  p.for_each_connection([](connection& c) { c.reconnect(); });
}

asio::awaitable<std::pair<error_code, lease>> detail::acquire_from(
    std::shared_ptr<pool_state> pool) {
  // The pool, not its owner, from here on: the owner may be destroyed while this waits.
  auto& p = *pool;
  if (p.closed) co_return std::pair{error_code(error::closed), lease{}};
  const auto deadline = detail::deadline_for(std::chrono::milliseconds(-1), p.cfg.request_timeout);
  asio::steady_timer timer(p.ex);
  for (;;) {
    p.collect_drained();
    while (!p.idle.empty()) {
      auto c = std::move(p.idle.back());
      p.idle.pop_back();
      if (c->run_ended()) {  // it gave up reconnecting while idle
        --p.total;
        continue;
      }
      co_return std::pair{error_code{}, pool_state::lend(pool, std::move(c))};
    }
    if (p.total < p.max) co_return std::pair{error_code{}, pool_state::lend(pool, p.make())};

    // All lent (or draining): wait for one, up to the request timeout, looking at the
    // draining ones now and then.
    constexpr auto drain_check = std::chrono::milliseconds(50);
    timer.expires_at(p.draining.empty() ? deadline
                                        : std::min(deadline, detail::clock::now() + drain_check));
    std::shared_ptr<connection> got;
    p.waiters.push_back({&timer, &got});
    error_code ignored;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    std::erase_if(p.waiters, [&](const auto& w) { return w.slot == &got; });
    if (got) co_return std::pair{error_code{}, pool_state::lend(pool, std::move(got))};
    if (p.closed) co_return std::pair{error_code(error::closed), lease{}};
    const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (cancelled != asio::cancellation_type::none)
      co_return std::pair{error_code(asio::error::operation_aborted), lease{}};
    if (detail::clock::now() >= deadline) break;
  }
  co_return std::pair{error_code(error::timeout), lease{}};
}

static_assert(executes_requests<client>);

}  // namespace redcoro
