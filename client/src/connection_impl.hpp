#pragma once

// The connection's engine, shared by its two source files: connection.cpp (requests, the
// handshake, closing, and the public members) and connection_session.cpp (the loops of a
// session: connecting, reading, writing, the health check, re-authentication, max_lifetime,
// timeouts). Private to the client module; the byte stream under it is transport.hpp.

#include "transport.hpp"
#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/handshake.hpp>
#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/client/detail/log.hpp>
#include <redcoro/client/detail/meter.hpp>
#include <redcoro/client/detail/multiplexer.hpp>
#include <redcoro/client/detail/op_pool.hpp>
#include <redcoro/client/detail/read_buffer.hpp>
#include <redcoro/client/detail/spawn.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/proto/parser.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::detail {

template <class T>
using awaitable = asio::awaitable<T>;

inline auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// A session that lasted this long was healthy: its loss is followed by an immediate retry.
inline constexpr auto healthy_session = std::chrono::seconds(1);

// What a connection tells the client-side cache attached to it (tracking_cache.cpp), on its
// executor, in the order of the bytes read: an invalidation is told before any reply read
// after it is completed.
class tracking_sink {
 public:
  // CLIENT TRACKING's options (after ON), sent in every handshake while attached.
  virtual const std::vector<std::string>& tracking_options() const noexcept = 0;
  // A session is ready; `tracking`: the server accepted CLIENT TRACKING.
  virtual void on_tracking_session(bool tracking) = 0;
  // The server invalidated `keys` (named as the caller names them: without the key prefix),
  // or every key (`all`: FLUSHALL, FLUSHDB, or the server's tracking table was full).
  virtual void on_invalidate(const std::vector<std::string_view>& keys, bool all) = 0;
  // The session ended: invalidations may have been lost with it.
  virtual void on_session_lost() = 0;

 protected:
  ~tracking_sink() = default;
};

struct connection_impl final : push_sink {
  connection_impl(asio::any_io_executor ex, connection_config c)
      : executor(std::move(ex)),
        cfg(std::move(c)),
        log(cfg.logger ? cfg.logger : default_logger()),
        transport_(executor, cfg.tls),
        write_event(executor),
        timeout_timer(executor),
        health_timer(executor),
        retry_timer(executor),
        mux(cfg.max_queued_requests),
        parser(cfg.limits),
        retry(cfg.reconnect, reinterpret_cast<std::uintptr_t>(this)),
        read_buf(cfg.read_buffer_size) {
    mux.set_push_sink(push_target);
    // With an address provider, each attempt learns where to go (current_address).
    if (!cfg.address_provider) dial_ = endpoint{cfg.host, cfg.port};
    node_ = target();
    if (!cfg.key_prefix.empty()) {
      prefixer.emplace(cfg.key_prefix);
      mux.set_key_prefixer(&*prefixer, cfg.strip_key_prefix);
    }
  }

  // --- requests -------------------------------------------------------------------------

  void start(exec_entry& e) {
    initiating_ = true;
    const auto now = clock::now();
    if (meter_.timing()) {
      e.started_at = now;
      meter_.started(*e.req, node_);
    }
    std::error_code ec;
    if (closed_ || run_ended_) {
      ec = error::closed;
    } else if (e.req->get_config().cancel_if_not_connected && !mux.ready() && !switching_) {
      ec = error::not_connected;
    } else {
      e.deadline = deadline_for(now, e.req->get_config().timeout, default_timeout(*e.req));
      subscribed_ |= e.req->out_of_band_commands() != 0;  // never recycled (max_lifetime)
      ec = mux.add(e);
      if (!ec) {
        arm_timeout(e.deadline);
        notify_writer();
      }
    }
    if (ec) {
      e.st = exec_entry::state::done;
      finish(e, ec, now);
    }
    initiating_ = false;
  }

  // Every request started through start() ends here: counted, timed, then completed. `at`:
  // when it ended, if the caller read the clock already.
  void finish(exec_entry& e, error_code ec, clock::time_point at = {}) {
    if (e.started_at != clock::time_point{})
      meter_.finished(*e.req, e.started_at, at == clock::time_point{} ? clock::now() : at, ec,
                      node_);
    e.complete(e, ec);
  }

