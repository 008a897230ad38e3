#pragma once

#include <redcoro/proto/command_name.hpp>
#include <redcoro/proto/detail/small_buffer.hpp>
#include <redcoro/proto/pubsub.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

/// \file
/// Commands are serialized into one contiguous buffer of RESP arrays of bulk strings. Every
/// argument is a length-prefixed bulk string, so CR, LF and NUL in keys and values are plain
/// data and can never start a new command.
///
/// Arguments can be:
///  - string-likes (std::string, std::string_view, const char*, string literals);
///  - byte buffers: contiguous ranges of char, unsigned char, std::byte (one bulk each);
///  - integers, and floating-point numbers (shortest text that reads back the same value;
///    "inf", "-inf", "nan");
///  - ranges of arguments (one bulk per element), std::pair and std::tuple (one bulk per
///    member), so maps expand to key value key value;
///  - user types, through an ADL function in the type's namespace that adds its bulks:
///        void redcoro_to_bulk(redcoro::proto::arg_sink& sink, const T& v);
///    It may add any number of arguments; it is called twice (once to count them).

namespace redcoro::proto {

class arg_sink;

namespace detail {

template <class T>
concept byte_type = std::is_same_v<T, char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, signed char> || std::is_same_v<T, std::byte> || std::is_same_v<T, char8_t>;

template <class T>
concept string_like = std::is_convertible_v<const T&, std::string_view>;

template <class T>
concept byte_buffer = !string_like<T> && std::ranges::contiguous_range<const T> &&
                      std::ranges::sized_range<const T> &&
                      byte_type<std::remove_cv_t<std::ranges::range_value_t<const T>>>;

template <class T>
concept number_arg = (std::is_integral_v<T> && !std::is_same_v<T, bool> && !byte_type<T>) ||
                     std::is_floating_point_v<T>;

template <class T>
concept user_arg = requires(arg_sink& s, const T& v) {
  redcoro_to_bulk(s, v);
};

template <class T>
concept range_arg =
    !string_like<T> && !byte_buffer<T> && !user_arg<T> && std::ranges::input_range<const T>;

template <class T>
struct is_tuple_like : std::false_type {};
template <class A, class B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <class... Ts>
struct is_tuple_like<std::tuple<Ts...>> : std::true_type {};

template <class T>
inline constexpr bool always_false = false;

}  // namespace detail

/// Receives arguments for one command. Passed to user `redcoro_to_bulk` functions.
class arg_sink {
 public:
  /// Adds one argument, or several for ranges, pairs, tuples and user types.
  template <class T>
  void add(const T& v) {
    if constexpr (detail::string_like<T>) {
      add_bulk(std::string_view(v));
    } else if constexpr (detail::byte_buffer<T>) {
      const auto* data = std::ranges::data(v);
      add_bulk(std::string_view(reinterpret_cast<const char*>(data), std::ranges::size(v)));
    } else if constexpr (std::is_floating_point_v<T>) {
      add_double(static_cast<double>(v));
    } else if constexpr (detail::number_arg<T> && std::is_signed_v<T>) {
      add_signed(static_cast<std::int64_t>(v));
    } else if constexpr (detail::number_arg<T>) {
      add_unsigned(static_cast<std::uint64_t>(v));
    } else if constexpr (detail::user_arg<T>) {
      redcoro_to_bulk(*this, v);
    } else if constexpr (detail::is_tuple_like<T>::value) {
      add_members(v, std::make_index_sequence<std::tuple_size_v<T>>{});
    } else if constexpr (detail::range_arg<T>) {
      for (const auto& e : v)
        add(e);
    } else {
      static_assert(
          detail::always_false<T>,
          "unsupported command argument type: provide redcoro_to_bulk(arg_sink&, const T&)");
    }
  }

  void add_bulk(std::string_view bytes);
  void add_signed(std::int64_t v);
  void add_unsigned(std::uint64_t v);
  void add_double(double v);

  /// Arguments added so far.
  std::size_t count() const noexcept { return count_; }

  /// A sink that counts arguments without writing them.
  static arg_sink counter() noexcept { return arg_sink(nullptr); }

 private:
  friend class request;
  explicit arg_sink(detail::small_buffer* out) noexcept : out_(out) {}

  template <class Tuple, std::size_t... I>
  void add_members(const Tuple& t, std::index_sequence<I...>) {
    (add(std::get<I>(t)), ...);
  }

