#pragma once

#include <redcoro/proto/error.hpp>
#include <redcoro/proto/node.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace redcoro::proto {

namespace detail {
struct decimal;  // a scanned decimal header (parser.cpp)
}  // namespace detail

/// Bounds the parser enforces on untrusted input. Each violation is its own error.
struct parser_config {
  /// Nested aggregates (attributes and streamed strings included). Redis replies nest a
  /// handful of levels; scripts and modules can go deeper.
  std::size_t max_depth = 256;
  /// Longest blob string, blob error, verbatim string or streamed chunk, in bytes. The
  /// server's own default `proto-max-bulk-len` is 512 MiB. At most `SIZE_MAX - 2` (the
  /// parser clamps larger values), so that a blob and its CRLF fit in `std::size_t`.
  std::size_t max_blob_length = std::size_t{512} * 1024 * 1024;
  /// Largest element count announced by an aggregate header (pairs for maps). At most
  /// `SIZE_MAX / 2` (the parser clamps larger values): a map's elements are twice its pairs,
  /// and no count may read as node::unbounded.
  std::size_t max_aggregate_size = std::size_t{0xffffffff};
  /// Longest line, CRLF excluded: simple strings, simple errors, doubles, big numbers,
  /// booleans, and the sign and digits of numbers and of length and count headers (leading
  /// zeros included).
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
/// again, and the parser resumes where it stopped, so an element split into many pieces costs
/// work linear in its length.
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
  parser() : parser(parser_config{}) {}
  explicit parser(const parser_config& limits);

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

  /// The same, compiled for the sink's own type: the parse loop calls `sink` directly, which
  /// the compiler can inline, instead of through node_sink's function pointer. A lambda or
  /// any other callable taking `const node&` picks this overload.
  template <class Sink>
  requires(!std::is_same_v<std::remove_cvref_t<Sink>, node_sink> &&
           std::is_invocable_v<Sink&, const node&>) bool consume_message(std::string_view input,
                                                                         std::size_t& pos,
                                                                         Sink&& sink,
                                                                         std::error_code& ec) {
    return message_loop(input, pos, sink, ec);
  }

  /// True once the last consume() completed a top-level element (attributes before it do not
  /// count as one).
  bool done() const noexcept { return done_; }

  /// Depth of the element the next node belongs to (0 between messages).
  std::size_t depth() const noexcept { return top_; }

  /// Forgets any partial message and error.
  void reset() noexcept;

  /// While a blob (blob string, blob error, verbatim string, streamed chunk) is incomplete:
  /// the bytes it still needs counted from where its body starts (the `pos` consume() left),
  /// its CRLF included; otherwise 0. A reader makes room for this much at once instead of
  /// growing its buffer step by step.
  std::size_t pending_body() const noexcept { return state_ == state::body ? body_size_ : 0; }

  /// The limits in effect: those given to the constructor, clamped as parser_config says.
  const parser_config& limits() const noexcept { return limits_; }

  /// Bytes examined while parsing lines and headers that arrived in more than one piece,
  /// summed over the calls that saw part of them. Lines and headers parsed in one call are
  /// not counted (each call examines their bytes once, and counting would cost the hot path).
  /// A statistic for tests and diagnostics: it grows linearly with the input however the
  /// input is split.
  std::size_t bytes_examined() const noexcept { return examined_; }

 private:
  struct frame {
    std::size_t remaining;  // elements still expected; for streamed frames, elements seen
    type data_type;
    bool streamed;
    // Streamed frames: an attribute ended and the element it describes has not, so the frame
    // cannot end yet. (A counted frame cannot end before its elements anyway.)
    bool attribute_pending;
  };

  // line: a line or header begun by an earlier call; scanned_ bytes of it were examined.
  enum class state : std::uint8_t { element, line, body, failed };

  std::optional<node> next(std::string_view input, std::size_t& pos, std::error_code& ec) noexcept;
  // Both consume_message()s (detail/parse_loop.hpp).
  template <class Sink>
  bool message_loop(std::string_view input, std::size_t& pos, Sink& sink, std::error_code& ec);
  std::optional<node> fail(std::error_code& ec, error e) noexcept;
  std::optional<node> parse_body(std::string_view input, std::size_t& pos,
                                 std::error_code& ec) noexcept;
  // A line of type `c` at pos, searched from byte `from` of its text.
  std::optional<node> line(char c, const char* base, std::size_t size, std::size_t& pos,
                           std::size_t from, std::error_code& ec) noexcept;
  std::optional<node> suspend_line(std::size_t scanned, std::size_t from) noexcept;
  // The end of state::line.
  std::optional<node> resume(std::string_view input, std::size_t& pos,
                             std::error_code& ec) noexcept;
  // A header scan that failed or ran out of input.
  std::optional<node> header_incomplete(error err, std::size_t next, std::uint64_t value,
                                        std::size_t pos, std::size_t from,
                                        std::error_code& ec) noexcept;
  // What a complete header yields, by type byte (the chunk terminator ";0" aside).
  std::optional<node> number(const char* base, std::size_t& pos, const detail::decimal& d,
                             std::error_code& ec) noexcept;
  std::optional<node> string_header(char c, std::string_view input, std::size_t& pos,
                                    const detail::decimal& d, std::error_code& ec) noexcept;
  bool end_streamed_string(std::size_t next, std::size_t& pos) noexcept;
  bool end_aggregate(const char* base, std::size_t size, std::size_t& pos,
                     std::error_code& ec) noexcept;
  std::optional<node> aggregate_header(char c, std::size_t& pos, const detail::decimal& d,
                                       std::error_code& ec) noexcept;
  // An element at the current level is complete. Inline for the common case; closing
  // finished frames is out of line.
  void element_done() noexcept;
  void attribute_done() noexcept;
  void close_frames() noexcept;
  bool push_frame(type t, std::size_t count, bool streamed) noexcept;
  // The node of a simple element, which this completes.
  std::optional<node> complete(type t, std::string_view value) noexcept;
  // The node of an aggregate header, before its frame is pushed.
  std::optional<node> header(type t, std::size_t size) const noexcept;

  parser_config limits_;
  std::unique_ptr<frame[]> stack_;
  std::size_t unchecked_digits_;    // digits of a header that need no overflow or limit check
  std::size_t top_ = 0;             // frames in use
  std::size_t attributes_ = 0;      // attribute frames among them
  std::size_t body_size_ = 0;       // state::body: the blob's length plus its CRLF
  std::size_t scanned_ = 0;         // state::line: bytes of the line's text examined
  std::uint64_t header_value_ = 0;  // state::line: the value of a header's digits so far
  std::size_t examined_ = 0;        // see bytes_examined()
  std::error_code error_;
  type body_type_ = type::blob_string;
  state state_ = state::element;
  bool done_ = false;
  bool in_streamed_string_ = false;  // the top frame is a streamed string
};

}  // namespace redcoro::proto

// The hot path, inline, for consume_message()'s template.
#include <redcoro/proto/detail/parse_loop.hpp>  // IWYU pragma: export
