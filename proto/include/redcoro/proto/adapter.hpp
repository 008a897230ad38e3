#pragma once

#include <redcoro/proto/node.hpp>
#include <redcoro/proto/result.hpp>
#include <redcoro/proto/value.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

/// \file
/// Adapters turn the node stream of one reply into a C++ object, node by node, with no
/// intermediate tree.
///
/// Every adapter has one member:
///
///     bool on_node(T& out, const node& n, std::size_t depth, reply_error& err);
///
/// `depth` is relative to the element the adapter fills: 0 for its first node, 1 for that
/// node's elements, and so on. Returning false means the element cannot be stored in T; `err`
/// then says why, and the rest of the element is skipped by the enclosing result<>. Adapters
/// reuse what `out` already holds (string capacity, vector elements), so a response object
/// reused across requests does not allocate in steady state.
///
/// Supported out of the box: std::string; integers (from numbers and from strings holding
/// digits); float and double; bool (from booleans and from the numbers 0 and 1);
/// std::optional<T> (null gives nullopt); result<T> (captures an error reply in place, as in
/// the replies to EXEC); sequence containers (vector, deque, list); set and unordered_set;
/// map and unordered_map (from RESP3 maps, RESP2 flat arrays and arrays of pairs);
/// vectors of std::pair (the same three forms, e.g. ZRANGE ... WITHSCORES);
/// std::pair, std::tuple and std::array for fixed-shape arrays; ignore_t; value.
///
/// User types, two ways:
///  - a type read from one string (an enum, a JSON document, a timestamp): provide, in the
///    type's namespace,
///        void redcoro_from_bulk(T& out, std::string_view text, std::error_code& ec);
///  - anything else: specialize `redcoro::proto::adapter<T>` with the member above.

namespace redcoro::proto {

/// Accepts and discards any reply. As a whole response, it still reports an error reply.
struct ignore_t {};
inline constexpr ignore_t ignore{};

/// The adapter of T; specialize it for user types (see the file comment).
template <class T, class Enable = void>
struct adapter;

namespace detail {

// Non-template cores, compiled once in adapter.cpp; the templates below only route.
bool fail_type(reply_error& err, std::string_view expected, const node& n);
bool fail_with(reply_error& err, error code, std::string message);
bool set_server_error(reply_error& err, const node& n);
bool adapt_string(std::string& out, const node& n, reply_error& err);
bool adapt_signed(std::int64_t& out, std::int64_t min, std::int64_t max, const node& n,
                  reply_error& err);
bool adapt_unsigned(std::uint64_t& out, std::uint64_t max, const node& n, reply_error& err);
bool adapt_double(double& out, const node& n, reply_error& err);
bool adapt_bool(bool& out, const node& n, reply_error& err);
bool adapt_bulk_text(std::string_view& out, const node& n, reply_error& err);
bool check_fixed_size(const node& n, std::size_t expected, reply_error& err);
void convert_error(reply_error& err, const std::error_code& ec, std::string_view text);

/// Elements to create ahead for an aggregate announcing `count` elements (node::unbounded
/// when streamed), never trusting a huge count: at most what the container already holds or
/// 4096; the rest grows as elements arrive. Never more than `count`, so that the container
/// ends with exactly the elements of the reply.
constexpr std::size_t presize(std::size_t count, std::size_t current) noexcept {
  if (count == node::unbounded) return 0;
  const std::size_t cap = current > 4096 ? current : 4096;
  return count < cap ? count : cap;
}

/// Builds `value` trees; also used for attributes.
class value_builder {
 public:
  bool on_node(value& root, const node& n, std::size_t depth);

