#include "connection_impl.hpp"

namespace redcoro::detail {

void connection_impl::after_detach() {
  if (!mux.take_unblock()) return;
  if (client_id_ < 0) {
    log->warn(
        "{}: cannot unblock a blocking command whose caller gave up: the "
        "server did not say this connection's id",
        target());
    return;
  }
  connection_config side = cfg;
  // To this server, whatever an address provider would say now.
  side.address_provider = nullptr;
  side.host = dial_.host;
  side.port = dial_.port;
  side.key_prefix.clear();
  // Its CLIENT UNBLOCK is this connection's housekeeping, not a request of the user's.
  side.observer = nullptr;
  side.metrics = false;
  side.on_handshake = nullptr;
  side.reconnect.max_attempts = 1;
  side.client_name.clear();
  side.health_check_interval = std::chrono::milliseconds(0);
  auto conn = std::make_shared<connection>(executor, std::move(side));
  conn->async_run([conn](error_code) {});
  proto::request req;
  req.get_config().timeout = cfg.connect_timeout + cfg.request_timeout;
  req.push("CLIENT", "UNBLOCK", client_id_);
  auto shared_req = std::make_shared<proto::request>(std::move(req));
  auto resp = std::make_shared<proto::response<proto::ignore_t>>();
  auto logger = log;
  conn->async_exec(*shared_req, *resp,
                   [conn, shared_req, resp, logger, where = target()](error_code ec, std::size_t) {
                     if (ec) logger->warn("{}: CLIENT UNBLOCK failed: {}", where, ec.message());
                     conn->close();
                   });
}

awaitable<void> connection_impl::run() {
  std::vector<awaitable<void>> loops;
  loops.push_back(connect_loop());
  loops.push_back(timeout_loop());
  co_await first_of(std::move(loops));
}

awaitable<void> connection_impl::connect_loop() {
  for (;;) {
    if (closed_) co_return;
    error_code ec;
    bool no_address = false;  // the address provider said there is none
    if (cfg.address_provider && !spare_) ec = co_await current_address(no_address);
    if (!ec) ec = co_await connect();
    std::optional<credentials> creds;
    if (!ec) {
      creds = co_await current_credentials();
      if (!creds) {
        log->warn("{}: no credentials from the provider", target());
        ec = error::no_credentials;
        transport_.close();
      }
    }
    if (!ec) {
      session_error_ = {};
      last_read_at_ = clock::now();
      begin_handshake(std::move(*creds));
      auto loops = session_loops();
      co_await first_of(std::move(loops));
      ec = session_error_;
    }
    end_session(ec, no_address);
    if (closed_) co_return;
    if (std::exchange(recycled_, false)) continue;  // onto the spare, at once
    if (std::exchange(last_session_healthy_, false)) {
      // The server was there a moment ago (a restart, a failover, a dropped link): try again
      // at once; the backoff starts only if that fails.
      log->info("reconnecting to {}", target());
      continue;
    }
    const auto delay = retry.next();
    if (!delay) {
      log->error("giving up after {} failed connection attempts: {}", retry.failures(),
                 ec.message());
      final_error_ = ec;
      co_return;
    }
    log->info("reconnecting in {} ms", delay->count());
    retry_timer.expires_after(*delay);
    error_code wait_ec;
    co_await retry_timer.async_wait(use_ec(wait_ec));
  }
}

std::vector<awaitable<void>> connection_impl::session_loops() {
  std::vector<awaitable<void>> loops;
  loops.reserve(5);
  loops.push_back(reader());
  loops.push_back(writer());
  loops.push_back(health_loop());
  loops.push_back(reauth_loop());
  loops.push_back(lifetime_loop());
  return loops;
}

awaitable<error_code> connection_impl::connect() {
  const error_code ec = co_await transport_.connect(dial_plan(), spare_);
  if (ec) log->warn("cannot connect to {}: {}", target(), ec.message());
  co_return ec;
}

awaitable<void> connection_impl::lifetime_loop() {
  asio::steady_timer& t = lifetime_timer;
  const auto off = [&] {
    return cfg.max_lifetime.count() <= 0 || push_target != this || subscribed_;
  };
  error_code ec;
  if (off()) {
    t.expires_at(clock::time_point::max());
    co_await t.async_wait(use_ec(ec));
    co_return;
  }
  std::uniform_real_distribution<double> jitter(0.9, 1.0);
  t.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.max_lifetime *
                                                                        jitter(lifetime_random)));
  co_await t.async_wait(use_ec(ec));
  if (!transport_.is_open() || closed_) co_return;
  if (off()) {  // it subscribed meanwhile
    t.expires_at(clock::time_point::max());
    co_await t.async_wait(use_ec(ec));
    co_return;
  }
  // The address provider may name another server by now (a Sentinel failover, a moved
  // endpoint): the spare goes where it says.
  bool refused = false;
  if (cfg.address_provider) ec = co_await current_address(refused);
  if (!ec && transport_.is_open() && !closed_) {
    spare_.emplace(executor);
    ec = co_await transport_.dial_spare(*spare_, dial_plan());
    if (ec) log->warn("cannot connect to {}: {}", target(), ec.message());
  }
  if (ec || !transport_.is_open() || closed_) {
    // Keep serving on this one; the next try after another lifetime.
    spare_.reset();
    if (transport_.is_open()) log->warn("{}: no spare connection for max_lifetime", target());
    t.expires_at(clock::time_point::max());
    co_await t.async_wait(use_ec(ec));
    co_return;
  }
  // Drain: new requests wait (the reader wakes this loop as replies come in), also those
  // that would fail when not connected: this is no disconnection.
  switching_ = true;
  mux.set_ready(false);
  draining_ = true;
  while (transport_.is_open() && mux.stats().in_flight > 0) {
    t.expires_at(clock::time_point::max());
    co_await t.async_wait(use_ec(ec));
  }
  draining_ = false;
  if (!transport_.is_open()) co_return;  // lost meanwhile: an ordinary reconnect
  log->info("{}: max_lifetime reached: moving to a new connection", target());
  // Ending this coroutine ends the session (the reader and writer are cancelled; their
  // errors do not matter: nothing is in flight).
  recycled_ = true;
}

