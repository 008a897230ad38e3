#include <redcoro/client/client.hpp>
#include <redcoro/client/detail/op_pool.hpp>
#include <redcoro/client/executes_requests.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/connect/handle.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <map>
#include <system_error>

namespace redcoro {

static_assert(executes_requests<handle>);

std::string_view to_string(deployment d) noexcept {
  switch (d) {
    case deployment::single:
      return "single";
    case deployment::pooled:
      return "pooled";
    case deployment::cluster:
      return "cluster";
    case deployment::sentinel:
      return "sentinel";
  }
  return "unknown";
}

handle_config make_handle_config(std::string_view url, const connection_config& defaults) {
  auto parsed = parse_url(url, defaults);
  if (auto* c = std::get_if<cluster_url>(&parsed)) return make_cluster_config(*c);
  if (auto* s = std::get_if<sentinel_config>(&parsed)) return std::move(*s);
  return std::get<connection_config>(std::move(parsed));
}

namespace detail {

using asio::use_awaitable;
using clock = std::chrono::steady_clock;

struct scan_access {
  static cmd::scan_options& options(scan_cursor& c) { return c.options_; }
  static std::uint64_t& cursor(scan_cursor& c) { return c.cursor_; }
  static bool& done(scan_cursor& c) { return c.done_; }
  static std::optional<cluster_scan>& cluster(scan_cursor& c) { return c.cluster_; }
};

// What every engine behind a handle does; the rest (running, counting requests, closing
// when the last handle goes) is here once.
class handle_backend : public std::enable_shared_from_this<handle_backend> {
 public:
  handle_backend(asio::any_io_executor e, deployment k, const connection_config& node)
      : ex(std::move(e)),
        kind(k),
        log(node.logger ? node.logger : default_logger()),
        key_prefix(node.key_prefix) {}
  virtual ~handle_backend() = default;

  // For engines that are not one connection (conn == nullptr): runs it through the engine's
  // own async_exec, and cancels it there.
  virtual void exec(handle_entry& e) = 0;
  virtual void cancel(handle_entry& e, asio::cancellation_type type) = 0;
  virtual void run(asio::any_completion_handler<void(error_code)> h) = 0;
  virtual void close_engine() = 0;
  // A lent connection to the server that owns `routing`'s keys.
  virtual asio::awaitable<std::pair<error_code, lease>> acquire(proto::request routing) = 0;
  virtual asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan(scan_cursor& c) = 0;
  virtual asio::awaitable<void> health(health_report& r, std::chrono::milliseconds bound) = 0;
  virtual asio::awaitable<error_code> ready(std::chrono::milliseconds bound) = 0;
  virtual void* engine() noexcept = 0;

  void start() {
    run([keep = shared_from_this()](error_code ec) mutable {
      keep->run_result = ec;
      // Not destroyed inside the engine's own completion: later, from the executor.
      auto on = keep->ex;
      asio::post(on, [k = std::move(keep)] {});
    });
  }

  // The last handle went: close once what is in flight is answered.
  void release() {
    releasing = true;
    if (in_flight == 0) close();
  }
  void close() {
    if (closed) return;
    closed = true;
    close_engine();
  }

  asio::any_io_executor ex;
  // The connection requests go to, when the engine is one server's: entries are queued on it
  // directly.
  connection_impl* conn = nullptr;
  deployment kind;
  std::shared_ptr<spdlog::logger> log;
  std::string key_prefix;  // the connections' (their replies come back without it)
  op_pool ops;
  std::size_t in_flight = 0;
  bool releasing = false;
  bool closed = false;
  bool initiating = false;
  error_code run_result;
};

struct handle_owner {
  explicit handle_owner(std::shared_ptr<handle_backend> b) : backend(std::move(b)) {}
  handle_owner(const handle_owner&) = delete;
  handle_owner& operator=(const handle_owner&) = delete;
  ~handle_owner() { backend->release(); }
  std::shared_ptr<handle_backend> backend;
};

namespace {

// The completion of a handle's request on a cluster.
void from_cluster(cluster_exec& cx, error_code ec) {
  handle_entry& e = *static_cast<handle_cluster_entry&>(cx).owner;
  e.bytes_read = cx.bytes_read;
  handle_entry::from_engine(e, ec);
}

// Parses "field:value" lines of INFO and CLUSTER INFO.
std::string info_field(std::string_view text, std::string_view field) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > field.size() && line.substr(0, field.size()) == field &&
        line[field.size()] == ':')
      return std::string(line.substr(field.size() + 1));
    pos = end + 1;
  }
  return {};
}

