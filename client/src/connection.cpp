#include <redcoro/client/connection.hpp>
#include <redcoro/client/detail/backoff.hpp>
#include <redcoro/client/detail/handshake.hpp>
#include <redcoro/client/detail/key_prefix.hpp>
#include <redcoro/client/detail/meter.hpp>
#include <redcoro/client/detail/op_pool.hpp>
#include <redcoro/client/detail/read_buffer.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/proto/parser.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace redcoro {
namespace detail {
namespace {

using namespace asio::experimental::awaitable_operators;
using socket_type = asio::generic::stream_protocol::socket;
template <class T>
using awaitable = asio::awaitable<T>;

inline auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// A session that lasted this long was healthy: its loss is followed by an immediate retry.
constexpr auto healthy_session = std::chrono::seconds(1);

}  // namespace

std::shared_ptr<spdlog::logger> default_logger() {
  if (auto existing = spdlog::get("redcoro")) return existing;
  try {
    auto created = spdlog::stderr_color_mt("redcoro");
    created->set_level(spdlog::level::warn);
    return created;
  } catch (const spdlog::spdlog_ex&) {
    // Another connection registered it between get() and here.
    return spdlog::get("redcoro");
  }
}

struct connection_impl final : push_sink {
  connection_impl(asio::any_io_executor ex, connection_config c)
      : executor(std::move(ex)),
        cfg(std::move(c)),
        log(cfg.logger ? cfg.logger : default_logger()),
        socket(executor),
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
    if (cfg.tls.enabled) tls_context.emplace(make_tls_context(cfg.tls));
    if (!cfg.key_prefix.empty()) {
      prefixer.emplace(cfg.key_prefix);
      mux.set_key_prefixer(&*prefixer, cfg.strip_key_prefix);
    }
  }

  // --- TLS ------------------------------------------------------------------------------