 private:
  std::vector<value*> path_;
  value attribute_;
  std::vector<value*> attribute_path_;
  std::size_t attribute_depth_ = 0;
  bool has_attribute_ = false;
};

template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T>
concept bulk_convertible = requires(T& out, std::string_view s, std::error_code& ec) {
  redcoro_from_bulk(out, s, ec);
};

template <class T>
concept sequence_container = !std::is_same_v<T, std::string> && requires(T & c) {
  typename T::value_type;
  c.emplace_back();
  c.clear();
};

template <class T>
concept resizable_sequence = sequence_container<T> && requires(T& c, std::size_t n) {
  c.resize(n);
  c[n];
};

template <class T>
concept associative_map = requires(T& m) {
  typename T::key_type;
  typename T::mapped_type;
  m.clear();
};

template <class T>
concept associative_set = !associative_map<T> && requires(T & s, typename T::key_type k) {
  typename T::key_type;
  s.insert(std::move(k));
  s.clear();
};

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Scalars

template <>
struct adapter<std::string> {
  bool on_node(std::string& out, const node& n, std::size_t, reply_error& err) {
    return detail::adapt_string(out, n, err);
  }
};

template <std::integral T>
requires(!std::same_as<T, bool>) struct adapter<T> {
  bool on_node(T& out, const node& n, std::size_t, reply_error& err) {
    if constexpr (std::is_signed_v<T>) {
      std::int64_t v;
      if (!detail::adapt_signed(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), n,
                                err))
        return false;
      out = static_cast<T>(v);
    } else {
      std::uint64_t v;
      if (!detail::adapt_unsigned(v, std::numeric_limits<T>::max(), n, err)) return false;
      out = static_cast<T>(v);
    }
    return true;
  }
};

template <std::floating_point T>
struct adapter<T> {
  bool on_node(T& out, const node& n, std::size_t, reply_error& err) {
    double v;
    if (!detail::adapt_double(v, n, err)) return false;
    out = static_cast<T>(v);
    return true;
  }
};

template <>
struct adapter<bool> {
  bool on_node(bool& out, const node& n, std::size_t, reply_error& err) {
    return detail::adapt_bool(out, n, err);
  }
};

template <>
struct adapter<ignore_t> {
  bool on_node(ignore_t&, const node&, std::size_t, reply_error&) { return true; }
};

template <>
struct adapter<value> {
  bool on_node(value& out, const node& n, std::size_t depth, reply_error&) {
    return builder_.on_node(out, n, depth);
  }
  detail::value_builder builder_;
};

/// User types read from one string, through ADL `redcoro_from_bulk`.
template <detail::bulk_convertible T>
struct adapter<T> {
  bool on_node(T& out, const node& n, std::size_t, reply_error& err) {
    std::string_view text;
    if (!detail::adapt_bulk_text(text, n, err)) return false;
    std::error_code ec;
    redcoro_from_bulk(out, text, ec);
    if (ec) {
      detail::convert_error(err, ec, text);
      return false;
    }
    return true;
  }
};

// ---------------------------------------------------------------------------------------
// Wrappers

template <class T>
struct adapter<std::optional<T>> {
  bool on_node(std::optional<T>& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      if (n.data_type == type::null) {
        out.reset();
        return true;
      }
      if (!out) out.emplace();
    }
    return inner_.on_node(*out, n, depth, err);
  }
  adapter<T> inner_;
};

/// A result<T> inside a reply captures errors of its own element: the elements of an EXEC
/// reply, the replies of a pipeline. The rest of a failed element is skipped.
template <class T>
struct adapter<result<T>> {
  bool on_node(result<T>& out, const node& n, std::size_t depth, reply_error&) {
    if (depth == 0) {
      skipping_ = false;
      out.error_storage().clear();
      if (is_error(n.data_type)) {
        detail::set_server_error(out.error_storage(), n);
        skipping_ = true;
        return true;
      }
    }
    if (skipping_) return true;
    if (!inner_.on_node(out.storage(), n, depth, out.error_storage())) skipping_ = true;
    return true;
  }
  adapter<T> inner_;
  bool skipping_ = false;
};

// ---------------------------------------------------------------------------------------
// Sequences

template <detail::sequence_container C>
requires(!detail::is_pair<typename C::value_type>::value) struct adapter<C> {
  using element = typename C::value_type;
  static_assert(!std::is_same_v<C, std::vector<bool>>, "use std::vector<char> or <int> for bools");

  bool on_node(C& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      if (!is_aggregate(n.data_type)) return detail::fail_type(err, "aggregate", n);
      index_ = 0;
      if constexpr (detail::resizable_sequence<C>)
        out.resize(detail::presize(n.element_count(), out.size()));
      else
        out.clear();
      return true;
    }
    if (depth == 1) {
      if constexpr (detail::resizable_sequence<C>) {
        current_ = index_ < out.size() ? &out[index_] : &out.emplace_back();
      } else {
        current_ = &out.emplace_back();
      }
      ++index_;
      return child_.on_node(*current_, n, 0, err);
    }
    return child_.on_node(*current_, n, depth - 1, err);
  }

  adapter<element> child_;
  element* current_ = nullptr;
  std::size_t index_ = 0;
};