  detail::small_buffer* out_;  // nullptr: only count
  std::size_t count_ = 0;
  // Where the first argument's bytes went in *out_, and how many: the command's key, for most.
  std::size_t first_at_ = 0;
  std::size_t first_size_ = 0;
};

namespace detail {

template <class T>
std::size_t count_with_sink(const T& v) {
  arg_sink counter = arg_sink::counter();
  counter.add(v);
  return counter.count();
}

/// Number of bulks an argument expands to; known without running user code where possible.
template <class T>
std::size_t arg_count(const T& v) {
  if constexpr (string_like<T> || byte_buffer<T> || number_arg<T>) {
    return 1;
  } else if constexpr (is_tuple_like<T>::value) {
    return std::apply([](const auto&... m) { return (arg_count(m) + ... + std::size_t{0}); }, v);
  } else if constexpr (range_arg<T>) {
    using E = std::ranges::range_value_t<const T>;
    if constexpr (std::ranges::sized_range<const T> &&
                  (string_like<E> || byte_buffer<E> || number_arg<E>)) {
      return static_cast<std::size_t>(std::ranges::size(v));
    } else {
      std::size_t n = 0;
      for (const auto& e : v)
        n += arg_count(e);
      return n;
    }
  } else {
    return count_with_sink(v);
  }
}

}  // namespace detail

/// A command of a request that the server answers out of band: SUBSCRIBE and friends.
struct out_of_band_command {
  std::uint32_t index = 0;  ///< its position among the request's commands
  /// The confirmations that answer it (pubsub_kind::subscribe for SUBSCRIBE...).
  pubsub_kind kind = pubsub_kind::subscribe;
  /// The confirmations the server sends, one per name; 0 for an unsubscribe from everything,
  /// whose count only the server knows.
  std::uint32_t confirmations = 0;
};

/// Where one command of a request lies in its payload, recorded as the command is pushed: what
/// reads a request (the cluster's router, the key prefix, a connection giving back a blocking
/// pop) finds a command and its first argument without parsing the payload again.
struct command_place {
  std::size_t offset = 0;  ///< where the command starts in payload()
  std::size_t size = 0;    ///< its bytes
  /// Where the bytes of its first argument after the name start (past the bulk's header),
  /// and how many there are; 0 and 0 when it has no argument.
  std::size_t first_arg = 0;
  std::size_t first_arg_size = 0;
  std::uint8_t id = 0;  ///< command_id() of its name: 0 when redcoro knows nothing about it
};

/// A batch of commands, serialized as they are pushed, sent in one write.
///
/// \code
///   request req;
///   req.push("SET", "key", "value", "EX", 60);
///   req.push("HSET", "user:1", std::map<std::string, std::string>{{"name", "ada"}});
///   req.push("GET", "key");
/// \endcode
class request {
 public:
  /// How the connection treats this request when something goes wrong.
  struct config {
    /// Fail at once with `not_connected` instead of waiting for the connection.
    bool cancel_if_not_connected = false;
    /// If the connection drops after the request was written but before all its replies
    /// arrived, send it again on the next connection. Only for commands that are safe to
    /// repeat (reads, SET of a fixed value); by default such a request fails with
    /// `connection_lost`.
    bool retry_if_unanswered = false;
    /// How long the connection waits for all replies, from the call, including time spent
    /// waiting for a connection. Negative: the connection's default; zero: no limit.
    std::chrono::milliseconds timeout{-1};
  };

  request() = default;
  explicit request(config cfg) : config_(cfg) {}

  /// Appends one command with its arguments.
  template <class... Args>
  void push(std::string_view command, const Args&... args) {
    push_command(command, args...);
  }
  /// The same, for a name known at compile time (command_name.hpp): nothing is looked up.
  template <class... Args>
  void push(const command_name& command, const Args&... args) {
    push_command(command, args...);
  }

  /// Appends one command whose arguments are `prefix...` followed by each element of `range`
  /// (each pair of a map giving two arguments).
  template <class Range, class... Prefix>
  void push_range(std::string_view command, const Range& range, const Prefix&... prefix) {
    push(command, prefix..., range);
  }

  /// Appends the commands of another request (its config is not copied).
  void append(const request& other);

  /// Appends `count` commands already serialized (bytes taken from another request's
  /// payload(), say). None of them may be a command answered out of band (SUBSCRIBE...).
  void append_serialized(std::string_view commands, std::size_t count);

