#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/log.hpp>
#include <redcoro/client/detail/multiplexer.hpp>
#include <redcoro/client/detail/sentinel_machine.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/client/sentinel_client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace redcoro {
namespace detail {
namespace {

template <class T>
using awaitable = asio::awaitable<T>;

auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

const char* role_name(sentinel_role r) {
  return r == sentinel_role::primary ? "primary" : "replica";
}

// The channel sentinels announce a completed failover on.
constexpr const char* switch_channel = "+switch-master";

// How a connection's async_run ended, for the coroutine that waits for it.
struct run_state {
  explicit run_state(const asio::any_io_executor& ex) : done_event(ex) {}
  void end(error_code why) {
    ec = why;
    done = true;
    done_event.cancel();
  }
  // Until the run ended (close() ends it promptly), at most `limit`.
  awaitable<void> wait(std::chrono::milliseconds limit) {
    if (done) co_return;
    done_event.expires_after(limit);
    error_code ignored;
    co_await done_event.async_wait(use_ec(ignored));
  }
  error_code ec;
  bool done = false;
  asio::steady_timer done_event;
};

}  // namespace

struct sentinel_impl : std::enable_shared_from_this<sentinel_impl> {
  sentinel_impl(asio::any_io_executor e, sentinel_config c)
      : ex(std::move(e)),
        cfg(std::move(c)),
        log(cfg.node.logger ? cfg.node.logger : default_logger()),
        known(cfg.sentinels),
        changed(ex) {
    // The connections to the sentinels come and go with every question: their own connects
    // and failures would flood the log. They log only at debug level; the engine says what
    // each sentinel answered.
    const auto& base = cfg.sentinel.logger ? cfg.sentinel.logger : log;
    quiet = base->clone(base->name());
    quiet->set_level(base->level() <= spdlog::level::debug ? base->level() : spdlog::level::off);
  }

  // --- the address provider of the data connections ---------------------------------------

  void provide(std::function<void(address_answer)> done) {
    if (closed) {
      done(address_answer(closed_reason()));
      return;
    }
    waiting.push_back(std::move(done));
    if (resolving) return;  // the round under way answers it too
    resolving = true;
    spawn(answer_waiting());
  }

  awaitable<void> answer_waiting() {
    address_answer a(std::nullopt);
    // A failover announced while the sentinels were being asked may have made the answer
    // stale: ask again (the announcing sentinel first).
    for (int round = 0; round < 3; ++round) {
      const std::uint64_t at = switches;
      a = co_await resolve();
      if (closed || switches == at) break;
    }
    resolving = false;
    if (a.address) current = a.address;
    auto now = std::move(waiting);
    waiting.clear();
    for (auto& d : now)
      d(a);
    if (fatal) notify();
  }

  // Asks the sentinels in order until one gives an address.
  awaitable<address_answer> resolve() {
    resolve_round round;
    const std::vector<endpoint> order = known.order();
    for (const endpoint& s : order) {
      if (closed) co_return address_answer(closed_reason());
      const sentinel_answer a = co_await ask(s);
      if (a.what == sentinel_answer::kind::address) {
        known.answered(s);
        name_known = true;
        co_return address_answer(a.address);
      }
      if (a.what == sentinel_answer::kind::no_replica) name_known = true;
      round.record(s, a);
    }
    if (closed) co_return address_answer(closed_reason());
    const std::error_code why = round.verdict();
    if (why == error::unknown_primary_name && !name_known) {
      // Never found: a wrong name in the configuration, not an outage. Waiting would not help.
      if (!fatal)
        log->error("sentinel: no sentinel knows a primary named '{}' ({}); stopping",
                   cfg.primary_name, round.summary());
      fatal = why;
    } else {
      log->error("sentinel: no {} of '{}' to connect to: {} ({})", role_name(cfg.role),
                 cfg.primary_name, why.message(), round.summary());
    }
    co_return address_answer(why);
  }

