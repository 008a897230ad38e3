#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>

namespace redcoro {

namespace {

using clock_type = std::chrono::steady_clock;

auto use_ec(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// Completes a handler on the subscriber's executor (type-erased handlers carry no usable
// executor of their own in this Asio): at once when we already run there, never inside an
// initiating function (`post`).
template <class Handler, class... Args>
void complete(const asio::any_io_executor& own, bool may_run_inline, Handler h, Args... args) {
  auto call = [h = std::move(h), ... a = std::move(args)]() mutable {
    std::move(h)(std::move(a)...);
  };
  if (may_run_inline)
    asio::dispatch(own, std::move(call));
  else
    asio::post(own, std::move(call));
}

bool is_subscribe(pubsub_message::kind k) {
  return k == pubsub_message::kind::subscribe || k == pubsub_message::kind::psubscribe ||
         k == pubsub_message::kind::ssubscribe;
}

// The confirmation kinds, and the command of each request kind.
constexpr std::string_view names[] = {"SUBSCRIBE",   "PSUBSCRIBE",   "SSUBSCRIBE",
                                      "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

}  // namespace

subscriber::subscriber(executor_type ex, config cfg, subscriber_options opts)
    : opts_(opts),
      conn_(ex,
            [&] {
              // Every new connection subscribes again inside its handshake.
              cfg.on_handshake = [this](proto::request& r) { resubscribe(r); };
              cfg.max_queued_pushes = std::max<std::size_t>(cfg.max_queued_pushes, 1);
              return std::move(cfg);
            }()),
      changed_(std::make_unique<asio::steady_timer>(ex)) {
  opts_.capacity = std::max<std::size_t>(opts_.capacity, 1);
  conn_.set_push_sink(this);
}

subscriber::~subscriber() {
  close();
}

std::set<std::string, std::less<>>& subscriber::wanted(request_kind k) {
  switch (k) {
    case request_kind::subscribe:
    case request_kind::unsubscribe:
      return channels_;
    case request_kind::psubscribe:
    case request_kind::punsubscribe:
      return patterns_;
    default:
      return shards_;
  }
}

std::set<std::string, std::less<>>& subscriber::confirmed(request_kind k) {
  switch (k) {
    case request_kind::subscribe:
    case request_kind::unsubscribe:
      return on_channels_;
    case request_kind::psubscribe:
    case request_kind::punsubscribe:
      return on_patterns_;
    default:
      return on_shards_;
  }
}

void subscriber::resubscribe(proto::request& r) {
  // The first connection has nothing to restore: the SUBSCRIBE requests of the calls made
  // so far are queued and go out right after the handshake.
  if (!connected_before_) {
    connected_before_ = true;
    return;
  }
  // A new connection holds nothing yet.
  on_channels_.clear();
  on_patterns_.clear();
  on_shards_.clear();
  resubscribing_.clear();
  auto again = [&](std::string_view command, char tag, const auto& set) {
    if (set.empty()) return;
    r.push(command, set);
    for (const auto& name : set)
      resubscribing_.insert(tag + std::string(":") + name);
  };
  again("SUBSCRIBE", 'c', channels_);
  again("PSUBSCRIBE", 'p', patterns_);
  again("SSUBSCRIBE", 's', shards_);
}

void subscriber::run_impl(asio::any_completion_handler<void(error_code)> handler) {
  conn_.async_run([this, h = std::move(handler)](error_code ec) mutable {
    loop_done_ = true;
    changed_->cancel();
    if (receiver_ && buffer_.empty()) {
      auto r = std::move(*receiver_);
      receiver_.reset();
      complete(get_executor(), true, std::move(r), error_code(error::closed), pubsub_message{});
    }
    std::move(h)(ec);
  });
}

void subscriber::on_confirmation(pubsub_message& m) {
  using k = pubsub_message::kind;
  const char tag = m.what == k::subscribe || m.what == k::unsubscribe     ? 'c'
                   : m.what == k::psubscribe || m.what == k::punsubscribe ? 'p'
                                                                          : 's';
  auto& on = tag == 'c' ? on_channels_ : tag == 'p' ? on_patterns_ : on_shards_;
  if (is_subscribe(m.what)) {
    on.insert(m.channel);
    m.resubscribed = resubscribing_.erase(tag + std::string(":") + m.channel) > 0;
  } else {
    on.erase(m.channel);
  }
  changed_->cancel();  // (un)subscribe calls waiting for this look again
}

void subscriber::on_push_node(const proto::node& n) {
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
      constexpr std::pair<std::string_view, k> kinds[] = {
          {"message", k::message},          {"pmessage", k::pmessage},
          {"smessage", k::smessage},        {"subscribe", k::subscribe},
          {"psubscribe", k::psubscribe},    {"ssubscribe", k::ssubscribe},
          {"unsubscribe", k::unsubscribe},  {"punsubscribe", k::punsubscribe},
          {"sunsubscribe", k::sunsubscribe}};
      const auto* found = std::find_if(std::begin(kinds), std::end(kinds),
                                       [&](const auto& e) { return e.first == text; });
      incoming_known_ = found != std::end(kinds);  // else not pub/sub (tracking, say)
      if (incoming_known_) {
        incoming_.what = found->second;
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

void subscriber::on_push_done() {
  if (!incoming_known_) return;
  pubsub_message m = std::move(incoming_);
  incoming_ = {};
  if (!m.is_message()) on_confirmation(m);
  if (buffer_.size() >= opts_.capacity) {
    switch (opts_.overflow) {
      case overflow_policy::wait:
        break;  // paused() now stops the reader after this read
      case overflow_policy::drop_oldest:
        buffer_.pop_front();
        ++dropped_;
        break;
      case overflow_policy::disconnect:
        ++dropped_;
        ++overflow_disconnects_;
        conn_.reconnect();
        return;
    }
  }
  deliver(std::move(m));
}

void subscriber::deliver(pubsub_message m) {
  if (receiver_) {
    auto h = std::move(*receiver_);
    receiver_.reset();
    complete(get_executor(), true, std::move(h), error_code{}, std::move(m));
    return;
  }
  buffer_.push_back(std::move(m));
}

std::optional<pubsub_message> subscriber::try_receive() {
  if (buffer_.empty()) return std::nullopt;
  const bool was_paused = paused();
  pubsub_message m = std::move(buffer_.front());
  buffer_.pop_front();
  if (was_paused && !paused()) conn_.resume_reading();
  return m;
}

void subscriber::receive_impl(asio::any_completion_handler<receive_signature> handler) {
  if (auto m = try_receive()) {
    complete(get_executor(), false, std::move(handler), error_code{}, std::move(*m));
  } else if (loop_done_ || closed_) {
    complete(get_executor(), false, std::move(handler), error_code(error::closed),
             pubsub_message{});
  } else if (receiver_) {
    complete(get_executor(), false, std::move(handler), error_code(asio::error::already_started),
             pubsub_message{});
  } else {
    receiver_.emplace(std::move(handler));
  }
}

void subscriber::change_impl(request_kind k, std::vector<std::string> list,
                             asio::any_completion_handler<void(error_code)> handler) {
  asio::co_spawn(get_executor(), apply_change(k, std::move(list)),
                 [h = std::move(handler)](std::exception_ptr e, error_code ec) mutable {
                   if (e) ec = asio::error::operation_aborted;
                   std::move(h)(ec);
                 });
}

asio::awaitable<error_code> subscriber::apply_change(request_kind k,
                                                     std::vector<std::string> list) {
  const bool adding = k <= request_kind::ssubscribe;
  auto& want = wanted(k);
  auto& on = confirmed(k);
  if (adding) {
    want.insert(list.begin(), list.end());
  } else if (list.empty()) {
    want.clear();
  } else {
    for (const auto& n : list)
      want.erase(n);
  }
  proto::request req;
  req.push(names[static_cast<int>(k)], list);
  proto::ignore_t none;
  error_code ec;
  co_await conn_.async_exec(req, none, use_ec(ec));
  if (ec) co_return ec;
  const auto timeout = conn_.get_config().request_timeout;
  const auto deadline =
      timeout.count() > 0 ? clock_type::now() + timeout : clock_type::time_point::max();
  for (;;) {
    bool done = false;
    if (adding)
      done = std::all_of(list.begin(), list.end(), [&](const auto& n) { return on.count(n); });
    else if (list.empty())
      done = on.empty();
    else
      done = std::none_of(list.begin(), list.end(), [&](const auto& n) { return on.count(n); });
    if (done) co_return error_code{};
    if (closed_) co_return error_code(error::closed);
    if (clock_type::now() >= deadline) co_return error_code(error::timeout);
    changed_->expires_at(deadline);
    error_code ignored;
    co_await changed_->async_wait(use_ec(ignored));
  }
}

void subscriber::on_message(std::function<void(const pubsub_message&)> callback) {
  asio::co_spawn(
      get_executor(),
      [this, cb = std::move(callback)]() -> asio::awaitable<void> {
        for (;;) {
          error_code ec;
          pubsub_message m = co_await async_receive(use_ec(ec));
          if (ec) co_return;
          if (m.is_message()) cb(m);
          while (auto more = try_receive())
            if (more->is_message()) cb(*more);
        }
      },
      asio::detached);
}

void subscriber::close() {
  if (closed_) return;
  closed_ = true;
  conn_.close();
  changed_->cancel();
}

}  // namespace redcoro