  // A blocking command may block for its own time; the connection's timeout is the margin
  // on top of it (BLPOP 0 blocks without a limit, and so does its request).
  std::chrono::milliseconds default_timeout(const proto::request& r) const {
    const auto block = r.block_time();
    if (!block || cfg.request_timeout.count() <= 0) return cfg.request_timeout;
    return block->count() == 0 ? std::chrono::milliseconds(0) : *block + cfg.request_timeout;
  }

  void cancel(exec_entry& e, asio::cancellation_type type) {
    const bool written = e.st == exec_entry::state::written;
    // A written request cannot be taken back: only cancellation that allows side effects
    // may abandon it.
    if (written && (type & (asio::cancellation_type::terminal |
                            asio::cancellation_type::partial)) == asio::cancellation_type::none)
      return;
    if (!mux.remove(e)) return;
    after_detach();
    e.st = exec_entry::state::done;
    // Complete later, outside the cancellation slot's handler (finishing clears the slot).
    asio::post(executor, [this, &e] { finish(e, error_code(asio::error::operation_aborted)); });
  }

  void complete_all(std::vector<exec_entry*>& entries, error_code ec) {
    // The vector may be refilled by user code resumed below; take the entries out first.
    std::vector<exec_entry*> now;
    now.swap(entries);
    for (exec_entry* e : now)
      finish(*e, ec);
    now.clear();
    if (entries.empty()) entries.swap(now);  // keep the capacity
  }

  // The entry is in the multiplexer: waiting to be written, or waiting for its replies.
  static bool queued(const exec_entry& e) noexcept {
    return e.st == exec_entry::state::waiting || e.st == exec_entry::state::written;
  }

  // Something became writable. Inside the reader's dispatch the reader sends it when it is
  // done with the current read; otherwise the writer coroutine is woken.
  void notify_writer() {
    if (!dispatching_) wake_writer();
  }

  void wake_writer() {
    if (writer_waiting_ && (mux.has_writable() || !unsent_.empty())) {
      writer_waiting_ = false;
      write_event.cancel();
    }
  }

  // PERF NOTES: callers resumed by the reader usually issue their next request at once; the
  // reader then sends everything with one non-blocking send before it reads again, instead of
  // waking the writer coroutine and waiting for its async_write to complete: two handler
  // hops and a timer wait fewer per round trip. What the socket does not take at once is
  // left to the writer.
  void flush_now() {
    if (!unsent_.empty() || !mux.has_writable() || !transport_.is_open()) return;
    if (!transport_.can_write_now()) {  // TLS: the writer does it
      wake_writer();
      return;
    }
    const std::string_view bytes = mux.prepare_write();
    written();
    error_code ec;
    const std::size_t n = transport_.write_now(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) {
      if (!session_error_) session_error_ = ec;
      transport_.close();
      return;
    }
    meter_.wrote(n);
    if (n < bytes.size()) {
      unsent_ = bytes.substr(n);
      wake_writer();
      return;
    }
    mux.commit_write(completed_);
    complete_all(completed_, {});
  }

  // Requests went to the FIFO: the stall check has something to watch again.
  void written() {
    if (health_asleep_) {
      health_asleep_ = false;
      health_timer.cancel();
    }
  }

  // --- blocking commands whose caller gave up -----------------------------------------------

  // A written blocking command lost its caller (mux.detach): unblock it on the server, from
  // another connection, so that what was sent behind it is not stuck.
  void after_detach();

  // What blocking pops took for callers who had given up goes back (mux.hand_backs).
  struct hand_back_entry final : exec_entry {
    hand_back_entry(connection_impl& c, proto::request r)
        : exec_entry(req, proto::any_adapter(adapter_impl), &finish), conn(&c), req(std::move(r)) {
      wire_keys = true;
    }
    static void finish(exec_entry& base, error_code ec) {
      auto& self = static_cast<hand_back_entry&>(base);
      const bool refused = std::get<0>(self.resp).has_error();
      if (ec || refused)
        self.conn->log->error(
            "{}: could not give back what a blocking command took after its caller "
            "gave up: {}",
            self.conn->target(), ec ? ec.message() : std::get<0>(self.resp).error().message);
      delete &self;
    }
    connection_impl* conn;
    proto::request req;
    proto::response<proto::ignore_t> resp;
    proto::response_adapter<proto::response<proto::ignore_t>> adapter_impl{resp};
  };