  /// The serialized commands.
  std::string_view payload() const noexcept { return payload_.view(); }
  /// Where command number `index` (0-based, below commands()) lies in payload().
  const command_place& place(std::size_t index) const noexcept {
    return index == 0 ? first_place_ : more_places_[index - 1];
  }
  /// The bytes of command number `index` within payload(); empty when there is no such
  /// command.
  std::string_view command_bytes(std::size_t index) const noexcept {
    if (index >= commands_) return {};
    const command_place& p = place(index);
    return payload_.view().substr(p.offset, p.size);
  }
  /// The first argument after the name of command number `index` (below commands()): its
  /// key, for most commands; empty when it has none.
  std::string_view first_arg(std::size_t index) const noexcept {
    const command_place& p = place(index);
    return payload_.view().substr(p.first_arg, p.first_arg_size);
  }
  /// The serialized command that starts at `pos` in `payload` (as payload() gives it), and
  /// advances `pos` past it; empty at the end or when the bytes are not a command.
  static std::string_view next_command(std::string_view payload, std::size_t& pos) noexcept;
  /// next_command, calling `f(std::string_view)` for each argument (the name first) on the
  /// way: one pass where next_command then for_each_arg would make two. On malformed bytes
  /// it returns empty after calling `f` for the arguments before them.
  template <class F>
  static std::string_view next_command(std::string_view payload, std::size_t& pos, F&& f) {
    std::size_t at = pos, count = 0;
    if (!read_header(payload, at, '*', count)) return {};
    for (std::size_t a = 0; a < count; ++a) {
      std::size_t len = 0;
      if (!read_header(payload, at, '$', len) || payload.size() - at < len + 2) return {};
      f(payload.substr(at, len));
      at += len + 2;
    }
    const std::string_view command = payload.substr(pos, at - pos);
    pos = at;
    return command;
  }
  /// The arguments of one serialized command (from command_bytes), the name first: calls
  /// `f(std::string_view)` for each. Returns false if `bytes` is not one whole command.
  template <class F>
  static bool for_each_arg(std::string_view bytes, F&& f) {
    std::size_t pos = 0;
    return !next_command(bytes, pos, std::forward<F>(f)).empty() && pos == bytes.size();
  }
  /// Commands pushed.
  std::size_t commands() const noexcept { return commands_; }
  /// Replies the server sends in order for this request: the (un)subscribe commands answer
  /// with push frames (pub/sub arrays on RESP2) instead of replies and are not counted.
  std::size_t expected_replies() const noexcept { return commands_ - out_of_band_.size(); }
  /// Commands answered out of band (SUBSCRIBE and friends).
  std::size_t out_of_band_commands() const noexcept { return out_of_band_.size(); }
  /// The command_id() (command_info.hpp) of command number `index`: 0 when redcoro knows
  /// nothing about it.
  std::uint8_t command_id(std::size_t index) const noexcept {
    return index < commands_ ? place(index).id : 0;
  }
  /// The longest block time of its blocking commands (BLPOP, XREAD BLOCK, WAIT...): zero when
  /// one blocks without a limit, nullopt when none blocks.
  std::optional<std::chrono::milliseconds> block_time() const noexcept {
    if (block_ms_ < 0) return std::nullopt;
    return std::chrono::milliseconds(block_ms_);
  }
  /// True when it holds MULTI, EXEC or DISCARD: the replies between them are `+QUEUED`.
  bool has_transaction_commands() const noexcept { return transaction_; }
  /// Where they are, what confirms them, and how many confirmations each gets: one per
  /// name, as the server sends them. A refused one gets an error reply instead.
  const std::vector<out_of_band_command>& out_of_band() const noexcept { return out_of_band_; }

  const config& get_config() const noexcept { return config_; }
  config& get_config() noexcept { return config_; }

  /// Forgets the commands, keeps the buffer's capacity. Up to
  /// detail::small_buffer::inline_size bytes (a GET, a SET of a short value) the buffer is
  /// inside the request: a request that small allocates nothing.
  void clear() noexcept;
  void reserve(std::size_t bytes) { payload_.reserve(bytes); }

 private:
  // Both push overloads: `Name` is std::string_view or command_name, which begin_command
  // takes apart.
  template <class Name, class... Args>
  void push_command(const Name& command, const Args&... args) {
    begin_command(command, 1 + (detail::arg_count(args) + ... + std::size_t{0}));
    arg_sink sink(&payload_);
    (sink.add(args), ...);
    end_command(sink);
  }
  void begin_command(std::string_view command, std::size_t args);
  void begin_command(const command_name& command, std::size_t args);
  // The start of a command's place and its array header; the name's bulk comes next.
  void open_command(std::uint8_t id, std::size_t args);
  // After the name: the out-of-band command it is, if it is one.
  void note_out_of_band(std::optional<pubsub_kind> kind, std::size_t args);
  // The command begun last is complete, its arguments written by `args`: note its size, its
  // first argument and, when it blocks, its block time.
  void end_command(const arg_sink& args) noexcept;
  command_place& new_place();
  void merge_block(std::int64_t ms) noexcept {
    // Zero (no limit) outranks every limit.
    if (ms < 0 || block_ms_ == 0) return;
    block_ms_ = block_ms_ < 0 || ms == 0 ? ms : std::max(block_ms_, ms);
  }
  // Reads "<prefix><n>\r\n" at pos.
  static bool read_header(std::string_view bytes, std::size_t& pos, char prefix,
                          std::size_t& n) noexcept;

  detail::small_buffer payload_;
  std::size_t commands_ = 0;
  std::vector<out_of_band_command> out_of_band_;  // empty but for (un)subscribing requests
  // One place per command; the first is kept inline, so a request of one command allocates
  // nothing for it.
  command_place first_place_;
  std::vector<command_place> more_places_;
  std::int64_t block_ms_ = -1;  // see block_time(); -1: none
  bool transaction_ = false;
  config config_;
};

}  // namespace redcoro::proto