template <class T>
awaitable<std::optional<T>> connection_impl::ask_provider(
    const std::function<void(std::function<void(T)>)>& provider, const char* what) {
  struct answer {
    std::optional<T> got;
    bool alive = true;
    asio::steady_timer* wake = nullptr;
  };
  auto a = std::make_shared<answer>();
  asio::steady_timer wake(executor, cfg.connect_timeout);
  a->wake = &wake;
  bool threw = false;
  try {
    provider([a, ex = executor](T value) {
      asio::post(ex, [a, v = std::move(value)]() mutable {
        if (!a->alive || a->got) return;
        a->got.emplace(std::move(v));
        a->wake->cancel();
      });
    });
  } catch (const std::exception& e) {
    log->error("{}: the {} provider threw: {}", target(), what, e.what());
    threw = true;
  }
  if (!threw && !closed_) {
    // close() wakes it (the provider may never answer).
    provider_wait_ = &wake;
    error_code ignored;
    co_await wake.async_wait(use_ec(ignored));
    provider_wait_ = nullptr;
  }
  a->alive = false;
  co_return std::move(a->got);
}

awaitable<std::optional<credentials>> connection_impl::current_credentials() {
  if (!cfg.credentials_provider) co_return credentials{cfg.username, cfg.password};
  auto got = co_await ask_provider(cfg.credentials_provider, "credentials");
  if (!got) co_return std::nullopt;
  co_return std::move(*got);
}

