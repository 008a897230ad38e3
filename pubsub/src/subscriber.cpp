#include <redcoro/client/detail/log.hpp>
#include <redcoro/proto/key_slot.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace redcoro {

namespace {

using clock_type = std::chrono::steady_clock;

auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// Appends the command of request kind `k` for `names`. Shard channels go one command per
// slot: a cluster node refuses a SSUBSCRIBE or SUNSUBSCRIBE whose channels span slots
// (CROSSSLOT), and a standalone server does not mind.
template <class Names>
void push_change(proto::request& r, proto::pubsub_kind k, const Names& names) {
  const std::string_view command = proto::pubsub_command_name(k);
  if (proto::pubsub_family(k) != 2 || names.size() < 2) {
    r.push(command, names);
    return;
  }
  std::map<std::uint16_t, std::vector<std::string_view>> by_slot;
  for (const auto& n : names)
    by_slot[proto::key_slot(n)].push_back(n);
  for (const auto& [slot, group] : by_slot)
    r.push(command, group);
}

}  // namespace

namespace detail {

// The subscriber's state. The connection's reader hands it every push frame (push_sink),
// which it decodes straight into a pubsub_message (one copy out of the read buffer).
struct subscriber_impl final : push_sink {
  using kind = proto::pubsub_kind;

  subscriber_impl(asio::any_io_executor ex, connection_config cfg, subscriber_config opts);
  subscriber_impl(const subscriber_impl&) = delete;
  subscriber_impl& operator=(const subscriber_impl&) = delete;

  asio::any_io_executor get_executor() const noexcept { return conn_.get_executor(); }
  void run(asio::any_completion_handler<void(error_code)> handler);
  void change(kind k, std::vector<std::string> names, std::string* refusal,
              asio::any_completion_handler<void(error_code)> handler);
  void close();

  void on_push_node(const proto::node& n) override;
  void on_push_done() override;
  bool paused() const noexcept override { return queue_.paused(); }
  asio::awaitable<error_code> apply_change(kind k, std::vector<std::string> names,
                                           std::string* refusal);
  void log_refusal(std::string_view command, const std::string& message);
  void on_confirmation(pubsub_message& m);
  void resubscribe(proto::request& handshake);
  // (Un)subscribe calls waiting for confirmations look again.
  void wake_waiters();
  // async_run completes once the connection's run ended and no (un)subscribe call is left.
  void finish_run();

  // Channels, patterns or shard channels: what the user wants, what the current
  // connection has confirmed, and what it re-subscribed by itself and has not confirmed yet.
  struct family {
    std::set<std::string, std::less<>> wanted, confirmed, resubscribing;
  };

