#pragma once

#include <redcoro/proto/adapter.hpp>

#include <cstddef>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace redcoro::proto {

/// The response to a request of N commands: one result per reply, in order.
/// \code
///   response<std::optional<std::string>, std::int64_t> r;   // GET, then INCR
/// \endcode
template <class... Ts>
using response = std::tuple<result<Ts>...>;

/// A response for any number of replies of any shape.
using generic_response = std::vector<result<value>>;

/// Drives one response object from the nodes of a request's replies. The client keeps one
/// per request in flight; see any_adapter for the type-erased form it stores.
template <class Response>
class response_adapter;

/// Number of replies a response adapter accepts when it accepts any number.
inline constexpr std::size_t any_reply_count = static_cast<std::size_t>(-1);

template <class... Ts>
class response_adapter<std::tuple<result<Ts>...>> {
 public:
  using response_type = std::tuple<result<Ts>...>;
  static constexpr std::size_t replies = sizeof...(Ts);

  explicit response_adapter(response_type& r) noexcept : response_(&r) {}

  /// Feeds node `n` of reply number `index`.
  void on_node(std::size_t index, const node& n) {
    dispatch(index, n, std::index_sequence_for<Ts...>{});
  }
  std::error_code error() const noexcept { return {}; }

 private:
  template <std::size_t... I>
  void dispatch(std::size_t index, const node& n, std::index_sequence<I...>) {
    ((index == I ? feed<I>(n) : void()), ...);
  }

  template <std::size_t I>
  void feed(const node& n) {
    using T = std::tuple_element_t<I, std::tuple<Ts...>>;
    // Attributes are auxiliary data; only generic values keep them.
    if (n.in_attribute && !std::is_same_v<T, value>) return;
    reply_error unused;
    std::get<I>(adapters_).on_node(std::get<I>(*response_), n, n.depth, unused);
  }

  response_type* response_;
  std::tuple<adapter<result<Ts>>...> adapters_;
};

/// Any number of replies of one type, one element each: `std::vector<result<T>>`.
/// generic_response is the case T = value. The vector keeps its elements (and their
/// capacity) across requests: prepare(n), which the connection calls with the number of
/// replies before the first one arrives, resizes it; without it, it grows as replies arrive.
template <class T>
class response_adapter<std::vector<result<T>>> {
 public:
  static constexpr std::size_t replies = any_reply_count;

  explicit response_adapter(std::vector<result<T>>& r) noexcept : response_(&r) {}

  void prepare(std::size_t count) { response_->resize(count); }

  void on_node(std::size_t index, const node& n) {
    if (index != current_) {
      current_ = index;
      // Nothing of the previous reply (an attribute that preceded an error reply, say) may
      // carry over to this one.
      adapter_ = {};
    }
    if (index >= response_->size()) response_->resize(index + 1);
    if (n.in_attribute && !std::is_same_v<T, value>) return;
    reply_error unused;
    adapter_.on_node((*response_)[index], n, n.depth, unused);
  }
  std::error_code error() const noexcept { return {}; }

 private:
  std::vector<result<T>>* response_;
  adapter<result<T>> adapter_;
  std::size_t current_ = static_cast<std::size_t>(-1);
};

/// Discards every reply, but remembers that one of them was an error reply: error() then
/// returns error::server_error and message() the first such reply's text.
template <>
class response_adapter<ignore_t> {
 public:
  static constexpr std::size_t replies = any_reply_count;

  explicit response_adapter(const ignore_t&) noexcept {}

  void on_node(std::size_t, const node& n) {
    if (n.depth == 0 && !n.in_attribute && is_error(n.data_type) && !error_) {
      error_ = proto::error::server_error;
      message_.assign(n.value);
    }
  }
  std::error_code error() const noexcept { return error_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::error_code error_;
  std::string message_;
};

/// A non-owning, type-erased reference to a response_adapter: what the connection stores
/// for each request in flight. Five pointers; no allocation.
class any_adapter {
 public:
  template <class Impl>
  requires(!std::is_same_v<std::remove_cvref_t<Impl>, any_adapter>) explicit any_adapter(
      Impl& impl) noexcept
      : object_(&impl),
        on_node_(
            [](void* p, std::size_t i, const node& n) { static_cast<Impl*>(p)->on_node(i, n); }),
        error_([](const void* p) { return static_cast<const Impl*>(p)->error(); }),
        prepare_([](void* p, std::size_t n) {
          if constexpr (requires(Impl & i) { i.prepare(n); }) static_cast<Impl*>(p)->prepare(n);
        }),
        replies_([](const void* p) { return reply_count(*static_cast<const Impl*>(p)); }) {}

  void on_node(std::size_t index, const node& n) const { on_node_(object_, index, n); }
  std::error_code error() const { return error_(object_); }
  /// Called once per request with the number of replies, before the first node.
  void prepare(std::size_t replies) const { prepare_(object_, replies); }
  /// The number of replies the response holds, or any_reply_count.
  std::size_t replies() const noexcept { return replies_(object_); }

 private:
  // Impl::replies, or impl.replies() for an adapter that learns its count at run time (one
  // that wraps another any_adapter).
  template <class Impl>
  static std::size_t reply_count(const Impl& impl) noexcept {
    if constexpr (requires { impl.replies(); })
      return impl.replies();
    else
      return Impl::replies;
  }

  void* object_;
  void (*on_node_)(void*, std::size_t, const node&);
  std::error_code (*error_)(const void*);
  void (*prepare_)(void*, std::size_t);
  // Asked when the request is queued, not at construction: `impl` may not be constructed yet
  // when the any_adapter is (it is a later member of the same operation).
  std::size_t (*replies_)(const void*);
};

/// A response that is itself an any_adapter: what a layer that forwards requests (the handle
/// over a connection or a cluster) decodes into, so the caller's adapter gets the nodes.
template <>
class response_adapter<any_adapter> {
 public:
  explicit response_adapter(any_adapter& a) noexcept : a_(a) {}
  void on_node(std::size_t index, const node& n) { a_.on_node(index, n); }
  void prepare(std::size_t replies) { a_.prepare(replies); }
  std::size_t replies() const noexcept { return a_.replies(); }
  std::error_code error() const { return a_.error(); }

 private:
  any_adapter a_;
};

}  // namespace redcoro::proto