  // One question to one sentinel, on a connection of its own: where to connect, and which
  // other sentinels it knows.
  awaitable<sentinel_answer> ask(const endpoint& s) {
    auto conn = std::make_shared<connection>(ex, sentinel_settings(s, false));
    auto run = std::make_shared<run_state>(ex);
    conn->async_run([conn, run](error_code ec) { run->end(ec); });
    std::erase_if(queries, [](const auto& q) { return q.expired(); });
    queries.push_back(conn);
    proto::request req;
    req.get_config().timeout = question_time();
    if (cfg.role == sentinel_role::primary)
      req.push("SENTINEL", "GET-MASTER-ADDR-BY-NAME", cfg.primary_name);
    else
      req.push("SENTINEL", "REPLICAS", cfg.primary_name);
    req.push("SENTINEL", "SENTINELS", cfg.primary_name);
    proto::generic_response resp;
    error_code ec;
    co_await conn->async_exec(req, resp, use_ec(ec));
    conn->close();
    co_await run->wait(question_time());
    sentinel_answer a;
    if (ec) {
      // The connection's own reason (refused, credentials, no answer to the handshake) when it
      // gave up; otherwise the request's (timeout).
      const error_code why = run->done && run->ec && run->ec != error::closed ? run->ec : ec;
      a.detail = why.message();
      co_return a;
    }
    if (resp.size() < 2) {
      a.detail = "too few replies";
      co_return a;
    }
    learn_sentinels(resp[1]);
    if (cfg.role == sentinel_role::primary) co_return read_primary_address(resp[0]);
    co_return choose_replica(resp[0], replica_turn++);
  }

  void learn_sentinels(const proto::result<proto::value>& reply) {
    if (reply.has_error()) return;
    const auto others = read_instances(*reply);
    if (!others) return;
    for (const auto& o : *others)
      if (known.add(o.address))
        log->info("sentinel: found sentinel {} for '{}'", o.address.to_string(), cfg.primary_name);
  }

  std::chrono::milliseconds question_time() const {
    return std::max(cfg.sentinel.connect_timeout, std::chrono::milliseconds(1));
  }

  connection_config sentinel_settings(const endpoint& s, bool watching) const {
    connection_config c = cfg.sentinel;
    c.host = s.host;
    c.port = s.port;
    c.unix_socket.clear();
    c.address_provider = nullptr;
    c.database = 0;
    c.key_prefix.clear();
    c.expect_role.clear();
    c.on_handshake = nullptr;
    c.fail_waiting_on_disconnect = false;
    // One attempt (a lost session gets one more): then the next sentinel is asked.
    c.reconnect.max_attempts = 1;
    c.logger = quiet;
    if (watching) {
      // Pushes need RESP3 (sentinels of Redis 6 and newer speak it).
      c.protocol = 3;
      c.on_handshake = [](proto::request& r) { r.push("SUBSCRIBE", switch_channel); };
    } else {
      c.health_check_interval = std::chrono::milliseconds(0);
    }
    return c;
  }

  // --- following failovers ------------------------------------------------------------------

  // One sentinel connection subscribed to +switch-master; another sentinel when it drops.
  awaitable<void> watch_loop() {
    reconnect_policy policy = cfg.sentinel.reconnect;
    policy.max_attempts = 0;
    backoff pause(policy, reinterpret_cast<std::uintptr_t>(this));
    std::optional<endpoint> last;
    std::size_t failed_in_a_row = 0;
    while (!closed) {
      const std::vector<endpoint> order = known.order();
      // The one after the last tried (the first one to begin with: the last that answered).
      std::size_t next = 0;
      if (last) {
        const auto it = std::find(order.begin(), order.end(), *last);
        if (it != order.end()) next = static_cast<std::size_t>(it - order.begin()) + 1;
      }
      const endpoint s = order[next % order.size()];
      last = s;
      const bool subscribed = co_await watch_on(s);
      if (closed) break;
      if (subscribed) {
        failed_in_a_row = 0;
        pause.reset();
        continue;
      }
      if (++failed_in_a_row < order.size()) continue;
      failed_in_a_row = 0;
      const auto delay = pause.next().value_or(policy.max_delay);
      log->warn("sentinel: no sentinel to watch for failovers of '{}'; again in {} ms",
                cfg.primary_name, delay.count());
      co_await sleep(delay);
    }
  }

