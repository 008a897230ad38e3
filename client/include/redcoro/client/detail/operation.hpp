#pragma once

// The operation layer every request-executing class shares (connection, cluster_client, the
// handle): the typed part of one async_exec, allocated in one block from the
// implementation's pool, over a non-template entry the implementation works with.
//
// An implementation `Impl` with entry type `Entry` provides, found by argument-dependent
// lookup in redcoro::detail:
//   void* allocate_op(Impl&, std::size_t);   void deallocate_op(Impl&, void*, std::size_t);
//   const asio::any_io_executor& executor_of(const Impl&);
//   bool initiating(const Impl&);            // inside start_exec: do not complete inline
//   void start_exec(Impl&, Entry&);          // queue it, or complete it at once
//   void cancel_exec(Impl&, Entry&, asio::cancellation_type);   // per-operation cancellation
// and `Entry` has: `const proto::request* req`, `proto::any_adapter adapter`,
// `std::size_t bytes_read`, and a constructor (const proto::request&, proto::any_adapter,
// void (*complete)(Entry&, error_code)) whose function it calls exactly once.

#include <redcoro/client/command.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <new>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

namespace redcoro::detail {

namespace asio = boost::asio;
using boost::system::error_code;

// Completes `h` from an operation of an object living on `own`: at once when the caller
// runs there too and we are not inside the initiating function, else through the handler's
// executor.
template <class Handler, class... Args>
void complete_on(const asio::any_io_executor& own, bool initiating, Handler&& h, Args&&... args) {
  if (!initiating) {
    auto ex = asio::get_associated_executor(h, own);
    if constexpr (std::is_same_v<decltype(ex), asio::any_io_executor>) {
      // The common case: the caller runs on the same executor, and we are on it now
      // (in the reader, writer or timer loop), so it resumes at once, with no queue hop.
      if (ex == own) {
        std::move(h)(std::forward<Args>(args)...);
        return;
      }
    }
  }
  // Through the handler's own executor, never inside the initiating function. (Bound rather
  // than posted to it directly: a type-erased handler's executor cannot be posted to.)
  auto ex = asio::get_associated_executor(h, own);
  asio::post(
      own, asio::bind_executor(ex, [h = std::move(h), ... a = std::forward<Args>(args)]() mutable {
        std::move(h)(std::move(a)...);
      }));
}

// The error of reply `i` of a typed response, or nullptr.
template <class... Ts>
const proto::reply_error* reply_error_at(const std::tuple<proto::result<Ts>...>& r, std::size_t i) {
  const proto::reply_error* out = nullptr;
  std::apply(
      [&](const auto&... each) {
        std::size_t k = 0;
        ((k++ == i && each.has_error() ? (void)(out = &each.error()) : void()), ...);
      },
      r);
  return out;
}

// The resend of scripts after NOSCRIPT (script.cpp): what it sends, and where its replies go.
struct script_retry;
using reply_error_fn = const proto::reply_error* (*)(const void* response, std::size_t i);
// When replies of `req` were NOSCRIPT for commands in `scripts`, makes the request that sends
// them again as EVAL, with an adapter that puts their replies in the same slots of
// `adapter`; nullptr when there is nothing to resend.
script_retry* make_script_retry(const proto::request& req, proto::any_adapter adapter,
                                std::span<const script_ref> scripts, const void* response,
                                reply_error_fn error_at);
const proto::request& retry_request(const script_retry& r) noexcept;
proto::any_adapter retry_adapter(script_retry& r) noexcept;
void free_script_retry(script_retry*& state) noexcept;

// Ends an op: disconnects its cancellation slot, frees its block, then completes its
// handler with `args` (values, not references into the block).
template <class Op, class... Args>
void end_op(Op& self, Args... args) {
  auto& impl = *self.impl;
  auto slot = asio::get_associated_cancellation_slot(self.handler);
  if (slot.is_connected()) slot.clear();
  auto h = std::move(self.handler);
  // Free the block before resuming the caller, who may start the next request at once.
  self.~Op();
  deallocate_op(impl, &self, sizeof(Op));
  complete_on(executor_of(impl), initiating(impl), std::move(h), std::move(args)...);
}

// async_exec(request, response): the caller's response adapter and handler.
template <class Impl, class Entry, class Response, class Handler>
struct exec_op final : Entry {
  using entry_type = Entry;
  exec_op(Impl& c, const proto::request& r, Response& resp, Handler&& h)
      : Entry(r, proto::any_adapter(adapter_impl), &finish),
        impl(&c),
        adapter_impl(resp),
        handler(std::move(h)) {}