awaitable<error_code> connection_impl::current_address(bool& refused) {
  auto got = co_await ask_provider(cfg.address_provider, "address");
  if (got && got->address) {
    dial_ = std::move(*got->address);
    co_return error_code{};
  }
  if (!got && closed_) co_return error_code(error::closed);
  // (Even when closed meanwhile: waiting requests learn why there was nowhere to go.)
  refused = got.has_value();
  error_code why = error::no_address;
  if (got && got->reason) why = got->reason;
  if (!closed_)
    log->warn("no address to connect to{}: {}",
              got ? "" : " (the address provider did not answer in time)", why.message());
  co_return why;
}

awaitable<void> connection_impl::reauth_loop() {
  asio::steady_timer t(executor);
  auto next = cfg.reauth_interval;
  for (;;) {
    if (cfg.reauth_interval.count() > 0)
      t.expires_after(next);
    else
      t.expires_at(clock::time_point::max());
    error_code ec;
    co_await t.async_wait(use_ec(ec));
    if (!transport_.is_open()) co_return;
    const auto creds = co_await current_credentials();
    if (!transport_.is_open()) co_return;
    if (!creds || creds->password.empty()) {
      log->warn("{}: re-authentication skipped: no credentials", target());
      next = std::chrono::seconds(1);
      continue;
    }
    reauth.req.clear();
    if (creds->username.empty())
      reauth.req.push("AUTH", creds->password);
    else
      reauth.req.push("AUTH", creds->username, creds->password);
    reauth.resp = {};
    reauth.adapter_impl = proto::response_adapter<proto::response<proto::ignore_t>>(reauth.resp);
    reauth.adapter = proto::any_adapter(reauth.adapter_impl);
    reauth.deadline = deadline_for(std::chrono::milliseconds(-1), cfg.request_timeout);
    reauth_ok_ = false;
    if (mux.add(reauth)) continue;
    arm_timeout(reauth.deadline);
    notify_writer();
    reauth.done = &t;
    t.expires_at(clock::time_point::max());
    co_await t.async_wait(use_ec(ec));
    reauth.done = nullptr;
    if (!transport_.is_open()) co_return;
    // Refused (a password not rotated on the server yet): again soon.
    next = reauth_ok_ ? cfg.reauth_interval : std::chrono::milliseconds(1000);
  }
}

awaitable<void> connection_impl::writer() {
  for (;;) {
    while (unsent_.empty() && !mux.has_writable()) {
      writer_waiting_ = true;
      write_event.expires_at(clock::time_point::max());
      error_code ec;
      co_await write_event.async_wait(use_ec(ec));
      writer_waiting_ = false;
      if (!transport_.is_open()) co_return;
    }
    if (unsent_.empty()) {
      unsent_ = mux.prepare_write();
      written();
    }
    error_code ec;
    co_await transport_.write(asio::buffer(unsent_.data(), unsent_.size()), ec);
    if (!ec) meter_.wrote(unsent_.size());
    unsent_ = {};
    if (ec) {
      if (!session_error_) session_error_ = ec;
      co_return;
    }
    mux.commit_write(completed_);
    complete_all(completed_, {});
  }
}