  connection conn_;
  family families_[3];  // channels, patterns, shard channels: proto::pubsub_family
  message_queue queue_;
  // The timers of the (un)subscribe calls waiting for confirmations: each has its own
  // deadline; wake_waiters() makes them all look again.
  std::vector<asio::steady_timer*> waiters_;
  std::optional<asio::any_completion_handler<void(error_code)>> run_handler_;
  error_code run_result_;
  std::size_t changes_ = 0;
  bool closed_ = false, connected_before_ = false, run_started_ = false;
  // The push frame being decoded.
  pubsub_message incoming_;
  std::size_t incoming_index_ = 0;
  bool incoming_known_ = false;
};

subscriber_impl::subscriber_impl(asio::any_io_executor ex, connection_config cfg,
                                 subscriber_config opts)
    : conn_(ex,
            [&] {
              // Every new connection subscribes again inside its handshake.
              cfg.on_handshake = [this](proto::request& r) { resubscribe(r); };
              return std::move(cfg);
            }()),
      queue_(ex, opts) {
  queue_.on_room = [this] { resume_reading(conn_); };
  set_push_sink(conn_, this);
}

void subscriber_impl::resubscribe(proto::request& r) {
  // The first connection has nothing to restore: the SUBSCRIBE requests of the calls made
  // so far are queued and go out right after the handshake.
  if (!connected_before_) {
    connected_before_ = true;
    return;
  }
  // A new connection holds nothing yet.
  for (int i = 0; i < 3; ++i) {
    family& f = families_[i];
    f.confirmed.clear();
    f.resubscribing = f.wanted;
    if (!f.wanted.empty()) push_change(r, proto::subscribe_kind(i), f.wanted);
  }
}

void subscriber_impl::run(asio::any_completion_handler<void(error_code)> handler) {
  if (run_started_) {
    asio::post(get_executor(), [h = std::move(handler)]() mutable {
      std::move(h)(error_code(asio::error::already_started));
    });
    return;
  }
  run_started_ = true;
  conn_.async_run([this, h = std::move(handler)](error_code ec) mutable {
    wake_waiters();
    queue_.end();
    run_handler_.emplace(std::move(h));
    run_result_ = ec;
    finish_run();
  });
}

void subscriber_impl::finish_run() {
  // The calls still running end first: once async_run has completed, the subscriber may be
  // destroyed.
  if (!run_handler_ || changes_ != 0) return;
  auto h = std::move(*run_handler_);
  run_handler_.reset();
  std::move(h)(run_result_);
}

void subscriber_impl::wake_waiters() {
  for (asio::steady_timer* t : waiters_)
    t->cancel();
}

void subscriber_impl::on_confirmation(pubsub_message& m) {
  family& f = families_[proto::pubsub_family(m.what)];
  if (!proto::is_unsubscribe(m.what)) {
    f.confirmed.insert(m.channel);
    m.resubscribed = f.resubscribing.erase(m.channel) > 0;
  } else {
    f.confirmed.erase(m.channel);
    // A shard channel still wanted (an unsubscribe call takes it out of `wanted` first):
    // the server dropped it by itself, because its slot moved to another node. It is not
    // held any more, and not asked for again on this node.
    if (m.what == proto::pubsub_kind::sunsubscribe && f.wanted.erase(m.channel) != 0)
      f.resubscribing.erase(m.channel);
  }
  wake_waiters();  // (un)subscribe calls waiting for this look again
}

void subscriber_impl::on_push_node(const proto::node& n) {
  using k = pubsub_message::kind;
  if (n.in_attribute) return;
  if (n.depth == 0) {
    incoming_index_ = 0;
    incoming_known_ = false;
    return;
  }
  if (n.depth != 1) return;
  const std::string_view text = n.value;
  switch (incoming_index_++) {
    case 0: {
      const auto found = proto::pubsub_kind_of_frame(text);
      incoming_known_ = found.has_value();  // else tracking, say
      if (incoming_known_) {
        incoming_.what = *found;
        incoming_.pattern.clear();
        incoming_.payload.clear();
        incoming_.count = 0;
        incoming_.resubscribed = false;
      }
      break;
    }
    case 1:
      (incoming_.what == k::pmessage ? incoming_.pattern : incoming_.channel).assign(text);
      break;
    case 2:
      if (incoming_.what == k::pmessage) {
        incoming_.channel.assign(text);
      } else if (incoming_.is_message()) {
        incoming_.payload.assign(text);
      } else {
        std::int64_t count = 0;
        std::from_chars(text.data(), text.data() + text.size(), count);
        incoming_.count = count;
      }
      break;
    case 3:
      if (incoming_.what == k::pmessage) incoming_.payload.assign(text);
      break;
    default:
      break;
  }
}

void subscriber_impl::on_push_done() {
  if (!incoming_known_) return;
  pubsub_message m = std::move(incoming_);
  incoming_ = {};
  if (!m.is_message()) on_confirmation(m);
  if (!queue_.offer(std::move(m))) conn_.reconnect();
}

void subscriber_impl::change(kind k, std::vector<std::string> list, std::string* refusal,
                             asio::any_completion_handler<void(error_code)> handler) {
  if (refusal) refusal->clear();
  const bool adding = !proto::is_unsubscribe(k);
  // A bare SUBSCRIBE is an error reply the connection would take for the next request's.
  if (adding && list.empty()) {
    asio::post(get_executor(), [h = std::move(handler)]() mutable {
      std::move(h)(error_code(asio::error::invalid_argument));
    });
    return;
  }
  // What is wanted changes at once: channels() shows it, and a reconnect from now on
  // subscribes to it.
  auto& want = families_[proto::pubsub_family(k)].wanted;
  if (adding) {
    want.insert(list.begin(), list.end());
  } else if (list.empty()) {
    want.clear();
  } else {
    for (const auto& n : list)
      want.erase(n);
  }
  ++changes_;
  asio::co_spawn(get_executor(), apply_change(k, std::move(list), refusal),
                 [this, h = std::move(handler)](std::exception_ptr e, error_code ec) mutable {
                   if (e) ec = asio::error::operation_aborted;
                   // The call's handler first: the subscriber lives until async_run has
                   // completed, which finish_run() may let happen.
                   --changes_;
                   std::move(h)(ec);
                   finish_run();
                 });
}

asio::awaitable<error_code> subscriber_impl::apply_change(kind k, std::vector<std::string> list,
                                                          std::string* refusal) {
  const bool adding = !proto::is_unsubscribe(k);
  family& f = families_[proto::pubsub_family(k)];
  auto& want = f.wanted;
  auto& on = f.confirmed;
  proto::request req;
  push_change(req, k, list);
  // It completes with the confirmations, or with the error reply that refused the command.
  proto::generic_response reply;
  error_code ec;
  co_await conn_.async_exec(req, reply, use_ec(ec));
  // A connection lost meanwhile: the next one's handshake subscribes to what is wanted.
  if (ec && ec != error::connection_lost) co_return ec;
  const auto refused =
      std::find_if(reply.begin(), reply.end(), [](const auto& r) { return r.has_error(); });
  if (!ec && refused != reply.end()) {
    // NOPERM, or MOVED for shard channels: not subscribed, and not to be subscribed again on
    // the next connection either.
    if (adding)
      for (const auto& n : list)
        if (!on.count(n)) want.erase(n);
    log_refusal(proto::pubsub_command_name(k), refused->error().message);
    if (refusal) *refusal = refused->error().message;
    co_return error_code(proto::error::server_error);
  }
  const auto deadline =
      deadline_for(std::chrono::milliseconds(-1), conn_.get_config().request_timeout);
  for (;;) {
    bool done = false;
    if (adding)
      done = std::all_of(list.begin(), list.end(), [&](const auto& n) { return on.count(n); });
    else if (list.empty())
      done = on.empty();
    else
      done = std::none_of(list.begin(), list.end(), [&](const auto& n) { return on.count(n); });
    if (done) co_return error_code{};
    if (queue_.ended()) co_return error_code(error::closed);
    if (clock_type::now() >= deadline) co_return error_code(error::timeout);
    asio::steady_timer wait(get_executor(), deadline);
    waiters_.push_back(&wait);
    error_code ignored;
    co_await wait.async_wait(use_ec(ignored));
    std::erase(waiters_, &wait);
  }
}

void subscriber_impl::log_refusal(std::string_view command, const std::string& message) {
  auto log = conn_.get_config().logger ? conn_.get_config().logger : default_logger();
  log->warn("subscriber: {} refused: {}", command, message);
}

void subscriber_impl::close() {
  if (closed_) return;
  closed_ = true;
  conn_.close();
  wake_waiters();
  queue_.end();
}

}  // namespace detail