  void send_hand_backs() {
    std::vector<proto::request> backs;
    backs.swap(mux.hand_backs());
    for (proto::request& r : backs) {
      log->info("{}: giving back what a blocking command took after its caller gave up", target());
      auto* e = new hand_back_entry(*this, std::move(r));
      e->deadline = deadline_for(std::chrono::milliseconds(-1), cfg.request_timeout);
      if (const std::error_code ec = mux.add(*e)) {
        e->st = exec_entry::state::done;
        e->complete(*e, ec);
        continue;
      }
      arm_timeout(e->deadline);
    }
    notify_writer();
  }

  void arm_timeout(clock::time_point deadline) {
    if (deadline < next_deadline_) {
      next_deadline_ = deadline;
      timeout_timer.expires_at(deadline);  // wakes the timeout loop, which re-arms
    }
  }

  // --- pushes -----------------------------------------------------------------------------

  void on_push_node(const proto::node& n) override {
    proto::reply_error unused;
    push_adapter.on_node(push_value, n, n.depth, unused);
  }

  // The queue behind async_receive_push is full.
  bool paused() const noexcept override { return pushes.size() >= cfg.max_queued_pushes; }

  void on_push_done() override {
    proto::value v = std::move(push_value);
    push_value = {};
    push_adapter = {};
    // While this session tracks keys, its invalidations are the cache's, never the queue's
    // (a detached cache's are dropped: nobody reads them).
    if (tracking_session_ && is_invalidation(v)) {
      if (tracking) invalidate(v);
      return;
    }
    if (push_receiver) {
      complete_push(error_code{}, std::move(v));
    } else {
      pushes.push_back(std::move(v));
    }
  }

  // --- client-side caching ---------------------------------------------------------------

  // `["invalidate", keys]` or `["invalidate", null]`.
  static bool is_invalidation(const proto::value& v) noexcept {
    return v.data_type == proto::type::push && v.size() == 2 && v[0].text == "invalidate" &&
           (v[1].is_null() || v[1].data_type == proto::type::array);
  }

  void invalidate(const proto::value& v) {
    std::vector<std::string_view> keys;
    keys.reserve(v[1].size());
    for (const proto::value& k : v[1].elements) {
      std::string_view key = k.text;
      if (prefixer) {
        if (!key.starts_with(cfg.key_prefix)) continue;  // not a key this connection names
        key.remove_prefix(cfg.key_prefix.size());
      }
      keys.push_back(key);
    }
    tracking->on_invalidate(keys, v[1].is_null());
  }

  // --- the loops ----------------------------------------------------------------------------

  awaitable<void> run();

  awaitable<void> connect_loop();

  // A session: it ends when the first of these does (the socket closed, max_lifetime), and
  // the others are cancelled.
  std::vector<awaitable<void>> session_loops();

  // The Unix socket, unless an address provider says where to go.
  bool on_unix_socket() const { return !cfg.unix_socket.empty() && !cfg.address_provider; }

  // Where this connection goes: the address it dials (or last dialled).
  std::string target() const {
    if (on_unix_socket()) return "unix:" + cfg.unix_socket;
    if (dial_.host.empty()) return "(no address yet)";
    return dial_.to_string();
  }

  // Where this attempt dials, and for how long.
  dial_target dial_plan() const {
    return {dial_, on_unix_socket() ? cfg.unix_socket : std::string(), cfg.connect_timeout};
  }

  // Opens the transport: onto the spare dialled while the last connection drained
  // (max_lifetime), or a new connection; then TLS.
  awaitable<error_code> connect();

  // --- maximum lifetime -------------------------------------------------------------------

  // connection_config::max_lifetime: once this session has lived that long, dials a spare,
  // holds new requests, waits for those in flight, and ends the session; connect_loop goes
  // on with the spare at once. Waits forever when off, or for a connection that carries
  // subscriptions (they would be missed between the two connections).
  awaitable<void> lifetime_loop();

  // The handshake is an ordinary request with priority, so it goes through the same writer,
  // reader and timeouts as everything else; handshake_machine decides what it says.
  struct handshake_entry final : exec_entry {
    explicit handshake_entry(connection_impl& c)
        : exec_entry(req, proto::any_adapter(adapter_impl), &finish), conn(&c) {}
    static void finish(exec_entry& base, error_code ec) {
      auto& self = static_cast<handshake_entry&>(base);
      self.conn->on_handshake(ec);
    }
    connection_impl* conn;
    proto::request req;
    proto::generic_response resp;
    proto::response_adapter<proto::generic_response> adapter_impl{resp};
    handshake_machine machine;
    handshake_settings settings;
  };