namespace detail {

/// Reads key/value pairs in any of the shapes Redis uses for them: a RESP3 map, a RESP2 flat
/// array (k1 v1 k2 v2) or an array of two-element arrays (RESP3 ZRANGE ... WITHSCORES).
/// The container is prepared through `on_begin(out, pairs)` once the number of pairs is
/// known (0 when it is not), and each value is stored where `value_slot(out, key)` says.
template <class K, class V>
class pair_reader {
 public:
  template <class Container, class OnBegin, class ValueSlot>
  bool on_node(Container& out, const node& n, std::size_t depth, reply_error& err,
               OnBegin&& on_begin, ValueSlot&& value_slot) {
    if (depth == 0) {
      if (!is_aggregate(n.data_type)) return fail_type(err, "map or array", n);
      count_ = 0;
      elements_ = n.element_count();
      if (n.data_type == type::map) {
        mode_ = mode::flat;
        on_begin(out, elements_ == node::unbounded ? 0 : elements_ / 2);
      } else {
        // Flat or nested shows only with the first element; an empty or streamed array can
        // be prepared now.
        mode_ = mode::undecided;
        if (elements_ == 0 || elements_ == node::unbounded) on_begin(out, 0);
      }
      return true;
    }
    if (mode_ == mode::undecided) {
      mode_ = is_aggregate(n.data_type) ? mode::nested : mode::flat;
      if (elements_ != node::unbounded) {
        if (mode_ == mode::flat && elements_ % 2 != 0)
          return fail_with(err, error::size_mismatch, "odd number of elements for key/value pairs");
        on_begin(out, mode_ == mode::flat ? elements_ / 2 : elements_);
      }
    }
    // Depth of the key and value elements: 1 when flat, 2 inside [k, v] pairs.
    const std::size_t level = mode_ == mode::flat ? 1 : 2;
    if (level == 2 && depth == 1) {
      count_ = 0;
      return check_fixed_size(n, 2, err);
    }
    if (depth == level) {
      if (level == 2 && count_ == 2)
        return fail_with(err, error::size_mismatch, "pair with more than two elements");
      is_key_ = count_ % 2 == 0;
      ++count_;
      if (!is_key_) current_ = &value_slot(out, std::move(key_));
    }
    const std::size_t d = depth - level;
    return is_key_ ? key_adapter_.on_node(key_, n, d, err)
                   : value_adapter_.on_node(*current_, n, d, err);
  }

 private:
  enum class mode : std::uint8_t { undecided, flat, nested };
  K key_{};
  V* current_ = nullptr;
  adapter<K> key_adapter_;
  adapter<V> value_adapter_;
  std::size_t elements_ = 0;
  std::size_t count_ = 0;
  mode mode_ = mode::undecided;
  bool is_key_ = true;
};

}  // namespace detail

/// Sequences of pairs: HGETALL, CONFIG GET, ZRANGE ... WITHSCORES, in RESP2 or RESP3 shape.
template <detail::sequence_container C>
requires detail::is_pair<typename C::value_type>::value struct adapter<C> {
  using pair_type = typename C::value_type;
  using K = std::remove_const_t<typename pair_type::first_type>;
  using V = typename pair_type::second_type;

  bool on_node(C& out, const node& n, std::size_t depth, reply_error& err) {
    return reader_.on_node(
        out, n, depth, err,
        [this](C& c, std::size_t pairs) {
          index_ = 0;
          if constexpr (detail::resizable_sequence<C>)
            c.resize(detail::presize(pairs, c.size()));
          else
            c.clear();
        },
        [this](C& c, K&& key) -> V& {
          pair_type* slot;
          if constexpr (detail::resizable_sequence<C>) {
            slot = index_ < c.size() ? &c[index_] : &c.emplace_back();
          } else {
            slot = &c.emplace_back();
          }
          ++index_;
          slot->first = std::move(key);
          return slot->second;
        });
  }

  detail::pair_reader<K, V> reader_;
  std::size_t index_ = 0;
};

