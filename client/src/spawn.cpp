#include <redcoro/client/detail/spawn.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace redcoro::detail {

namespace asio = boost::asio;

namespace {

// Waits until `left` is 0, woken by `done`. Cancelling the caller does not cut the wait
// short: the tasks would outlive it, still using what they were given. The cancellation goes
// on to the tasks' `signals` (when they have them), once, and the wait goes on.
asio::awaitable<void> wait_all(asio::steady_timer& done, const std::size_t& left,
                               std::vector<asio::cancellation_signal>* signals) {
  const bool throws = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  bool passed_on = false;
  while (left > 0) {
    boost::system::error_code ignored;
    co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    const asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
    if (!passed_on && cs.cancelled() != asio::cancellation_type::none) {
      passed_on = true;
      if (signals)
        for (auto& s : *signals)
          s.emit(asio::cancellation_type::terminal);
    }
  }
  co_await asio::this_coro::throw_if_cancelled(throws);
}

}  // namespace

void spawn_to_handler(const asio::any_io_executor& ex,
                      asio::awaitable<boost::system::error_code> body,
                      asio::any_completion_handler<void(boost::system::error_code)> h,
                      boost::system::error_code on_exception) {
  asio::co_spawn(
      ex, std::move(body),
      [h = std::move(h), on_exception](std::exception_ptr e, boost::system::error_code ec) mutable {
        if (e) ec = on_exception;
        std::move(h)(ec);
      });
}

void start_run_once(const asio::any_io_executor& ex, bool& started,
                    asio::awaitable<boost::system::error_code> run,
                    asio::any_completion_handler<void(boost::system::error_code)> h) {
  if (started) {
    asio::post(ex, [h = std::move(h)]() mutable {
      std::move(h)(boost::system::error_code(asio::error::already_started));
    });
    return;
  }
  started = true;
  spawn_to_handler(ex, std::move(run), std::move(h), make_error_code(std::errc::not_enough_memory));
}

boost::asio::awaitable<void> first_of(std::vector<asio::awaitable<void>> tasks) {
  const auto ex = co_await asio::this_coro::executor;
  struct state {
    explicit state(const asio::any_io_executor& e, std::size_t n)
        : signals(n), running(n), all_done(e, asio::steady_timer::time_point::max()) {}
    std::vector<asio::cancellation_signal> signals;
    std::size_t running;
    bool one_done = false;
    std::exception_ptr error;
    asio::steady_timer all_done;
  };
  auto st = std::make_shared<state>(ex, tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    asio::co_spawn(
        ex, std::move(tasks[i]),
        asio::bind_cancellation_slot(st->signals[i].slot(), [st, i](std::exception_ptr e) {
          // Only the first one's: the others were cancelled, and may throw for it.
          if (!std::exchange(st->one_done, true)) {
            st->error = e;
            for (std::size_t j = 0; j < st->signals.size(); ++j)
              if (j != i) st->signals[j].emit(asio::cancellation_type::terminal);
          }
          if (--st->running == 0) st->all_done.cancel();
        }));
  }
  co_await wait_all(st->all_done, st->running, &st->signals);
  if (st->error) std::rethrow_exception(st->error);
}

asio::awaitable<boost::system::error_code> gather(
    const asio::any_io_executor& ex,
    std::vector<asio::awaitable<boost::system::error_code>> tasks) {
  struct state {
    explicit state(const asio::any_io_executor& e)
        : done(e, asio::steady_timer::time_point::max()) {}
    std::size_t left = 0;
    boost::system::error_code first;
    asio::steady_timer done;
  };
  auto s = std::make_shared<state>(ex);
  s->left = tasks.size();
  for (auto& t : tasks)
    asio::co_spawn(ex, std::move(t), [s](std::exception_ptr e, boost::system::error_code ec) {
      if (e) ec = asio::error::operation_aborted;
      if (ec && !s->first) s->first = ec;
      if (--s->left == 0) s->done.cancel();
    });
  co_await wait_all(s->done, s->left, nullptr);
  co_return s->first;
}

}  // namespace redcoro::detail