  // Watches `s` until its connection ends. True when the subscription was up.
  awaitable<bool> watch_on(const endpoint& s) {
    auto conn = std::make_shared<connection>(ex, sentinel_settings(s, true));
    auto run = std::make_shared<run_state>(ex);
    conn->async_run([conn, run](error_code ec) { run->end(ec); });
    watch = conn;
    bool subscribed = false;
    for (;;) {
      error_code ec;
      proto::value push = co_await conn->async_receive_push(use_ec(ec));
      if (ec) break;  // the run ended: the sentinel went away, or close()
      if (is_subscribe_confirmation(push, switch_channel)) {
        if (!subscribed)
          log->info("sentinel: watching {} for failovers of '{}'", s.to_string(), cfg.primary_name);
        subscribed = true;
        known.answered(s);
        // What happened while no subscription was up (a failover, new sentinels): ask now.
        spawn(check());
      } else if (auto sw = read_switch_master(push, cfg.primary_name)) {
        follow(*sw, s);
      }
    }
    conn->close();
    co_await run->wait(question_time());
    watch.reset();
    if (!closed)
      log->warn("sentinel: stopped watching {}: {}", s.to_string(),
                run->ec ? run->ec.message() : std::string("closed"));
    co_return subscribed;
  }

  // +switch-master for our primary: every data connection goes to the new one now.
  void follow(const switch_master& sw, const endpoint& from) {
    ++switches;
    known.answered(from);
    if (cfg.role == sentinel_role::primary) {
      log->warn("sentinel {}: +switch-master: the primary of '{}' moved from {} to {}",
                from.to_string(), cfg.primary_name, sw.from.to_string(), sw.to.to_string());
      current = sw.to;
    } else {
      log->warn(
          "sentinel {}: +switch-master: failover of '{}' from {} to {}; choosing "
          "replicas again",
          from.to_string(), cfg.primary_name, sw.from.to_string(), sw.to.to_string());
    }
    if (data) data->reconnect();
  }

  // Asks where the primary is; if it moved without a +switch-master seen, follows it.
  awaitable<void> check() {
    const address_answer a = co_await resolve();
    if (fatal) notify();
    if (closed || !a.address || cfg.role != sentinel_role::primary) co_return;
    if (current && *current != *a.address) {
      log->warn("sentinel: the primary of '{}' is {} now, not {}", cfg.primary_name,
                a.address->to_string(), current->to_string());
      current = a.address;
      ++switches;
      if (data) data->reconnect();
    }
  }

  awaitable<void> refresh_loop() {
    if (cfg.refresh_interval.count() <= 0) co_return;
    while (!closed) {
      co_await sleep(cfg.refresh_interval);
      if (!closed) co_await check();
    }
  }

  // --- running ------------------------------------------------------------------------------

  awaitable<error_code> run() {
    data->async_run([self = shared_from_this()](error_code ec) {
      self->data_ec = ec;
      self->data_done = true;
      self->notify();
    });
    spawn(watch_loop());
    spawn(refresh_loop());
    while (!closed && !fatal && !data_done)
      co_await wait_change();
    stop();
    while (!data_done || tasks > 0)
      co_await wait_change();
    if (fatal) co_return fatal;
    if (cancelled) co_return error_code(asio::error::operation_aborted);
    if (data_ec && data_ec != error::closed) co_return data_ec;
    co_return error_code(error::closed);
  }

  void stop() {
    if (closed) return;
    closed = true;
    // Data connections waiting for an address are answered before they are closed. Each
    // answer is posted to the connection's executor, and so runs before the wake-up its
    // close() posts: the connection then fails its waiting requests with the reason
    // (unknown_primary_name, when a refresh found the name wrong before the data connections'
    // own round did), not with error::closed.
    auto now = std::move(waiting);
    waiting.clear();
    for (auto& d : now)
      d(address_answer(closed_reason()));
    if (data) data->close();
    if (watch) watch->close();
    for (auto& q : queries)
      if (auto c = q.lock()) c->close();
    for (auto* t : sleepers)
      t->cancel();
    notify();
  }

  std::error_code closed_reason() const {
    return fatal ? std::error_code(fatal) : std::error_code(error::closed);
  }

