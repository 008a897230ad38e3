#include "cluster_impl.hpp"

namespace redcoro {
namespace detail {
namespace {

using detail::any_slot;
using detail::merge;

// Feeds a whole value to `a` as reply number `index`, as if it had just been read.
void replay(const proto::value& v, std::size_t index, const proto::any_adapter& a) {
  proto::for_each_node(v, [&](const proto::node& n) { a.on_node(index, n); });
}

proto::value value_of(proto::result<proto::value>& r) {
  if (r.has_error())
    return proto::value(proto::type::simple_error, std::move(r.error_storage().message));
  return std::move(r).value();
}

}  // namespace

// One part of a request on its way: where it goes, what came back.
struct cluster_impl::job {
  job(detail::part& p, const redirect_machine::policy& policy)
      : what(&p), machine(policy, p.readonly) {}
  detail::part* what;
  std::optional<node_address> pinned;  // fan-out: this primary
  redirect_machine machine;
  redirect_machine::action next;  // what the machine said after the last attempt
  bool done = false;
  bool launched = false;
  proto::request asking;  // ASKING and the part, after an ASK
  proto::generic_response replies;
  node_address sent_to;
  error_code ec;
  asio::cancellation_signal signal;  // the caller's cancellation, to this part's operation
};

namespace {

using job = cluster_impl::job;

// What cancelling a request on the slow path reaches: each part's operation, and the wait
// between rounds.
struct slow_state {
  std::deque<job>* jobs = nullptr;
  asio::steady_timer* timer = nullptr;
  void cancel(asio::cancellation_type type) {
    for (job& j : *jobs)
      j.signal.emit(type);
    if (timer) timer->cancel();
  }
};

}  // namespace

void cluster_impl::cancel(cluster_exec& op, asio::cancellation_type type) {
  op.cancelled = type;
  // (The connection completes a cancelled entry later, never inside this call.)
  if (op.fast) cancel_exec(impl_of(*op.fast->conn), *op.fast, type);
  if (op.slow) static_cast<slow_state*>(op.slow)->cancel(type);
  wake_all();
}

awaitable<void> cluster_impl::run_slow(cluster_exec& op) {
  error_code ec;
  try {
    ec = co_await routed(op);
  } catch (...) {
    // Whatever went wrong, the caller hears of it instead of waiting forever.
    ec = make_error_code(std::errc::not_enough_memory);
  }
  op.complete(op, ec);
}

awaitable<error_code> cluster_impl::wait_ready(clock::time_point deadline, const cluster_exec* op) {
  while (!ready()) {
    if (closed) co_return error_code(error::closed);
    if (op && op->cancelled != asio::cancellation_type::none)
      co_return error_code(asio::error::operation_aborted);
    if (clock::now() >= deadline) co_return error_code(error::timeout);
    co_await wait_change(deadline);
  }
  co_return error_code();
}

awaitable<std::pair<error_code, std::vector<std::string>>> cluster_impl::scan_step(
    cluster_scan& s) {
  using out = std::pair<error_code, std::vector<std::string>>;
  const auto deadline = deadline_for(std::chrono::milliseconds(-1), cfg.node.request_timeout);
  if (error_code ec = co_await wait_ready(deadline)) co_return out{ec, {}};
  if (!s.started_) {
    s.nodes_ = topo.primaries();
    s.started_ = true;
  }
  if (s.done()) co_return out{};
  cmd::scan_options o;
  o.match = s.match_;
  o.type = s.type_;
  o.count = s.count_;
  error_code ec;
  auto page = co_await node(s.nodes_[s.next_node_])
                  .async_exec(cmd::scan(s.cursor_, o), asio::redirect_error(use_awaitable, ec));
  if (ec) co_return out{ec, {}};
  if (page.has_error()) co_return out{error_code(proto::error::server_error), {}};
  auto& [next, keys] = page.value();
  s.cursor_ = next;
  if (next == 0) ++s.next_node_;
  co_return out{error_code(), std::move(keys)};
}

attempt_result cluster_impl::outcome(job& j) const {
  attempt_result r;
  if (unsent(j.ec)) {
    r.what = attempt_result::kind::not_sent;
  } else if (j.ec == error::connection_lost) {
    r.what = attempt_result::kind::lost;
    r.ec = j.ec;
  } else if (j.ec) {
    r.what = attempt_result::kind::failed;
    r.ec = j.ec;
  } else {
    for (const auto& reply : j.replies) {
      if (reply.has_error() && (r.r = redirect::parse(reply.error().message, j.sent_to))) {
        r.what = attempt_result::kind::redirected;
        break;
      }
    }
  }
  return r;
}

awaitable<error_code> cluster_impl::routed(cluster_exec& op) {
  const auto deadline = deadline_for(op.req->get_config().timeout, cfg.node.request_timeout);
  const std::size_t total = op.req->commands();
  const std::vector<std::size_t> only = std::move(op.held_back);
  if (only.empty() && op.adapter.replies() != proto::any_reply_count &&
      op.adapter.replies() < total)
    co_return error_code(error::response_too_short);
  if (error_code ec = co_await wait_ready(deadline, &op)) co_return ec;
  detail::plan plan = router.make_plan(*op.req);
  std::deque<job> jobs;  // (each holds a signal, which does not move)
  slow_state state{&jobs};
  op.slow = &state;
  struct forget {
    cluster_exec& op;
    ~forget() { op.slow = nullptr; }
  } on_exit{op};
  if (error_code ec = make_jobs(op, plan, only, jobs)) co_return ec;
  const auto aborted = [&op] { return op.cancelled != asio::cancellation_type::none; };

  asio::steady_timer all_back(ex);
  std::size_t pending = 0;
  for (;;) {
    // The parts still owed go out together, after the longest wait any of them asked for.
    if (const auto delay = longest_delay(jobs); delay.count() > 0 && !aborted()) {
      asio::steady_timer t(ex, std::min(clock::now() + delay, deadline));
      state.timer = &t;
      error_code ignored;
      co_await t.async_wait(asio::redirect_error(use_awaitable, ignored));
      state.timer = nullptr;
    }
    if (aborted()) co_return error_code(asio::error::operation_aborted);
    if (closed) co_return error_code(error::closed);
    if (clock::now() >= deadline) co_return error_code(error::timeout);
    for (job& j : jobs) {
      j.launched = false;
      if (j.done) continue;
      const auto to = prepare(j, op, deadline);
      if (!to.conn) continue;
      j.launched = true;
      ++pending;
      to.conn->async_exec(
          *to.req, j.replies,
          asio::bind_cancellation_slot(
              j.signal.slot(), [&op, &pending, &all_back, jp = &j](error_code e, std::size_t n) {
                jp->ec = e;
                op.bytes_read += n;
                if (--pending == 0) all_back.cancel();
              }));
    }
    while (pending > 0) {
      all_back.expires_at(clock::time_point::max());
      error_code ignored;
      co_await all_back.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
    if (!retired.empty()) close_drained();
    for (job& j : jobs)
      if (j.launched)
        if (error_code ec = settle(j)) co_return ec;
    if (std::all_of(jobs.begin(), jobs.end(), [](const job& j) { return j.done; })) break;
  }
  deliver(op, jobs, plan, total, only);
  co_return error_code();
}

bool cluster_impl::wanted(const std::vector<std::size_t>& only, std::size_t i) {
  return only.empty() || std::find(only.begin(), only.end(), i) != only.end();
}

error_code cluster_impl::make_jobs(const cluster_exec& op, detail::plan& plan,
                                   const std::vector<std::size_t>& only, std::deque<job>& jobs) {
  const redirect_machine::policy policy{cfg.max_redirects, cfg.retry_delay};
  for (auto& p : plan.parts) {
    if (!wanted(only, p.first)) continue;
    if (!p.every_primary) {
      jobs.emplace_back(p, policy);
      continue;
    }
    for (const auto& sh : topo.shards())
      jobs.emplace_back(p, policy).pinned = topo.nodes()[sh.primary].address;
  }
  if (jobs.size() > 1) ++stats.split;
  if (!op.redirected && !op.lost) return {};
  attempt_result first;
  first.what = op.redirected ? attempt_result::kind::redirected : attempt_result::kind::lost;
  first.r = op.redirected;
  first.ec = op.lost;
  for (job& j : jobs) {
    j.next = apply(j.machine.next(first));
    if (j.next.what == redirect_machine::step::fail) return j.next.ec;
  }
  return {};
}

std::chrono::milliseconds cluster_impl::longest_delay(const std::deque<job>& jobs) {
  std::chrono::milliseconds delay{0};
  for (const job& j : jobs)
    if (!j.done) delay = std::max(delay, j.next.delay);
  return delay;
}

cluster_impl::destination cluster_impl::prepare(job& j, const cluster_exec& op,
                                                clock::time_point deadline) {
  destination to;
  if (j.next.to || j.pinned) {
    j.sent_to = j.next.to ? *j.next.to : *j.pinned;
    to.conn = &node(j.sent_to);
  } else if (const std::size_t i = pick(j.what->slot, j.what->readonly); i != no_node) {
    j.sent_to = topo.nodes()[i].address;
    to.conn = &conn_at(i);
  } else {
    attempt_result none;
    none.what = attempt_result::kind::no_node;
    j.next = apply(j.machine.next(none));
    return to;
  }
  // The part goes as it is; after ASK, behind ASKING, in a request of the job's own.
  to.req = j.next.asking ? &j.asking : &j.what->req;
  if (j.next.asking) {
    j.asking.clear();
    j.asking.push("ASKING");
    j.asking.append(j.what->req);
  }
  auto& sent_cfg = to.req->get_config();
  sent_cfg = op.req->get_config();
  sent_cfg.cancel_if_not_connected = true;
  if (deadline != clock::time_point::max())
    sent_cfg.timeout =
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
  j.replies.clear();
  return to;
}

error_code cluster_impl::settle(job& j) {
  if (j.next.asking && !j.ec && !j.replies.empty())
    j.replies.erase(j.replies.begin());  // ASKING's +OK
  j.next = apply(j.machine.next(outcome(j)));
  switch (j.next.what) {
    case redirect_machine::step::send:
      break;
    case redirect_machine::step::done:
      j.done = true;
      break;
    case redirect_machine::step::fail:
      return j.next.ec;
    case redirect_machine::step::give_up:
      for (auto& reply : j.replies) {
        if (reply.has_error() && redirect::parse(reply.error().message, j.sent_to)) {
          std::string& message = reply.error_storage().message;
          message = redirect_machine::too_many_redirects(cfg.max_redirects, message);
          break;
        }
      }
      j.done = true;
      break;
  }
  return {};
}

void cluster_impl::deliver(cluster_exec& op, std::deque<job>& jobs, const detail::plan& plan,
                           std::size_t total, const std::vector<std::size_t>& only) {
  reply_merge merged(total, plan.commands);
  for (job& j : jobs) {
    std::vector<proto::value> values;
    values.reserve(j.replies.size());
    for (auto& r : j.replies)
      values.push_back(value_of(r));
    merged.add(*j.what, std::move(values));
  }
  if (only.empty()) op.adapter.prepare(total);
  for (std::size_t i = 0; i < total; ++i)
    if (wanted(only, i) && merged.reply(i)) replay(*merged.reply(i), i, op.adapter);
}

void* allocate_op(cluster_impl& c, std::size_t size) {
  return c.pool.allocate(size);
}
void deallocate_op(cluster_impl& c, void* p, std::size_t size) noexcept {
  c.pool.deallocate(p, size);
}
const asio::any_io_executor& executor_of(const cluster_impl& c) noexcept {
  return c.ex;
}
bool initiating(const cluster_impl& c) noexcept {
  return c.initiating_;
}
void start_exec(cluster_impl& c, cluster_exec& e) {
  c.start(e);
}
void cancel_exec(cluster_impl& c, cluster_exec& e, asio::cancellation_type type) {
  c.cancel(e, type);
}
cluster_impl& impl_of(cluster_client& c) noexcept {
  return *c.impl_;
}

cluster_node_exec::cluster_node_exec(cluster_impl& c, cluster_exec& o, connection& to) noexcept
    : exec_entry(*o.req, proto::any_adapter(*this), &cluster_impl::fast_entry_done),
      impl(&c),
      op(&o),
      conn(&to) {}

void cluster_node_exec::on_node(std::size_t index, const proto::node& n) {
  if (n.depth == 0 && !n.in_attribute && n.data_type == proto::type::simple_error) {
    if (auto r = redirect::parse(n.value)) {
      op->held_back.push_back(index);
      // The slow path's machine takes it from here (MOVED recorded, ASK followed...).
      if (!op->redirected) op->redirected = r;
      return;
    }
  }
  op->adapter.on_node(index, n);
}
void cluster_node_exec::prepare(std::size_t replies) const {
  op->adapter.prepare(replies);
}
std::size_t cluster_node_exec::replies() const noexcept {
  return op->adapter.replies();
}
std::error_code cluster_node_exec::error() const {
  return op->adapter.error();
}

}  // namespace detail

cluster_client::cluster_client(executor_type ex, cluster_config cfg)
    : impl_(std::make_unique<detail::cluster_impl>(std::move(ex), std::move(cfg))) {}

cluster_client::~cluster_client() {
  // As the connection's: a client destroyed without close() still stops its node connections.
  if (impl_) close();
}

cluster_config make_cluster_config(const cluster_url& url) {
  cluster_config c;
  for (const auto& e : url.seeds)
    c.seeds.push_back(node_address{e.host, e.port});
  c.node = url.node;
  if (url.reads) c.reads = static_cast<read_from>(*url.reads);
  if (url.max_redirects) c.max_redirects = *url.max_redirects;
  if (url.refresh_interval) c.refresh_interval = *url.refresh_interval;
  return c;
}
static_assert(static_cast<int>(cluster_url::read_from::any) == static_cast<int>(read_from::any));

cluster_client::executor_type cluster_client::get_executor() const noexcept {
  return impl_->ex;
}

void cluster_client::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  detail::start_run_once(c.ex, c.run_started, c.run(), std::move(handler));
}

void cluster_client::scan_impl(
    cluster_scan& scan,
    asio::any_completion_handler<void(error_code, std::vector<std::string>)> handler) {
  asio::co_spawn(
      impl_->ex, impl_->scan_step(scan),
      [h = std::move(handler)](std::exception_ptr e,
                               std::pair<error_code, std::vector<std::string>> r) mutable {
        if (e) r.first = make_error_code(std::errc::not_enough_memory);
        std::move(h)(r.first, std::move(r.second));
      });
}

const cluster_config& cluster_client::get_config() const noexcept {
  return impl_->cfg;
}

void cluster_client::close() {
  auto& c = *impl_;
  if (c.closed) return;
  c.closed = true;
  c.refresh_timer.cancel();
  for (auto& [a, e] : c.nodes)
    e->conn->close();
  c.wake_all();
}

void cluster_client::refresh() {
  impl_->request_refresh();
}

const cluster_topology& cluster_client::current_topology() const noexcept {
  return impl_->topo;
}

connection& cluster_client::node(const node_address& address) {
  connection& conn = impl_->node(address);
  impl_->nodes.find(address)->second->pinned = true;
  return conn;
}

std::vector<node_address> cluster_client::primaries() const {
  return impl_->topo.primaries();
}

std::optional<node_address> cluster_client::primary_for(const proto::request& req) {
  auto& c = *impl_;
  if (!c.ready()) return std::nullopt;
  const auto r = c.router.single(req);
  if (!r) return std::nullopt;
  if (r->slot == detail::any_slot) {
    auto all = c.topo.primaries();
    if (all.empty()) return std::nullopt;
    return all.front();
  }
  const auto shard = c.topo.shard_of(static_cast<std::uint16_t>(r->slot));
  if (shard == cluster_topology::no_shard) return std::nullopt;
  return c.topo.nodes()[c.topo.shards()[shard].primary].address;
}

void cluster_client::on_topology_change(std::function<void()> callback) {
  impl_->on_change = std::move(callback);
}

void cluster_client::wait_topology_impl(std::chrono::milliseconds timeout,
                                        asio::any_completion_handler<void(error_code)> handler) {
  auto& c = *impl_;
  detail::spawn_to_handler(c.ex,
                           c.wait_ready(detail::deadline_for(timeout, c.cfg.node.request_timeout)),
                           std::move(handler));
}

bool cluster_client::has_topology() const noexcept {
  return impl_->ready();
}

const cluster_stats& cluster_client::stats() const noexcept {
  return impl_->stats;
}

cluster_metrics cluster_client::metrics() const {
  cluster_metrics m;
  m.counters = impl_->stats;
  const auto primaries = impl_->topo.primaries();
  for (const auto& [address, entry] : impl_->nodes) {
    const bool primary = std::find(primaries.begin(), primaries.end(), address) != primaries.end();
    m.nodes.push_back(
        {entry->conn->address(), primary ? "primary" : "replica", entry->conn->metrics()});
  }
  for (std::uint32_t slot = 0; slot < proto::slot_count; ++slot)
    m.slots_covered +=
        impl_->topo.shard_of(static_cast<std::uint16_t>(slot)) != cluster_topology::no_shard;
  return m;
}

static_assert(executes_requests<cluster_client>);

}  // namespace redcoro