awaitable<void> connection_impl::reader() {
  // What the last connection left unparsed (a reply cut off, malformed bytes) is not this
  // one's.
  read_buf.clear();
  std::size_t message_bytes = 0;
  const auto sink = [this](const proto::node& n) {
    if (n.depth == 0) [[unlikely]] {
      if (proto::is_error(n.data_type)) {
        const exec_entry* e = mux.answering();
        if (e && e->started_at != clock::time_point{}) meter_.error_reply(n.value);
      } else if (n.data_type == proto::type::push) {
        meter_.pushed();
      }
    }
    mux.on_node(n);
  };
  for (;;) {
    // Full, with an incomplete element that is not a blob (a long line, say): grow.
    if (read_buf.free_size() == 0) read_buf.reserve(read_buf.size() * 2);
    error_code ec;
    const std::size_t n =
        co_await transport_.read_some(asio::buffer(read_buf.free_data(), read_buf.free_size()), ec);
    if (ec) {
      if (!session_error_) session_error_ = ec;
      co_return;
    }
    read_buf.commit(n);
    bytes_read_ += n;
    last_read_at_ = clock::now();
    const std::string_view input(read_buf.data(), read_buf.used());
    std::size_t pos = 0;
    dispatching_ = true;
    for (;;) {
      const std::size_t start = pos;
      std::error_code pec;
      const bool done = parser.consume_message(input, pos, sink, pec);
      message_bytes += pos - start;
      if (pec) {
        dispatching_ = false;
        fail_session_protocol(pec);
        co_return;
      }
      if (!done) break;
      exec_entry* e = mux.on_message_done(message_bytes, pec);
      message_bytes = 0;
      if (pec) {
        dispatching_ = false;
        fail_session_protocol(pec);
        co_return;
      }
      if (e) finish(*e, {}, last_read_at_);
      if (!transport_.is_open()) {  // user code closed the connection
        dispatching_ = false;
        co_return;
      }
    }
    dispatching_ = false;
    if (draining_) lifetime_timer.cancel();
    if (!mux.hand_backs().empty()) send_hand_backs();
    flush_now();
    // Compact once per read: what is left is the start of an incomplete message.
    read_buf.consume(pos);
    // A blob announced by its header gets room for all of it at once (its body starts at
    // the front now); a big reply done, the memory goes back.
    if (const std::size_t body = parser.pending_body())
      read_buf.reserve(body);
    else
      read_buf.shrink(cfg.read_buffer_size, cfg.read_buffer_keep);
    while (push_target->paused() && transport_.is_open()) {
      // Backpressure: nobody takes the pushes; stop reading until they do.
      push_space.expires_at(clock::time_point::max());
      error_code wait_ec;
      co_await push_space.async_wait(use_ec(wait_ec));
    }
  }
}

awaitable<void> connection_impl::health_loop() {
  const bool pings = cfg.health_check_interval.count() > 0;
  clock::time_point next_ping = clock::now() + cfg.health_check_interval;
  for (;;) {
    const clock::time_point stall = stall_deadline();
    const clock::time_point wake = pings ? std::min(stall, next_ping) : stall;
    // Asleep for good until a request is written (see written()).
    health_asleep_ = wake == clock::time_point::max();
    health_timer.expires_at(wake);
    error_code ec;
    co_await health_timer.async_wait(use_ec(ec));
    if (!transport_.is_open()) co_return;
    const auto now = clock::now();
    if (stall_deadline() <= now) {
      const auto head = mux.head();
      log->warn("{}: no reply for {} ms with {} requests in flight; reconnecting", target(),
                std::chrono::duration_cast<std::chrono::milliseconds>(
                    now - std::max(head->written_at, last_read_at_))
                    .count(),
                mux.stats().in_flight);
      fail_session(error::health_check_failed, "the server stopped answering");
      co_return;
    }
    if (!pings || now < next_ping) continue;  // woken early: a new deadline, or a write
    next_ping =
        std::max(last_read_at_, now - cfg.health_check_interval) + cfg.health_check_interval;
    if (now < next_ping || !mux.idle() || !mux.ready()) continue;
    next_ping = now + cfg.health_check_interval;
    ping.deadline = clock::time_point::max();
    if (!mux.add(ping)) notify_writer();
  }
}

awaitable<void> connection_impl::timeout_loop() {
  for (;;) {
    timeout_timer.expires_at(next_deadline_);
    error_code ec;
    co_await timeout_timer.async_wait(use_ec(ec));
    if (closed_) co_return;
    const auto now = clock::now();
    if (now < next_deadline_) continue;  // re-armed earlier, or woken by a new deadline
    next_deadline_ = mux.expire(now, expired_);
    after_detach();
    complete_all(expired_, error::timeout);
  }
}

}  // namespace redcoro::detail