// PING, ROLE, INFO server (and CLUSTER INFO) on one connection, bounded: fills `n` and
// returns the INFO/CLUSTER INFO texts.
struct probe_result {
  node_health node;
  std::string version;
  std::string cluster_state;
};

asio::awaitable<probe_result> probe(connection& conn, std::string address,
                                    std::chrono::milliseconds bound, bool cluster) {
  probe_result out;
  out.node.address = std::move(address);
  proto::request req(
      {.cancel_if_not_connected = false, .retry_if_unanswered = true, .timeout = bound});
  req.push("PING");
  req.push("ROLE");
  req.push("INFO", "server");
  if (cluster) req.push("CLUSTER", "INFO");
  proto::generic_response resp;
  error_code ec;
  const auto start = clock::now();
  co_await conn.async_exec(req, resp, asio::redirect_error(use_awaitable, ec));
  out.node.round_trip = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start);
  if (ec) {
    out.node.error = ec.message();
    co_return out;
  }
  if (resp.size() < 3 || !resp[0].has_value()) {
    out.node.error = resp.empty() || resp[0].has_value() ? "no reply" : resp[0].error().message;
    co_return out;
  }
  out.node.reachable = true;
  if (resp[1].has_value() && !resp[1]->elements.empty())
    out.node.role = resp[1]->elements.front().text;
  if (resp[2].has_value()) out.version = info_field(resp[2]->text, "redis_version");
  if (cluster && resp.size() > 3 && resp[3].has_value())
    out.cluster_state = info_field(resp[3]->text, "cluster_state");
  co_return out;
}