  // Asks a provider of the config's (credentials, address) and waits for its answer, taken
  // on this executor, up to the connect timeout or close(). nullopt: no answer in time (or
  // the provider threw, which is logged). A late answer is dropped.
  template <class T>
  awaitable<std::optional<T>> ask_provider(
      const std::function<void(std::function<void(T)>)>& provider, const char* what);

  // The credentials of this attempt: the provider's when there is one, else the config's.
  awaitable<std::optional<credentials>> current_credentials();

  // Where this attempt goes, from the address provider: into dial_, or the reason there is
  // none. `refused`: the provider said so, rather than not answering in time.
  awaitable<error_code> current_address(bool& refused);

  void begin_handshake(credentials creds) {
    protocol_ = 0;
    handshake_settings& s = handshake.settings;
    s.protocol = cfg.protocol;
    s.username = std::move(creds.username);
    s.password = std::move(creds.password);
    s.client_name = cfg.client_name;
    s.database = cfg.database;
    s.fetch_command_table = prefixer && !prefixer->loaded();
    s.expect_role = cfg.expect_role;
    s.extras = &cfg.on_handshake;
    if (tracking)
      s.tracking = tracking->tracking_options();
    else
      s.tracking.reset();
    handshake.machine.start(s, handshake.req);
    queue_handshake();
  }

  void queue_handshake() {
    handshake.resp.clear();
    handshake.adapter_impl = proto::response_adapter<proto::generic_response>(handshake.resp);
    handshake.adapter = proto::any_adapter(handshake.adapter_impl);
    handshake.priority = true;
    handshake.deadline = clock::now() + std::max(cfg.connect_timeout, std::chrono::milliseconds(1));
    if (mux.add(handshake)) return;  // priority entries are never refused
    arm_timeout(handshake.deadline);
    notify_writer();
  }

  void on_handshake(error_code ec) {
    if (ec) {
      // The session is ending (connection lost, timeout, closed).
      if (ec == error::timeout) fail_session(error::connect_timeout, "no answer to the handshake");
      return;
    }
    const auto o = handshake.machine.on_replies(handshake.resp, handshake.req);
    if (!o.note.empty()) {
      if (o.warning)
        log->warn("{}: {}", target(), o.note);
      else
        log->info("{}: {}", target(), o.note);
    }
    switch (o.what) {
      case handshake_machine::step::send:
        queue_handshake();
        return;
      case handshake_machine::step::failed:
        fail_session(o.ec, o.reason);
        return;
      case handshake_machine::step::ready:
        break;
    }
    if (prefixer && !prefixer->loaded()) {
      const auto& table = handshake.machine.command_reply();
      if (!table || prefixer->load(*table)) {
        fail_session(error::handshake_failed, "COMMAND gave no key specifications for key_prefix");
        return;
      }
    }
    protocol_ = handshake.machine.protocol();
    client_id_ = handshake.machine.client_id();
    ready_at_ = clock::now();
    retry.reset();
    switching_ = false;
    mux.set_ready(true);
    node_ = target();
    meter_.connected();
    tracking_session_ = handshake.machine.tracking();
    if (tracking) tracking->on_tracking_session(tracking_session_);
    log->info("connected to {} (RESP{})", target(), protocol_);
    notify_writer();
  }

  // --- re-authentication ------------------------------------------------------------------

  struct reauth_entry final : exec_entry {
    explicit reauth_entry(connection_impl& c)
        : exec_entry(req, proto::any_adapter(adapter_impl), &finish), conn(&c) {
      priority = true;
    }
    static void finish(exec_entry& base, error_code ec) {
      static_cast<reauth_entry&>(base).conn->on_reauth(ec);
    }
    connection_impl* conn;
    proto::request req;
    proto::response<proto::ignore_t> resp;
    proto::response_adapter<proto::response<proto::ignore_t>> adapter_impl{resp};
    asio::steady_timer* done = nullptr;
  };

  void on_reauth(error_code ec) {
    const auto& r = std::get<0>(reauth.resp);
    reauth_ok_ = !ec && !r.has_error();
    if (!ec && r.has_error())
      log->warn("{}: re-authentication refused: {}", target(), r.error().message);
    if (reauth.done) reauth.done->cancel();
  }

