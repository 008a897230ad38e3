#pragma once

#include <redcoro/proto/error.hpp>
#include <redcoro/proto/node.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace redcoro::proto {

/// Bounds the parser enforces on untrusted input. Each violation is its own error.
struct parser_limits {
  /// Nested aggregates (attributes and streamed strings included). Redis replies nest a
  /// handful of levels; scripts and modules can go deeper.
  std::size_t max_depth = 256;
  /// Longest blob string, blob error, verbatim string or streamed chunk, in bytes. The
  /// server's own default `proto-max-bulk-len` is 512 MiB.
  std::size_t max_blob_length = std::size_t{512} * 1024 * 1024;
  /// Largest element count announced by an aggregate header (pairs for maps).
  std::size_t max_aggregate_size = std::size_t{0xffffffff};
  /// Longest line: simple strings, simple errors, doubles, big numbers and headers.
  std::size_t max_line_length = std::size_t{1024} * 1024;
};

/// A non-owning reference to a callable taking `const node&`: two pointers, no allocation.
/// The callable must outlive the call it is passed to.
class node_sink {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, node_sink> &&
           std::is_invocable_v<F&, const node&>) node_sink(F& f)
  noexcept  // NOLINT(google-explicit-constructor): used like a function_ref
      : object_(static_cast<const void*>(std::addressof(f))),
        call_([](const void* o, const node& n) { (*static_cast<F*>(const_cast<void*>(o)))(n); }) {}

  void operator()(const node& n) const { call_(object_, n); }

 private:
  const void* object_;  // an F, const-qualified or not
  void (*call_)(const void*, const node&);
};

/// An incremental RESP3 (and RESP2) parser.
///
/// The parser keeps only counters: it never copies payload bytes, never allocates while
/// parsing (its nesting stack is allocated once, from the limits) and never reads past the
/// input it is given. Input may be split at any byte; the caller appends bytes and calls
/// again.
///
/// \code
///   std::size_t pos = 0;
///   for (;;) {
///     auto n = p.consume(buffer, pos, ec);
///     if (ec) break;                    // malformed input; see proto::error
///     if (n) use(*n);                   // a node, views into `buffer`
///     if (p.done()) message_complete(); // the top-level element is complete
///     else if (!n) read_more();         // need more input
///   }
/// \endcode
class parser {
 public:
  parser() : parser(parser_limits{}) {}
  explicit parser(const parser_limits& limits);

  parser(parser&&) noexcept = default;
  parser& operator=(parser&&) noexcept = default;

  /// Parses the next node of `input` starting at `pos` and advances `pos` past every byte
  /// it used. Returns:
  ///  - a node: its views point into `input`;
  ///  - nullopt with `ec` clear: either more input is needed, or a terminator (`;0` or `.`)
  ///    completed the message, in which case done() is true;
  ///  - nullopt with `ec` set: the input is malformed. The parser stays failed and returns
  ///    the same error until reset().
  /// After done() became true, the next call starts a new top-level message.
  std::optional<node> consume(std::string_view input, std::size_t& pos,
                              std::error_code& ec) noexcept;

  /// Parses nodes of `input` from `pos` and passes each to `sink`, until the current top-level
  /// message is complete (returns true; done() is true too), the input runs out (returns
  /// false with `ec` clear: append input and call again) or the input is malformed (returns
  /// false with `ec` set). Equivalent to calling consume() in a loop, and faster: this is the
  /// loop the connection's reader runs. Exceptions thrown by `sink` propagate; the parser is
  /// then positioned after the node that was being delivered.
  bool consume_message(std::string_view input, std::size_t& pos, node_sink sink,
                       std::error_code& ec);

  /// True once the last consume() completed a top-level element (attributes before it do not
  /// count as one).
  bool done() const noexcept { return done_; }

  /// Depth of the element the next node belongs to (0 between messages).
  std::size_t depth() const noexcept { return top_; }

  /// Forgets any partial message and error.
  void reset() noexcept;

  const parser_limits& limits() const noexcept { return limits_; }

 private:
  struct frame {
    std::size_t remaining;  // elements still expected; for streamed frames, elements seen
    type data_type;
    bool streamed;
  };

  enum class state : std::uint8_t { element, body, failed };

  std::optional<node> next(std::string_view input, std::size_t& pos, std::error_code& ec) noexcept;
  std::optional<node> fail(std::error_code& ec, error e) noexcept;
  std::optional<node> parse_body(std::string_view input, std::size_t& pos,
                                 std::error_code& ec) noexcept;
  // An element at the current level is complete. Inline for the common case; closing
  // finished frames is out of line.
  void element_done() noexcept {
    if (top_ == 0) {
      done_ = true;
      return;
    }
    frame& f = stack_[top_ - 1];
    if (f.streamed) {
      ++f.remaining;
      return;
    }
    if (--f.remaining == 0) close_frames();
  }
  void close_frames() noexcept;
  bool push_frame(type t, std::size_t count, bool streamed) noexcept;
  // The node of a simple element, which this completes (possibly closing frames, so depth
  // and attribute flag are read first).
  // PERF: the node is built in place in the caller's return slot; assembling it on the stack
  // and copying it out cost a store-forwarding stall per node.
  std::optional<node> complete(type t, std::string_view value) noexcept {
    const auto depth = static_cast<std::uint32_t>(top_);
    const bool attribute = attributes_ != 0;
    element_done();
    return std::optional<node>(std::in_place, t, attribute, depth, std::size_t{1}, value);
  }
  // The node of an aggregate header, before its frame is pushed.
  std::optional<node> header(type t, std::size_t size) const noexcept {
    return std::optional<node>(std::in_place, t, attributes_ != 0 || t == type::attribute,
                               static_cast<std::uint32_t>(top_), size, std::string_view{});
  }

  parser_limits limits_;
  std::unique_ptr<frame[]> stack_;
  std::size_t top_ = 0;         // frames in use
  std::size_t attributes_ = 0;  // attribute frames among them
  std::size_t body_length_ = 0;
  std::size_t scanned_ = 0;  // bytes of the current line already searched for CR
  std::error_code error_;
  type body_type_ = type::blob_string;
  state state_ = state::element;
  bool done_ = false;
  bool in_streamed_string_ = false;  // the top frame is a streamed string
};

}  // namespace redcoro::proto