// Runs `each(i)` for i in [0, n) at once and waits for all of them.
template <class Each>
asio::awaitable<void> all_of(std::size_t n, Each each) {
  auto ex = co_await asio::this_coro::executor;
  struct latch {
    std::size_t left;
    asio::steady_timer timer;
  };
  auto l = std::make_shared<latch>(latch{n, asio::steady_timer(ex, clock::time_point::max())});
  for (std::size_t i = 0; i < n; ++i)
    asio::co_spawn(ex, each(i), [l](std::exception_ptr) {
      if (--l->left == 0) l->timer.cancel();
    });
  if (l->left > 0) {
    error_code ignored;
    co_await l->timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
}

// SCAN of one server, one page.
asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan_one(connection& conn,
                                                                          scan_cursor& c) {
  using out = std::pair<error_code, std::vector<std::string>>;
  if (scan_access::done(c)) co_return out{};
  error_code ec;
  auto page = co_await conn.async_exec(cmd::scan(scan_access::cursor(c), scan_access::options(c)),
                                       asio::redirect_error(use_awaitable, ec));
  if (ec) co_return out{ec, {}};
  if (page.has_error()) co_return out{error_code(proto::error::server_error), {}};
  auto& [next, keys] = page.value();
  scan_access::cursor(c) = next;
  if (next == 0) scan_access::done(c) = true;
  co_return out{error_code(), std::move(keys)};
}

asio::awaitable<error_code> ping(connection& conn, std::chrono::milliseconds bound) {
  proto::request req(
      {.cancel_if_not_connected = false, .retry_if_unanswered = true, .timeout = bound});
  req.push("PING");
  proto::generic_response resp;
  error_code ec;
  co_await conn.async_exec(req, resp, asio::redirect_error(use_awaitable, ec));
  if (!ec && (resp.empty() || !resp[0].has_value())) ec = proto::error::server_error;
  co_return ec;
}

// One server: a connection, a client (shared connection plus pool), or a Sentinel-managed
// client (a client that asks the sentinels where the server is).
template <class Engine>
constexpr deployment kind_of() {
  if constexpr (std::is_same_v<Engine, connection>)
    return deployment::single;
  else if constexpr (std::is_same_v<Engine, client>)
    return deployment::pooled;
  else
    return deployment::sentinel;
}

template <class Engine>
class server_backend final : public handle_backend {
 public:
  template <class Config>
  server_backend(asio::any_io_executor e, Config cfg, const connection_config& node)
      : handle_backend(e, kind_of<Engine>(), node), engine_(e, std::move(cfg)) {
    conn = &impl_of(server());
  }

  void exec(handle_entry& e) override { start_exec(*conn, e); }
  void cancel(handle_entry& e, asio::cancellation_type type) override {
    cancel_exec(*conn, e, type);
  }
  void run(asio::any_completion_handler<void(error_code)> h) override {
    engine_.async_run(std::move(h));
  }
  void close_engine() override { engine_.close(); }

  asio::awaitable<std::pair<error_code, lease>> acquire(proto::request) override {
    error_code ec;
    if constexpr (std::is_same_v<Engine, connection>) {
      co_return std::pair{error_code(error::unsupported), lease{}};
    } else {
      auto l = co_await engine_.async_acquire(asio::redirect_error(use_awaitable, ec));
      co_return std::pair{ec, std::move(l)};
    }
  }

  asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan(scan_cursor& c) override {
    // The keys come without the prefix from the connection (strip_key_prefix).
    co_return co_await scan_one(server(), c);
  }

  asio::awaitable<void> health(health_report& r, std::chrono::milliseconds bound) override {
    auto p = co_await probe(server(), address(), bound, false);
    r.address = p.node.address;
    r.role = p.node.role;
    r.server_version = p.version;
    r.round_trip = p.node.round_trip;
    r.healthy = p.node.reachable;
    if (!r.healthy) r.reason = p.node.address + ": " + p.node.error;
    r.nodes.push_back(std::move(p.node));
  }

  asio::awaitable<error_code> ready(std::chrono::milliseconds bound) override {
    return ping(server(), bound);
  }

  void* engine() noexcept override { return &engine_; }

 private:
  // The shared multiplexed connection requests go to.
  connection& server() noexcept {
    if constexpr (std::is_same_v<Engine, connection>)
      return engine_;
    else if constexpr (std::is_same_v<Engine, client>)
      return engine_.next_layer();
    else
      return engine_.next_layer().next_layer();
  }
  // Where it is: the config's, or what the sentinels said last.
  std::string address() {
    if constexpr (std::is_same_v<Engine, sentinel_client>) {
      auto a = engine_.current_address();
      return a ? a->to_string() : std::string("(no address from the sentinels yet)");
    } else {
      const auto& cfg = server().get_config();
      return cfg.unix_socket.empty() ? endpoint{cfg.host, cfg.port}.to_string() : cfg.unix_socket;
    }
  }

  Engine engine_;
};

class cluster_backend final : public handle_backend {
 public:
  cluster_backend(asio::any_io_executor e, cluster_config cfg)
      : handle_backend(e, deployment::cluster, cfg.node),
        node_(cfg.node),
        engine_(e, std::move(cfg)) {}
  ~cluster_backend() override {
    for (auto& [a, p] : pools_)
      close_pool(*p);
  }

  void exec(handle_entry& e) override {
    // The cluster's own entry, started on the cluster itself. Started again (a script resent
    // after NOSCRIPT), it is the same entry, with the request of this attempt.
    if (!e.on_cluster) e.on_cluster.emplace(e, &from_cluster);
    auto& cx = *e.on_cluster;
    cx.req = e.req;
    cx.adapter = e.adapter;
    cx.bytes_read = 0;
    cx.cancelled = asio::cancellation_type::none;
    // The cluster may complete it at once (closed, refused): the operation layer then posts
    // the completion instead of calling the handler inside async_exec.
    const bool outer = initiating;
    initiating = true;
    start_exec(impl_of(engine_), cx);
    initiating = outer;
  }
  void cancel(handle_entry& e, asio::cancellation_type type) override {
    if (e.on_cluster) cancel_exec(impl_of(engine_), *e.on_cluster, type);
  }
  void run(asio::any_completion_handler<void(error_code)> h) override {
    engine_.async_run(std::move(h));
  }
  void close_engine() override {
    engine_.close();
    for (auto& [a, p] : pools_)
      close_pool(*p);
  }

  asio::awaitable<std::pair<error_code, lease>> acquire(proto::request routing) override {
    using out = std::pair<error_code, lease>;
    error_code ec;
    co_await engine_.async_wait_topology(std::chrono::milliseconds(-1),
                                         asio::redirect_error(use_awaitable, ec));
    if (ec) co_return out{ec, lease{}};
    auto owner = engine_.primary_for(routing);
    if (!owner) co_return out{error_code(error::cross_slot), lease{}};
    auto& p = pools_[*owner];
    if (!p) {
      connection_config c = node_;
      c.host = owner->host;
      c.port = owner->port;
      c.unix_socket.clear();
      p = make_pool(ex, std::move(c), node_.pool_size);
    }
    co_return co_await acquire_from(p);
  }

  asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan(scan_cursor& c) override {
    auto& s = scan_access::cluster(c);
    if (!s) s.emplace(scan_access::options(c));
    error_code ec;
    auto keys = co_await engine_.async_scan(*s, asio::redirect_error(use_awaitable, ec));
    if (s->done()) scan_access::done(c) = true;
    co_return std::pair{ec, std::move(keys)};
  }

  asio::awaitable<void> health(health_report& r, std::chrono::milliseconds bound) override {
    error_code ec;
    co_await engine_.async_wait_topology(bound, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      r.reason = "no topology: " + ec.message();
      co_return;
    }
    const auto topo = engine_.current_topology();  // a copy: it may change while we wait
    r.all_slots_covered = topo.covers_all_slots();
    std::vector<probe_result> found(topo.nodes().size());
    co_await all_of(found.size(), [&](std::size_t i) -> asio::awaitable<void> {
      const auto& a = topo.nodes()[i].address;
      found[i] = co_await probe(engine_.node(a), a.to_string(), bound, true);
    });
    std::string down;
    for (std::size_t i = 0; i < found.size(); ++i) {
      auto& p = found[i];
      const bool primary = topo.nodes()[i].role == node_role::primary;
      if (primary && r.address.empty() && p.node.reachable) {
        r.address = p.node.address;
        r.role = p.node.role;
        r.server_version = p.version;
        r.round_trip = p.node.round_trip;
        r.cluster_state = p.cluster_state;
      }
      if (!p.node.reachable) down += (down.empty() ? "" : ", ") + p.node.address;
      r.nodes.push_back(std::move(p.node));
    }
    if (!down.empty())
      r.reason = "unreachable: " + down;
    else if (r.cluster_state != "ok")
      r.reason = "cluster_state is " + (r.cluster_state.empty() ? "unknown" : r.cluster_state);
    else if (!r.all_slots_covered)
      r.reason = "slots without an owner";
    r.healthy = r.reason.empty();
  }

  asio::awaitable<error_code> ready(std::chrono::milliseconds bound) override {
    error_code ec;
    co_await engine_.async_wait_topology(bound, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return ec;
    const auto primaries = engine_.primaries();
    if (primaries.empty()) co_return error_code(error::no_seed_reachable);
    co_return co_await ping(engine_.node(primaries.front()), bound);
  }

  void* engine() noexcept override { return &engine_; }

 private:
  connection_config node_;  // a dedicated connection's settings, with the owner's address
  cluster_client engine_;
  std::map<node_address, std::shared_ptr<pool_state>> pools_;
};

std::shared_ptr<handle_backend> make_backend(asio::any_io_executor ex, handle_config cfg) {
  auto refuse = [](const char* why) {
    throw std::system_error(make_error_code(error::invalid_config), why);
  };
  if (auto* c = std::get_if<connection_config>(&cfg)) {
    const connection_config node = *c;
    if (c->pool_size == 0)
      return std::make_shared<server_backend<connection>>(ex, std::move(*c), node);
    return std::make_shared<server_backend<client>>(ex, std::move(*c), node);
  }
  if (auto* c = std::get_if<cluster_config>(&cfg)) {
    if (c->node.database != 0)
      refuse(
          "a cluster has only database 0: set database to 0, or use key prefixes to keep "
          "services apart");
    if (c->seeds.empty()) refuse("a cluster needs at least one seed node");
    return std::make_shared<cluster_backend>(ex, std::move(*c));
  }
  auto& s = std::get<sentinel_config>(cfg);
  if (s.primary_name.empty()) refuse("a Sentinel deployment needs the primary's name");
  if (s.sentinels.empty()) refuse("a Sentinel deployment needs at least one sentinel");
  const connection_config node = s.node;
  return std::make_shared<server_backend<sentinel_client>>(ex, std::move(s), node);
}

}  // namespace

void* allocate_op(handle_backend& b, std::size_t size) {
  return b.ops.allocate(size);
}
void deallocate_op(handle_backend& b, void* p, std::size_t size) noexcept {
  b.ops.deallocate(p, size);
}
const asio::any_io_executor& executor_of(const handle_backend& b) noexcept {
  return b.ex;
}
bool initiating(const handle_backend& b) noexcept {
  return b.initiating || (b.conn && initiating(*b.conn));
}
void start_exec(handle_backend& b, handle_entry& e) {
  if (b.closed) {
    b.initiating = true;
    e.done(e, error::closed);
    b.initiating = false;
    return;
  }
  ++b.in_flight;
  e.backend = &b;
  if (b.conn)
    start_exec(*b.conn, e);
  else
    b.exec(e);
}
void cancel_exec(handle_backend& b, handle_entry& e, asio::cancellation_type type) {
  if (b.conn)
    cancel_exec(*b.conn, e, type);
  else
    b.cancel(e, type);
}

void handle_entry::from_engine(exec_entry& base, error_code ec) {
  auto& e = static_cast<handle_entry&>(base);
  handle_backend& b = *e.backend;
  --b.in_flight;
  e.done(e, ec);  // may free e, or start it again (a script resent after NOSCRIPT)
  if (b.releasing && b.in_flight == 0) b.close();
}

asio::awaitable<std::pair<error_code, lease>> acquire_for(std::shared_ptr<handle_backend> b,
                                                          proto::request routing) {
  if (b->closed) co_return std::pair{error_code(error::closed), lease{}};
  co_return co_await b->acquire(std::move(routing));
}

asio::awaitable<std::pair<error_code, health_report>> health_of(std::shared_ptr<handle_backend> b,
                                                                std::chrono::milliseconds bound) {
  health_report r;
  r.kind = b->kind;
  if (b->closed) co_return std::pair{error_code(error::closed), std::move(r)};
  co_await b->health(r, bound);
  co_return std::pair{error_code(), std::move(r)};
}

asio::awaitable<std::pair<error_code, bool>> wait_ready(std::shared_ptr<handle_backend> b,
                                                        std::chrono::milliseconds bound) {
  if (b->closed) co_return std::pair{error_code(error::closed), false};
  const error_code ec = co_await b->ready(bound);
  co_return std::pair{ec, !ec};
}

asio::awaitable<std::pair<error_code, std::vector<std::string>>> scan_step(
    std::shared_ptr<handle_backend> b, scan_cursor& cursor) {
  if (b->closed) co_return std::pair{error_code(error::closed), std::vector<std::string>{}};
  co_return co_await b->scan(cursor);
}

const std::shared_ptr<spdlog::logger>& logger_of(const handle_backend& b) noexcept {
  return b.log;
}

}  // namespace detail