subscriber::subscriber(executor_type ex, connection_config cfg, subscriber_config opts)
    : impl_(std::make_unique<detail::subscriber_impl>(std::move(ex), std::move(cfg), opts)) {}

subscriber::~subscriber() {
  close();
}

subscriber::executor_type subscriber::get_executor() const noexcept {
  return impl_->get_executor();
}
connection& subscriber::next_layer() noexcept {
  return impl_->conn_;
}
void subscriber::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  impl_->run(std::move(handler));
}
void subscriber::change_impl(kind k, std::vector<std::string> names, std::string* refusal,
                             asio::any_completion_handler<void(error_code)> handler) {
  impl_->change(k, std::move(names), refusal, std::move(handler));
}
detail::message_queue& subscriber::queue() noexcept {
  return impl_->queue_;
}
std::optional<pubsub_message> subscriber::try_receive() {
  return impl_->queue_.try_pop();
}
void subscriber::on_message(std::function<void(const pubsub_message&)> callback) {
  impl_->queue_.on_message(std::move(callback));
}
void subscriber::close() {
  impl_->close();
}
const std::set<std::string, std::less<>>& subscriber::channels() const noexcept {
  return impl_->families_[0].wanted;
}
const std::set<std::string, std::less<>>& subscriber::patterns() const noexcept {
  return impl_->families_[1].wanted;
}
const std::set<std::string, std::less<>>& subscriber::shard_channels() const noexcept {
  return impl_->families_[2].wanted;
}
std::uint64_t subscriber::dropped() const noexcept {
  return impl_->queue_.dropped();
}
subscriber_stats subscriber::message_stats() const noexcept {
  return impl_->queue_.stats();
}
std::shared_ptr<const subscriber_stats> shared_stats(const subscriber& s) noexcept {
  return s.impl_->queue_.shared_stats();
}
std::uint64_t subscriber::overflow_disconnects() const noexcept {
  return impl_->queue_.overflow_disconnects();
}
std::size_t subscriber::buffered() const noexcept {
  return impl_->queue_.size();
}

}  // namespace redcoro