  static void finish(Entry& base, error_code ec) {
    auto& self = static_cast<exec_op&>(base);
    end_op(self, ec, self.bytes_read);
  }

  Impl* impl;
  proto::response_adapter<Response> adapter_impl;
  Handler handler;
};

// async_exec of a command, pipeline or transaction: the op's block also holds the request and
// the response, and the caller gets X::take(response). Scripts that got NOSCRIPT are sent
// again as EVAL, their replies going to the same slots.
template <class Impl, class Entry, class X, class Handler>
struct owned_exec_op final : Entry {
  using entry_type = Entry;
  owned_exec_op(Impl& c, X&& x, Handler&& h)
      : Entry(x.request(), proto::any_adapter(adapter_impl), &finish),
        impl(&c),
        owned(std::move(x)),
        adapter_impl(response),
        handler(std::move(h)) {
    this->req = &owned.request();
  }

  static void finish(Entry& base, error_code ec) {
    auto& self = static_cast<owned_exec_op&>(base);
    if constexpr (requires { self.owned.scripts(); }) {
      if (!ec && !self.retry && !self.owned.scripts().empty()) {
        self.retry = make_script_retry(
            self.owned.request(), proto::any_adapter(self.adapter_impl), self.owned.scripts(),
            &self.response, [](const void* r, std::size_t i) {
              return reply_error_at(*static_cast<const typename X::response_type*>(r), i);
            });
        if (self.retry) {
          self.req = &retry_request(*self.retry);
          self.adapter = retry_adapter(*self.retry);
          // May complete (and free the op) at once; nothing here touches it afterwards.
          start_exec(*self.impl, static_cast<Entry&>(self));
          return;
        }
      }
      free_script_retry(self.retry);
    }
    end_op(self, ec, X::take(self.response));
  }

  Impl* impl;
  script_retry* retry = nullptr;  // the EVAL resend after NOSCRIPT, while it runs
  X owned;
  typename X::response_type response{};
  proto::response_adapter<typename X::response_type> adapter_impl;
  Handler handler;
};

template <class Impl, class Entry>
struct exec_cancel {
  Impl* impl;
  Entry* entry;
  void operator()(asio::cancellation_type type) const { cancel_exec(*impl, *entry, type); }
};

// Allocates and starts an op, connecting the handler's cancellation slot first.
template <class Op, class Impl, class... Args>
void launch_op(Impl& c, Args&&... args) {
  using entry = typename Op::entry_type;
  auto* o = ::new (allocate_op(c, sizeof(Op))) Op(c, std::forward<Args>(args)...);
  auto slot = asio::get_associated_cancellation_slot(o->handler);
  if (slot.is_connected())
    slot.template emplace<exec_cancel<Impl, entry>>(exec_cancel<Impl, entry>{&c, o});
  start_exec(c, static_cast<entry&>(*o));
}

// The initiation of both async_exec overloads, for any implementation.
template <class Entry, class Impl, class Response, class Token>
auto initiate_exec(Impl& impl, const proto::request& req, Response& resp, Token&& token) {
  return asio::async_initiate<Token, void(error_code, std::size_t)>(
      [&impl](auto handler, const proto::request* r, Response* out) {
        launch_op<exec_op<Impl, Entry, Response, decltype(handler)>>(impl, *r, *out,
                                                                     std::move(handler));
      },
      token, &req, &resp);
}

// `x` by reference, and by reference into the initiation: the token's async_result keeps the
// one copy it needs, and the op's block takes it from there; each move of a command costs its
// request's inline bytes.
template <class Entry, class Impl, class X, class Token>
requires(!std::is_reference_v<X>) auto initiate_exec(Impl& impl, X&& x, Token&& token) {
  return asio::async_initiate<Token, void(error_code, typename X::value_type)>(
      [&impl](auto handler, X&& owned) {
        launch_op<owned_exec_op<Impl, Entry, X, decltype(handler)>>(impl, std::move(owned),
                                                                    std::move(handler));
      },
      token, std::move(x));
}

}  // namespace redcoro::detail