handle::handle(executor_type ex, handle_config cfg) {
  auto b = detail::make_backend(std::move(ex), std::move(cfg));
  backend_ = b.get();
  b->start();
  owner_ = std::make_shared<detail::handle_owner>(std::move(b));
}

handle::handle(executor_type ex, std::string_view url, const connection_config& defaults)
    : handle(std::move(ex), make_handle_config(url, defaults)) {}

handle::executor_type handle::get_executor() const noexcept {
  return backend_->ex;
}
deployment handle::kind() const noexcept {
  return backend_->kind;
}
void handle::close() {
  backend_->close();
}
std::size_t handle::in_flight() const noexcept {
  return backend_->in_flight;
}
std::string_view handle::key_prefix() const noexcept {
  return backend_->key_prefix;
}
std::shared_ptr<detail::handle_backend> handle::shared_backend() const {
  return owner_->backend;
}
connection_metrics deployment_metrics::total() const {
  connection_metrics sum;
  for (const auto& n : nodes)
    sum.merge(n.metrics);
  return sum;
}

namespace {

void add_client(client& c, deployment_metrics& out) {
  const std::string node = c.next_layer().address();
  client_metrics m = c.metrics();
  out.pool_open = m.pool_open;
  out.pool_leased = m.pool_leased;
  out.pool_waiting = m.pool_waiting;
  out.nodes.push_back({node, "shared", std::move(m.shared)});
  if (m.pool_open > 0 || m.pool.requests > 0)
    out.nodes.push_back({node, "pool", std::move(m.pool)});
}

}  // namespace