  // Loads the CA, client certificate and key once; a file that cannot be read throws here,
  // from the connection's constructor, naming the file.
  static asio::ssl::context make_tls_context(const tls_config& t) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    // Each step throws on failure; say which file it was.
    auto step = [](const std::string& what, auto&& f) {
      try {
        f();
      } catch (const boost::system::system_error& e) {
        throw boost::system::system_error(e.code(), "redcoro: TLS: " + what);
      }
    };
    if (t.verify_peer) {
      ctx.set_verify_mode(asio::ssl::verify_peer);
      if (!t.ca_file.empty())
        step("CA file " + t.ca_file, [&] { ctx.load_verify_file(t.ca_file); });
      if (!t.ca_path.empty()) step("CA path " + t.ca_path, [&] { ctx.add_verify_path(t.ca_path); });
      if (t.ca_file.empty() && t.ca_path.empty())
        step("default CA paths", [&] { ctx.set_default_verify_paths(); });
    } else {
      ctx.set_verify_mode(asio::ssl::verify_none);
    }
    if (!t.cert_file.empty())
      step("certificate " + t.cert_file, [&] { ctx.use_certificate_chain_file(t.cert_file); });
    if (!t.key_file.empty())
      step("private key " + t.key_file,
           [&] { ctx.use_private_key_file(t.key_file, asio::ssl::context::pem); });
    return ctx;
  }

  // After the TCP connect: the TLS handshake, with SNI and the certificate's name checked.
  awaitable<void> tls_handshake(error_code& ec) {
    tls.emplace(socket, *tls_context);
    const std::string& name = cfg.tls.server_name.empty() ? dial_.host : cfg.tls.server_name;
    error_code parse_ec;
    asio::ip::make_address(name, parse_ec);
    // SNI carries host names only, never IP addresses (RFC 6066).
    if (parse_ec) SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    if (cfg.tls.verify_peer) tls->set_verify_callback(asio::ssl::host_name_verification(name));
    co_await tls->async_handshake(asio::ssl::stream_base::client, use_ec(ec));
  }

  // Reads and writes go through TLS when it is on.
  template <class Buffers>
  awaitable<std::size_t> read_some(const Buffers& b, error_code& ec) {
    if (tls) co_return co_await tls->async_read_some(b, use_ec(ec));
    co_return co_await socket.async_read_some(b, use_ec(ec));
  }
  template <class Buffers>
  awaitable<void> write_all(const Buffers& b, error_code& ec) {
    if (tls)
      co_await asio::async_write(*tls, b, use_ec(ec));
    else
      co_await asio::async_write(socket, b, use_ec(ec));
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
    if (!unsent_.empty() || !mux.has_writable() || !socket.is_open()) return;
    // A TLS record cannot be half-sent by a plain non-blocking write: the writer does it.
    if (tls) {
      wake_writer();
      return;
    }
    const std::string_view bytes = mux.prepare_write();
    written();
    error_code ec;
    std::size_t n = socket.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      n = 0;
      ec = {};
    }
    if (ec) {
      if (!session_error_) session_error_ = ec;
      socket.close(ec);
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
  void after_detach() {
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
    conn->async_exec(
        *shared_req, *resp,
        [conn, shared_req, resp, logger, where = target()](error_code ec, std::size_t) {
          if (ec) logger->warn("{}: CLIENT UNBLOCK failed: {}", where, ec.message());
          conn->close();
        });
  }

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
    if (push_receiver) {
      complete_push(error_code{}, std::move(v));
    } else {
      pushes.push_back(std::move(v));
    }
  }

  // --- the loops ----------------------------------------------------------------------------

  awaitable<void> run() { co_await (connect_loop() || timeout_loop()); }

  awaitable<void> connect_loop() {
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
          error_code ignored;
          socket.close(ignored);
        }
      }
      if (!ec) {
        session_error_ = {};
        last_read_at_ = clock::now();
        begin_handshake(std::move(*creds));
        co_await (reader() || writer() || health_loop() || reauth_loop() || lifetime_loop());
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

  // Where this connection goes: the address it dials (or last dialled).
  std::string target() const {
    if (!cfg.unix_socket.empty() && !cfg.address_provider) return "unix:" + cfg.unix_socket;
    if (dial_.host.empty()) return "(no address yet)";
    return dial_.to_string();
  }

  // Connects `socket`, or takes the spare dialled while the last connection drained
  // (max_lifetime); then TLS.
  awaitable<error_code> connect() {
    if (spare_) {
      socket = std::move(*spare_);
      spare_.reset();
      if (!tls_context) co_return error_code{};
    }
    co_return co_await dial(socket);
  }

  // Resolves and connects `s` (unless it is open already), then the TLS handshake over
  // `socket` when `s` is `socket`; all within connect_timeout.
  awaitable<error_code> dial(socket_type& s) {
    error_code ec;
    auto attempt = [&]() -> awaitable<void> {
      if (s.is_open()) {
        if (tls_context) co_await tls_handshake(ec);
        co_return;
      }
      if (!cfg.unix_socket.empty() && !cfg.address_provider) {
        asio::local::stream_protocol::endpoint ep(cfg.unix_socket);
        s.open(asio::generic::stream_protocol(ep.protocol()), ec);
        if (!ec) co_await s.async_connect(ep, use_ec(ec));
        co_return;
      }
      asio::ip::tcp::resolver resolver(executor);
      auto endpoints =
          co_await resolver.async_resolve(dial_.host, std::to_string(dial_.port), use_ec(ec));
      if (ec) co_return;
      for (const auto& entry : endpoints) {
        asio::generic::stream_protocol::endpoint ep(entry.endpoint());
        if (s.is_open()) s.close();
        s.open(ep.protocol(), ec);
        if (ec) continue;
        co_await s.async_connect(ep, use_ec(ec));
        if (!ec) {
          // Requests are coalesced by the writer already; Nagle would only add delay.
          s.set_option(asio::detail::socket_option::boolean<IPPROTO_TCP, TCP_NODELAY>(true), ec);
          ec = {};
          if (tls_context && &s == &socket) co_await tls_handshake(ec);
          co_return;
        }
      }
    };
    asio::steady_timer deadline(executor, cfg.connect_timeout);
    auto result = co_await (attempt() || deadline.async_wait(asio::use_awaitable));
    if (result.index() == 1) ec = error::connect_timeout;
    if (ec) {
      log->warn("cannot connect to {}: {}", target(), ec.message());
      error_code ignored;
      s.close(ignored);
    }
    co_return ec;
  }

  // --- maximum lifetime -------------------------------------------------------------------

  // connection_config::max_lifetime: once this session has lived that long, dials a spare,
  // holds new requests, waits for those in flight, and ends the session; connect_loop goes
  // on with the spare at once. Waits forever when off, or for a connection that carries
  // subscriptions (they would be missed between the two connections).
  awaitable<void> lifetime_loop() {
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
    if (!socket.is_open() || closed_) co_return;
    if (off()) {  // it subscribed meanwhile
      t.expires_at(clock::time_point::max());
      co_await t.async_wait(use_ec(ec));
      co_return;
    }
    // The address provider may name another server by now (a Sentinel failover, a moved
    // endpoint): the spare goes where it says.
    bool refused = false;
    if (cfg.address_provider) ec = co_await current_address(refused);
    if (!ec && socket.is_open() && !closed_) {
      spare_.emplace(executor);
      ec = co_await dial(*spare_);
    }
    if (ec || !socket.is_open() || closed_) {
      // Keep serving on this one; the next try after another lifetime.
      spare_.reset();
      if (socket.is_open()) log->warn("{}: no spare connection for max_lifetime", target());
      t.expires_at(clock::time_point::max());
      co_await t.async_wait(use_ec(ec));
      co_return;
    }
    // Drain: new requests wait (the reader wakes this loop as replies come in), also those
    // that would fail when not connected: this is no disconnection.
    switching_ = true;
    mux.set_ready(false);
    draining_ = true;
    while (socket.is_open() && mux.stats().in_flight > 0) {
      t.expires_at(clock::time_point::max());
      co_await t.async_wait(use_ec(ec));
    }
    draining_ = false;
    if (!socket.is_open()) co_return;  // lost meanwhile: an ordinary reconnect
    log->info("{}: max_lifetime reached: moving to a new connection", target());
    // Ending this coroutine ends the session (the reader and writer are cancelled; their
    // errors do not matter: nothing is in flight).
    recycled_ = true;
  }

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

  // The credentials of this attempt: the provider's when there is one, else the config's.
  awaitable<std::optional<credentials>> current_credentials() {
    if (!cfg.credentials_provider) co_return credentials{cfg.username, cfg.password};
    auto got = co_await ask_provider(cfg.credentials_provider, "credentials");
    if (!got) co_return std::nullopt;
    co_return std::move(*got);
  }

  // Where this attempt goes, from the address provider: into dial_, or the reason there is
  // none. `refused`: the provider said so, rather than not answering in time.
  awaitable<error_code> current_address(bool& refused) {
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

  void begin_handshake(credentials creds) {
    protocol_ = 0;
    // The reader sends with plain non-blocking writes (flush_now).
    error_code ignored;
    socket.non_blocking(true, ignored);
    handshake_settings& s = handshake.settings;
    s.protocol = cfg.protocol;
    s.username = std::move(creds.username);
    s.password = std::move(creds.password);
    s.client_name = cfg.client_name;
    s.database = cfg.database;
    s.fetch_command_table = prefixer && !prefixer->loaded();
    s.expect_role = cfg.expect_role;
    s.extras = &cfg.on_handshake;
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
  awaitable<void> reauth_loop() {
    asio::steady_timer t(executor);
    auto next = cfg.reauth_interval;
    for (;;) {
      if (cfg.reauth_interval.count() > 0)
        t.expires_after(next);
      else
        t.expires_at(clock::time_point::max());
      error_code ec;
      co_await t.async_wait(use_ec(ec));
      if (!socket.is_open()) co_return;
      const auto creds = co_await current_credentials();
      if (!socket.is_open()) co_return;
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
      if (!socket.is_open()) co_return;
      // Refused (a password not rotated on the server yet): again soon.
      next = reauth_ok_ ? cfg.reauth_interval : std::chrono::milliseconds(1000);
    }
  }

  void fail_session(error e, std::string_view why) {
    log->error("{}: {}: {}", target(), make_error_code(e).message(), why);
    session_error_ = e;
    error_code ignored;
    socket.close(ignored);
  }

  awaitable<void> writer() {
    for (;;) {
      while (unsent_.empty() && !mux.has_writable()) {
        writer_waiting_ = true;
        write_event.expires_at(clock::time_point::max());
        error_code ec;
        co_await write_event.async_wait(use_ec(ec));
        writer_waiting_ = false;
        if (!socket.is_open()) co_return;
      }
      if (unsent_.empty()) {
        unsent_ = mux.prepare_write();
        written();
      }
      error_code ec;
      co_await write_all(asio::buffer(unsent_.data(), unsent_.size()), ec);
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

  awaitable<void> reader() {
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
          co_await read_some(asio::buffer(read_buf.free_data(), read_buf.free_size()), ec);
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
        if (!socket.is_open()) {  // user code closed the connection
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
      while (push_target->paused() && socket.is_open()) {
        // Backpressure: nobody takes the pushes; stop reading until they do.
        push_space.expires_at(clock::time_point::max());
        error_code wait_ec;
        co_await push_space.async_wait(use_ec(wait_ec));
      }
    }
  }

  void fail_session_protocol(std::error_code ec) {
    log->error("{}: protocol error: {}", target(), ec.message());
    session_error_ = ec;
    error_code ignored;
    socket.close(ignored);
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
  awaitable<void> health_loop() {
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
      if (!socket.is_open()) co_return;
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

  struct ping_entry final : exec_entry {
    ping_entry()
        : exec_entry(req, proto::any_adapter(ignore_adapter), [](exec_entry&, error_code) {}) {
      req.push("PING");
      priority = true;
    }
    proto::request req;
    proto::response_adapter<proto::ignore_t> ignore_adapter{proto::ignore};
  };

  awaitable<void> timeout_loop() {
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

  // `no_address`: the attempt failed because the address provider said there is none.
  void end_session(error_code ec, bool no_address = false) {
    const bool was_connected = mux.ready();
    if (was_connected) meter_.disconnected();
    // Up for a while: the first reconnect goes at once (see connect_loop).
    last_session_healthy_ = was_connected && clock::now() - ready_at_ >= healthy_session;
    client_id_ = -1;
    subscribed_ = false;
    if (!recycled_) switching_ = false;  // a real loss, also of the spare's session
    lifetime_timer.cancel();
    mux.set_ready(false);
    protocol_ = 0;
    error_code ignored;
    socket.close(ignored);
    tls.reset();
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
    error_code ignored;
    socket.close(ignored);
    timeout_timer.cancel();
    retry_timer.cancel();
    mux.drain(failed_);
    complete_all(failed_, error::closed);
    if (push_receiver) complete_push(error::closed, {});
  }

  // Drops the current connection; async_run reconnects (connection::reconnect).
  void drop_connection() {
    if (!socket.is_open()) {
      // Between attempts, waiting out the backoff: the caller knows something changed (a
      // failover), so try again now.
      retry_timer.cancel();
      return;
    }
    log->warn("{}: dropping the connection on request", target());
    if (!session_error_) session_error_ = error::connection_lost;
    error_code ignored;
    socket.close(ignored);
  }

  void close() {
    closed_ = true;
    error_code ignored;
    socket.close(ignored);
    write_event.cancel();
    timeout_timer.cancel();
    health_timer.cancel();
    retry_timer.cancel();
    push_space.cancel();
    if (provider_wait_) provider_wait_->cancel();
    // Closed, not destroyed: lifetime_loop may be dialling it (it lets go of it itself).
    if (spare_) spare_->close(ignored);
    if (!running_) finish_run();
  }

  asio::any_io_executor executor;
  connection_config cfg;
  std::shared_ptr<spdlog::logger> log;
  endpoint dial_;                                // where this attempt goes (target())
  asio::steady_timer* provider_wait_ = nullptr;  // while waiting for a provider's answer
  socket_type socket;
  std::optional<asio::ssl::context> tls_context;       // when cfg.tls.enabled
  std::optional<asio::ssl::stream<socket_type&>> tls;  // per connection, over `socket`
  std::optional<key_prefixer> prefixer;                // when cfg.key_prefix is set
  asio::steady_timer write_event;
  asio::steady_timer timeout_timer;
  asio::steady_timer health_timer;
  asio::steady_timer retry_timer;
  asio::steady_timer push_space{executor};
  asio::steady_timer lifetime_timer{executor};
  std::optional<socket_type> spare_;  // dialled before the current connection is recycled
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
  std::optional<any_value_handler> push_receiver;  // async_receive_push's

  void complete_push(error_code ec, proto::value v) {
    auto h = std::move(*push_receiver);
    push_receiver.reset();
    complete_on(executor, initiating_, std::move(h), ec, std::move(v));
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

void* allocate_op(connection_impl& c, std::size_t size) {
  return c.pool.allocate(size);
}
void deallocate_op(connection_impl& c, void* p, std::size_t size) noexcept {
  c.pool.deallocate(p, size);
}
const asio::any_io_executor& executor_of(const connection_impl& c) noexcept {
  return c.executor;
}
void start_exec(connection_impl& c, exec_entry& e) {
  c.start(e);
}
void cancel_exec(connection_impl& c, exec_entry& e, asio::cancellation_type type) {
  c.cancel(e, type);
}
bool initiating(const connection_impl& c) noexcept {
  return c.initiating_;
}
connection_impl& impl_of(connection& c) noexcept {
  return *c.impl_;
}

}  // namespace detail

connection::connection(executor_type ex, connection_config cfg)
    : impl_(std::make_unique<detail::connection_impl>(std::move(ex), std::move(cfg))) {}

connection::~connection() {
  if (impl_) impl_->close();
}

connection::executor_type connection::get_executor() const noexcept {
  return impl_->executor;
}
const connection_config& connection::get_config() const noexcept {
  return impl_->cfg;
}
int connection::protocol() const noexcept {
  return impl_->protocol_;
}
bool connection::run_ended() const noexcept {
  return impl_->run_ended_;
}

bool connection::is_connected() const noexcept {
  return impl_->mux.ready();
}
void detail::set_push_sink(connection& c, push_sink* sink) noexcept {
  auto& impl = *c.impl_;
  impl.push_target = sink ? sink : &impl;
  impl.mux.set_push_sink(impl.push_target);
  impl.mux.set_resp2_pushes(sink != nullptr);
}
void detail::resume_reading(connection& c) noexcept {
  c.impl_->push_space.cancel();
}
std::optional<proto::value> connection::try_receive_push() {
  return detail::take_push(*impl_);
}
void connection::reconnect() {
  impl_->drop_connection();
}
std::chrono::steady_clock::duration connection::unanswered_for() const noexcept {
  const auto head = impl_->mux.head();
  if (!head) return {};
  return std::max(std::chrono::steady_clock::duration{},
                  detail::clock::now() - std::max(head->written_at, impl_->last_read_at_));
}
const std::string& connection::address() const noexcept {
  return impl_->node_;
}

connection_metrics connection::metrics() const {
  connection_metrics m = impl_->meter_.snapshot();
  m.bytes_read = impl_->bytes_read_;
  const auto st = impl_->mux.stats();
  m.queued = st.waiting;
  m.in_flight = st.in_flight;
  m.connected = impl_->mux.ready();
  return m;
}

std::size_t connection::pending_requests() const noexcept {
  const auto s = impl_->mux.stats();
  return s.waiting + s.in_flight;
}
void connection::close() {
  impl_->close();
}

void connection::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  auto& impl = *impl_;
  if (impl.running_ || impl.run_ended_ || impl.closed_) {
    // A connection runs once.
    const error_code ec =
        impl.running_ ? error_code(asio::error::already_started) : error_code(error::closed);
    asio::post(impl.executor, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
    return;
  }
  impl.running_ = true;
  auto slot = asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) {
    slot.assign([&impl](asio::cancellation_type) {
      impl.cancelled_ = true;
      impl.close();
    });
  }
  asio::co_spawn(impl.executor, impl.run(),
                 [&impl, h = std::move(handler)](std::exception_ptr e) mutable {
                   impl.running_ = false;
                   auto run_slot = asio::get_associated_cancellation_slot(h);
                   if (run_slot.is_connected()) run_slot.clear();
                   impl.finish_run();
                   if (e) std::rethrow_exception(e);
                   error_code ec = impl.final_error_;
                   if (impl.cancelled_)
                     ec = asio::error::operation_aborted;
                   else if (!ec)
                     ec = error::closed;
                   std::move(h)(ec);
                 });
}

namespace detail {

std::optional<proto::value> take_push(connection_impl& c) {
  if (c.pushes.empty()) return std::nullopt;
  const bool was_full = c.paused();
  proto::value v = std::move(c.pushes.front());
  c.pushes.pop_front();
  if (was_full) c.push_space.cancel();  // the reader waits for room
  return v;
}

void receive_push(connection_impl& c, any_value_handler handler) {
  // Not inside the initiating function: through the executor.
  if (auto queued = take_push(c)) {
    complete_on(c.executor, true, std::move(handler), error_code{}, std::move(*queued));
    return;
  }
  if (c.run_ended_ || c.closed_ || c.push_receiver) {
    const error_code ec =
        c.push_receiver ? error_code(asio::error::already_started) : error_code(error::closed);
    complete_on(c.executor, true, std::move(handler), ec, proto::value{});
    return;
  }
  c.push_receiver = std::move(handler);
}

}  // namespace detail

static_assert(executes_requests<connection>);

}  // namespace redcoro
