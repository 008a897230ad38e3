#include "connection_impl.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace redcoro {
namespace detail {

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
    error_code ec =
        c.push_receiver ? error_code(asio::error::already_started) : error_code(error::closed);
    complete_on(c.executor, true, std::move(handler), std::move(ec), proto::value{});
    return;
  }
  c.push_receiver = std::move(handler);
}

}  // namespace detail

static_assert(executes_requests<connection>);

}  // namespace redcoro