deployment_metrics handle::metrics() const {
  deployment_metrics d;
  d.kind = kind();
  if (auto* c = as_connection()) {
    d.nodes.push_back({c->address(), "shared", c->metrics()});
  } else if (auto* cl = as_client()) {
    add_client(*cl, d);
  } else if (auto* s = as_sentinel()) {
    add_client(s->next_layer(), d);  // where the sentinels' primary (or replica) is
  } else if (auto* k = as_cluster()) {
    cluster_metrics m = k->metrics();
    d.nodes = std::move(m.nodes);
    d.moved = m.counters.moved;
    d.ask = m.counters.ask;
    d.retries = m.counters.retries;
    d.refreshes = m.counters.refreshes;
    d.slots_covered = m.slots_covered;
  }
  return d;
}

client* handle::as_client() const noexcept {
  return kind() == deployment::pooled ? static_cast<client*>(backend_->engine()) : nullptr;
}
connection* handle::as_connection() const noexcept {
  return kind() == deployment::single ? static_cast<connection*>(backend_->engine()) : nullptr;
}
cluster_client* handle::as_cluster() const noexcept {
  return kind() == deployment::cluster ? static_cast<cluster_client*>(backend_->engine()) : nullptr;
}

sentinel_client* handle::as_sentinel() const noexcept {
  return kind() == deployment::sentinel ? static_cast<sentinel_client*>(backend_->engine())
                                        : nullptr;
}

}  // namespace redcoro