  // Runs a coroutine of the engine's; run() waits for all of them before it completes.
  void spawn(awaitable<void> task) {
    ++tasks;
    asio::co_spawn(ex, std::move(task), [self = shared_from_this()](std::exception_ptr e) {
      --self->tasks;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          self->log->error("sentinel: {}", x.what());
        } catch (...) {
          self->log->error("sentinel: unknown exception");
        }
      }
      self->notify();
    });
  }

  awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(ex, d);
    sleepers.push_back(&t);
    error_code ignored;
    if (!closed) co_await t.async_wait(use_ec(ignored));
    std::erase(sleepers, &t);
  }

  // run() waits here for anything it looks at to change.
  awaitable<void> wait_change() {
    changed.expires_at(clock::time_point::max());
    error_code ignored;
    co_await changed.async_wait(use_ec(ignored));
  }
  void notify() { changed.cancel(); }

  asio::any_io_executor ex;
  sentinel_config cfg;
  std::shared_ptr<spdlog::logger> log;
  std::shared_ptr<spdlog::logger> quiet;  // for the connections to sentinels
  sentinel_list known;
  client* data = nullptr;  // sentinel_client::client_, until its destructor
  std::optional<endpoint> current;
  bool name_known = false;  // a sentinel named the primary once: its name is right
  std::size_t replica_turn = 0;
  std::uint64_t switches = 0;  // failovers followed

  bool resolving = false;
  std::vector<std::function<void(address_answer)>> waiting;

  std::shared_ptr<connection> watch;
  std::vector<std::weak_ptr<connection>> queries;
  std::vector<asio::steady_timer*> sleepers;
  asio::steady_timer changed;
  std::size_t tasks = 0;
  bool run_started = false, closed = false, cancelled = false, data_done = false;
  error_code data_ec;
  error_code fatal;
};

namespace {

connection_config data_settings(const sentinel_config& cfg, std::weak_ptr<sentinel_impl> engine) {
  if (cfg.sentinels.empty())
    throw std::invalid_argument("redcoro: sentinel_config::sentinels is empty");
  if (cfg.primary_name.empty())
    throw std::invalid_argument("redcoro: sentinel_config::primary_name is empty");
  connection_config c = cfg.node;
  c.host.clear();
  c.unix_socket.clear();
  c.expect_role = cfg.role == sentinel_role::primary ? "master" : "slave";
  c.address_provider = [engine = std::move(engine)](std::function<void(address_answer)> done) {
    if (auto e = engine.lock())
      e->provide(std::move(done));
    else
      done(address_answer(std::error_code(error::closed)));
  };
  return c;
}

}  // namespace
}  // namespace detail

sentinel_client::sentinel_client(executor_type ex, sentinel_config cfg)
    : impl_(std::make_shared<detail::sentinel_impl>(ex, std::move(cfg))),
      client_(ex, detail::data_settings(impl_->cfg, impl_)) {
  impl_->data = &client_;
}

sentinel_client::~sentinel_client() {
  impl_->stop();
  impl_->data = nullptr;
}

const sentinel_config& sentinel_client::get_config() const noexcept {
  return impl_->cfg;
}

void sentinel_client::close() {
  impl_->stop();
}

std::optional<endpoint> sentinel_client::current_address() const {
  return impl_->current;
}

std::vector<endpoint> sentinel_client::sentinels() const {
  return impl_->known.order();
}

void sentinel_client::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  auto& s = *impl_;
  if (s.run_started) {
    asio::post(s.ex, [h = std::move(handler)]() mutable {
      std::move(h)(error_code(asio::error::already_started));
    });
    return;
  }
  s.run_started = true;
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) {
    slot.assign([w = std::weak_ptr<detail::sentinel_impl>(impl_)](asio::cancellation_type) {
      if (auto i = w.lock()) {
        i->cancelled = true;
        i->stop();
      }
    });
  }
  asio::co_spawn(
      s.ex, s.run(),
      [impl = impl_, h = std::move(handler)](std::exception_ptr e, error_code ec) mutable {
        auto run_slot = asio::get_associated_cancellation_slot(h);
        if (run_slot.is_connected()) run_slot.clear();
        if (e) ec = make_error_code(std::errc::not_enough_memory);
        std::move(h)(ec);
      });
}

static_assert(executes_requests<sentinel_client>);

}  // namespace redcoro
