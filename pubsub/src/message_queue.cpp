#include <redcoro/client/error.hpp>
#include <redcoro/pubsub/message.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace redcoro::detail {

namespace asio = boost::asio;
using boost::system::error_code;

message_queue::message_queue(asio::any_io_executor ex, subscriber_config opts)
    : ex_(std::move(ex)), opts_(opts) {
  opts_.capacity = std::max<std::size_t>(opts_.capacity, 1);
}

// The handler runs on the queue's executor (type-erased handlers carry no usable executor of
// their own in this Asio): at once when we already run there, never inside an initiating
// function (`post`).
void message_queue::complete(receive_handler h, error_code ec, pubsub_message m,
                             bool may_run_inline) {
  auto call = [h = std::move(h), ec, m = std::move(m)]() mutable {
    std::move(h)(ec, std::move(m));
  };
  if (may_run_inline)
    asio::dispatch(ex_, std::move(call));
  else
    asio::post(ex_, std::move(call));
}

bool message_queue::offer(pubsub_message m) {
  if (m.is_message()) ++stats_->messages;
  if (receiver_) {
    // offer() runs on the executor (the connection's reader, the cluster subscriber's
    // pumps), so the receiver resumes right here, as a request's caller does: no dispatch
    // through the type-erased executor per read.
    auto h = std::move(*receiver_);
    receiver_.reset();
    std::move(h)(error_code(), std::move(m));
    return true;
  }
  if (buffer_.size() >= opts_.capacity) {
    switch (opts_.overflow) {
      case overflow_policy::wait:
        break;  // paused() now stops the reader after this read
      case overflow_policy::drop_oldest:
        buffer_.pop_front();
        ++stats_->dropped;
        break;
      case overflow_policy::disconnect:
        ++stats_->dropped;
        ++stats_->overflow_disconnects;
        return false;
    }
  }
  buffer_.push_back(std::move(m));
  stats_->buffered = buffer_.size();
  return true;
}

std::optional<pubsub_message> message_queue::try_pop() {
  if (buffer_.empty()) return std::nullopt;
  const bool was_paused = paused();
  pubsub_message m = std::move(buffer_.front());
  buffer_.pop_front();
  stats_->buffered = buffer_.size();
  if (was_paused && !paused() && on_room) on_room();
  return m;
}

void message_queue::receive(receive_handler h) {
  if (auto m = try_pop())
    complete(std::move(h), {}, std::move(*m), false);
  else if (ended_)
    complete(std::move(h), error_code(error::closed), {}, false);
  else if (receiver_)
    complete(std::move(h), error_code(asio::error::already_started), {}, false);
  else
    receiver_.emplace(std::move(h));
}

void message_queue::end() {
  ended_ = true;
  if (!receiver_ || !buffer_.empty()) return;
  auto h = std::move(*receiver_);
  receiver_.reset();
  complete(std::move(h), error_code(error::closed), {}, true);
}

void message_queue::on_message(std::function<void(const pubsub_message&)> callback) {
  asio::co_spawn(
      ex_,
      [this, cb = std::move(callback)]() -> asio::awaitable<void> {
        for (;;) {
          error_code ec;
          pubsub_message m = co_await async_receive(asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
          if (m.is_message()) cb(m);
          while (auto more = try_pop())
            if (more->is_message()) cb(*more);
        }
      },
      asio::detached);
}

}  // namespace redcoro::detail
