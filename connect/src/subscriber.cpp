#include <redcoro/client/client.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>
#include <variant>

namespace redcoro {
namespace detail {

// The subscriber that matches the handle's deployment. Shared with its run's completion, so
// that it lives until the run has ended.
struct handle_subscriber_impl {
  std::variant<std::unique_ptr<subscriber>, std::unique_ptr<cluster_subscriber>> engine;

  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit([&](auto& e) -> decltype(auto) { return f(*e); }, engine);
  }
};

namespace {

// The settings of the handle's one server: the shared connection's, which a Sentinel-managed
// handle gives its address provider.
const connection_config& server_config(handle& h) {
  if (auto* c = h.as_connection()) return c->get_config();
  if (auto* c = h.as_client()) return c->next_layer().get_config();
  if (auto* s = h.as_sentinel()) return s->next_layer().next_layer().get_config();
  throw std::logic_error("redcoro::handle_subscriber: a handle of no known kind");
}

}  // namespace
}  // namespace detail

handle_subscriber::handle_subscriber(handle& redis, subscriber_config options)
    : impl_(std::make_shared<detail::handle_subscriber_impl>()) {
  auto ex = redis.get_executor();
  if (auto* cl = redis.as_cluster())
    impl_->engine = std::make_unique<cluster_subscriber>(ex, cl->get_config(), options);
  else
    impl_->engine = std::make_unique<subscriber>(ex, detail::server_config(redis), options);
  impl_->visit([&](auto& e) { e.async_run([keep = impl_](error_code) {}); });
}

handle_subscriber::~handle_subscriber() {
  close();
}

void handle_subscriber::close() {
  impl_->visit([](auto& e) { e.close(); });
}

asio::any_io_executor handle_subscriber::get_executor() const noexcept {
  return impl_->visit([](auto& e) { return e.get_executor(); });
}

subscriber_stats handle_subscriber::message_stats() const noexcept {
  return impl_->visit([](auto& e) { return e.message_stats(); });
}

std::shared_ptr<const subscriber_stats> shared_stats(const handle_subscriber& s) noexcept {
  return s.impl_->visit([](auto& e) { return shared_stats(e); });
}

void handle_subscriber::on_message(std::function<void(const pubsub_message&)> callback) {
  impl_->visit([&](auto& e) { e.on_message(std::move(callback)); });
}

void handle_subscriber::change_impl(change_kind what, std::vector<std::string> names,
                                    asio::any_completion_handler<void(error_code)> handler) {
  impl_->visit([&](auto& e) {
    switch (what) {
      case change_kind::subscribe:
        return e.async_subscribe(std::move(names), std::move(handler));
      case change_kind::psubscribe:
        return e.async_psubscribe(std::move(names), std::move(handler));
      case change_kind::ssubscribe:
        return e.async_ssubscribe(std::move(names), std::move(handler));
      case change_kind::punsubscribe:
        return e.async_punsubscribe(std::move(names), std::move(handler));
      case change_kind::sunsubscribe:
        return e.async_sunsubscribe(std::move(names), std::move(handler));
      case change_kind::unsubscribe:
        break;
    }
    return e.async_unsubscribe(std::move(names), std::move(handler));
  });
}

void handle_subscriber::receive(
    asio::any_completion_handler<void(error_code, pubsub_message)> handler) {
  impl_->visit([&](auto& e) { e.async_receive(std::move(handler)); });
}

}  // namespace redcoro