  // Sends the current credentials again every reauth_interval, on the live connection.
  awaitable<void> reauth_loop();

  void fail_session(error e, std::string_view why) {
    log->error("{}: {}: {}", target(), make_error_code(e).message(), why);
    session_error_ = e;
    transport_.close();
  }

  awaitable<void> writer();

  awaitable<void> reader();

  void fail_session_protocol(std::error_code ec) {
    log->error("{}: protocol error: {}", target(), ec.message());
    session_error_ = ec;
    transport_.close();
  }

  // How long the server may leave the request it is answering without a byte: the health
  // interval (the request timeout when there is none) plus its block time.
  std::chrono::milliseconds stall_window() const {
    return cfg.health_check_interval.count() > 0 ? cfg.health_check_interval : cfg.request_timeout;
  }

  // When the request at the head of the line stops being waited for, or max() when it may
  // wait forever (nothing in flight, a BLPOP 0, no window).
  clock::time_point stall_deadline() const {
    const auto head = mux.head();
    const auto window = stall_window();
    if (!head || head->block_ms == 0 || window.count() <= 0) return clock::time_point::max();
    return std::max(head->written_at, last_read_at_) + window +
           std::chrono::milliseconds(std::max<std::int64_t>(0, head->block_ms));
  }

  // Two jobs. A connection that owes replies and has read nothing for too long is dead
  // (a frozen server, a half-open TCP link, a reply cut off part-way): requests that timed
  // out stay in flight waiting for their late replies, so without this it would be kept for
  // as long as the peer keeps the socket. It is dropped, its written requests fail with
  // connection_lost (or are sent again, when marked safe), and it reconnects. And an idle
  // connection is PINGed each interval, so that a dead link is noticed before a request
  // needs it (the PING is then the request that is not answered).
  awaitable<void> health_loop();

  struct ping_entry final : exec_entry {
    ping_entry()
        : exec_entry(req, proto::any_adapter(ignore_adapter), [](exec_entry&, error_code) {}) {
      req.push("PING");
      priority = true;
    }
    proto::request req;
    proto::response_adapter<proto::ignore_t> ignore_adapter{proto::ignore};
  };

  awaitable<void> timeout_loop();

  // `no_address`: the attempt failed because the address provider said there is none.
  void end_session(error_code ec, bool no_address = false) {
    const bool was_connected = mux.ready();
    if (was_connected) meter_.disconnected();
    // Up for a while: the first reconnect goes at once (see connect_loop).
    last_session_healthy_ = was_connected && clock::now() - ready_at_ >= healthy_session;
    client_id_ = -1;
    subscribed_ = false;
    tracking_session_ = false;
    if (tracking) tracking->on_session_lost();
    if (!recycled_) switching_ = false;  // a real loss, also of the spare's session
    lifetime_timer.cancel();
    mux.set_ready(false);
    protocol_ = 0;
    transport_.reset();
    write_event.cancel();
    health_timer.cancel();
    push_space.cancel();
    parser.reset();
    // The handshake and health-check entries belong to the session that ended.
    if (queued(handshake)) mux.remove(handshake);
    if (queued(ping)) mux.remove(ping);
    if (queued(reauth)) mux.remove(reauth);
    unsent_ = {};
    // After malformed input, written requests learn that; otherwise the connection was lost.
    const std::error_code session = ec;
    const bool malformed = &session.category() == &proto::error_category() ||
                           ec == error::unexpected_reply || ec == error::out_of_sync;
    const std::error_code why = malformed ? session : error::connection_lost;
    mux.on_connection_lost(failed_);
    complete_all(failed_, why);
    if (ec == error::auth_failed || ec == error::handshake_failed || no_address) {
      // The same settings will fail the same way (and there is nowhere to go until the address
      // provider knows one): waiting requests learn why now instead of at their timeout.
      mux.drain(failed_);
      complete_all(failed_, ec);
    } else if (cfg.fail_waiting_on_disconnect && !recycled_) {
      mux.drain(failed_);
      complete_all(failed_, error::not_connected);
    }
    if (closed_)
      log->info("closed the connection to {}", target());
    else if (recycled_)
      log->info("closed the connection to {} (max_lifetime)", target());
    else if (was_connected)
      log->warn("disconnected from {}: {}", target(), ec ? ec.message() : "closed");
  }