template <detail::associative_map M>
struct adapter<M> {
  using K = typename M::key_type;
  using V = typename M::mapped_type;

  bool on_node(M& out, const node& n, std::size_t depth, reply_error& err) {
    return reader_.on_node(
        out, n, depth, err, [](M& m, std::size_t) { m.clear(); },
        [](M& m, K&& key) -> V& { return m.try_emplace(std::move(key)).first->second; });
  }

  detail::pair_reader<K, V> reader_;
};

template <detail::associative_set S>
struct adapter<S> {
  using K = typename S::key_type;

  bool on_node(S& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      if (!is_aggregate(n.data_type)) return detail::fail_type(err, "set or array", n);
      out.clear();
      return true;
    }
    // Elements are inserted as soon as their first node is read, so they must be scalars.
    if (depth > 1 || has_children(n.data_type)) return detail::fail_type(err, "scalar element", n);
    K key{};
    if (!child_.on_node(key, n, 0, err)) return false;
    out.insert(std::move(key));
    return true;
  }

  adapter<K> child_;
};

// ---------------------------------------------------------------------------------------
// Fixed shapes

namespace detail {

/// Arrays of a fixed number of elements into tuple-like types (pair, tuple).
template <class Tuple, class Indexes>
struct tuple_adapter;

template <class Tuple, std::size_t... I>
struct tuple_adapter<Tuple, std::index_sequence<I...>> {
  static constexpr std::size_t size = sizeof...(I);

  bool on_node(Tuple& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      index_ = 0;
      return check_fixed_size(n, size, err);
    }
    if (depth == 1 && ++index_ > size)
      return fail_with(err, error::size_mismatch, "more elements than the tuple holds");
    const std::size_t d = depth - 1;
    bool ok = true;
    ((index_ == I + 1 ? (ok = std::get<I>(children_).on_node(std::get<I>(out), n, d, err), 0) : 0),
     ...);
    return ok;
  }

  std::tuple<adapter<std::remove_cvref_t<std::tuple_element_t<I, Tuple>>>...> children_;
  std::size_t index_ = 0;
};

}  // namespace detail

template <class... Ts>
struct adapter<std::tuple<Ts...>>
    : detail::tuple_adapter<std::tuple<Ts...>, std::index_sequence_for<Ts...>> {};

template <class A, class B>
struct adapter<std::pair<A, B>>
    : detail::tuple_adapter<std::pair<A, B>, std::index_sequence<0, 1>> {};

/// Your own aggregate, read from an array of a fixed number of elements: give it an ADL
/// function that ties its members in order.
/// \code
///   struct entry { std::string id; std::vector<std::pair<std::string, std::string>> fields; };
///   inline auto redcoro_fields(entry& e) { return std::tie(e.id, e.fields); }
/// \endcode
template <class T>
requires requires(T& t) {
  redcoro_fields(t);
}
struct adapter<T> {
  using fields_type = decltype(redcoro_fields(std::declval<T&>()));

  bool on_node(T& out, const node& n, std::size_t depth, reply_error& err) {
    fields_type fields = redcoro_fields(out);
    return impl_.on_node(fields, n, depth, err);
  }

  detail::tuple_adapter<fields_type, std::make_index_sequence<std::tuple_size_v<fields_type>>>
      impl_;
};

template <class T, std::size_t N>
struct adapter<std::array<T, N>> {
  bool on_node(std::array<T, N>& out, const node& n, std::size_t depth, reply_error& err) {
    if (depth == 0) {
      index_ = 0;
      return detail::check_fixed_size(n, N, err);
    }
    if (depth == 1 && ++index_ > N)
      return detail::fail_with(err, error::size_mismatch, "more elements than the array holds");
    return child_.on_node(out[index_ - 1], n, depth - 1, err);
  }
  adapter<T> child_;
  std::size_t index_ = 0;
};

}  // namespace redcoro::proto