  void finish_run() {
    run_ended_ = true;
    transport_.close();
    timeout_timer.cancel();
    retry_timer.cancel();
    mux.drain(failed_);
    complete_all(failed_, error::closed);
    if (push_receiver) complete_push(error::closed, {});
  }

  // Drops the current connection; async_run reconnects (connection::reconnect).
  void drop_connection() {
    if (!transport_.is_open()) {
      // Between attempts, waiting out the backoff: the caller knows something changed (a
      // failover), so try again now.
      retry_timer.cancel();
      return;
    }
    log->warn("{}: dropping the connection on request", target());
    if (!session_error_) session_error_ = error::connection_lost;
    transport_.close();
  }

  void close() {
    closed_ = true;
    transport_.close();
    write_event.cancel();
    timeout_timer.cancel();
    health_timer.cancel();
    retry_timer.cancel();
    push_space.cancel();
    if (provider_wait_) provider_wait_->cancel();
    // Closed, not destroyed: lifetime_loop may be dialling it (it lets go of it itself).
    if (spare_) {
      error_code ignored;
      spare_->close(ignored);
    }
    if (!running_) finish_run();
  }

  asio::any_io_executor executor;
  connection_config cfg;
  std::shared_ptr<spdlog::logger> log;
  endpoint dial_;                                // where this attempt goes (target())
  asio::steady_timer* provider_wait_ = nullptr;  // while waiting for a provider's answer
  transport transport_;
  std::optional<key_prefixer> prefixer;  // when cfg.key_prefix is set
  asio::steady_timer write_event;
  asio::steady_timer timeout_timer;
  asio::steady_timer health_timer;
  asio::steady_timer retry_timer;
  asio::steady_timer push_space{executor};
  asio::steady_timer lifetime_timer{executor};
  std::optional<transport::socket_type>
      spare_;  // dialled before the current connection is recycled
  std::minstd_rand lifetime_random{static_cast<std::uint32_t>(
      reinterpret_cast<std::uintptr_t>(this) ^
      static_cast<std::uintptr_t>(clock::now().time_since_epoch().count()))};
  multiplexer mux;
  proto::parser parser;
  backoff retry;
  op_pool pool;
  read_buffer read_buf;
  std::vector<exec_entry*> completed_, expired_, failed_;
  handshake_entry handshake{*this};
  ping_entry ping;
  reauth_entry reauth{*this};
  bool reauth_ok_ = false;

  std::deque<proto::value> pushes;
  push_sink* push_target = this;                   // this queue, or detail::set_push_sink's sink
  tracking_sink* tracking = nullptr;               // an attached client-side cache
  bool tracking_session_ = false;                  // this session sent CLIENT TRACKING ON
  std::optional<any_value_handler> push_receiver;  // async_receive_push's

  void complete_push(error_code ec, proto::value v) {
    auto h = std::move(*push_receiver);
    push_receiver.reset();
    complete_on(executor, initiating_, std::move(h), std::move(ec), std::move(v));
  }
  proto::value push_value;
  proto::adapter<proto::value> push_adapter;

  clock::time_point next_deadline_ = clock::time_point::max();
  std::uint64_t bytes_read_ = 0;
  meter meter_{cfg.metrics, cfg.observer};
  std::string node_;  // target() of the current (or last) session: address()
  clock::time_point last_read_at_{};
  clock::time_point ready_at_{};  // of the current session's handshake
  std::int64_t client_id_ = -1;   // CLIENT ID of the current session; -1: unknown
  bool health_asleep_ = false;    // the health timer waits for nothing (see written())
  bool last_session_healthy_ = false;
  error_code session_error_;
  error_code final_error_;
  int protocol_ = 0;
  bool initiating_ = false;
  bool writer_waiting_ = false;
  bool dispatching_ = false;  // the reader is completing requests
  std::string_view unsent_;   // those bytes (in the multiplexer's write buffer)
  bool closed_ = false;
  bool cancelled_ = false;
  bool running_ = false;
  bool run_ended_ = false;
  bool subscribed_ = false;  // this session sent (P|S)SUBSCRIBE: not recycled
  bool draining_ = false;    // lifetime_loop waits for the requests in flight
  bool recycled_ = false;    // the session ended for max_lifetime
  bool switching_ = false;   // from the drain to the new connection's handshake
};

}  // namespace redcoro::detail
