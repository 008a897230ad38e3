#pragma once

// The parse loop's hot path, inline: included at the end of parser.hpp, so that
// parser::consume_message() is compiled for each sink type that calls it, with the sink's call
// inlined into the loop. The rare paths (a line or header split across calls, streamed
// aggregates, errors) stay out of line, in parser.cpp.

#include <redcoro/proto/error.hpp>
#include <redcoro/proto/node.hpp>
#include <redcoro/proto/parser.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

namespace redcoro::proto {

namespace detail {

// Outcome of scanning a decimal header such as "123\r\n" or "?\r\n".
struct decimal {
  std::uint64_t magnitude = 0;
  // ok: index just past the CRLF. need_more: where a resumed scan continues, with
  // `magnitude` the value of the digits before it.
  std::size_t next = 0;
  bool negative = false;  // a leading '-'
  bool unknown = false;   // "?": streamed
  error err = {};         // the scan failed
};

enum class scan : std::uint8_t { ok, need_more, failed };

// PERF NOTES: headers and numbers are parsed in one pass over their digits instead of a
// memchr for CR followed by a conversion; replies are dominated by short headers ("$32",
// ":1", "*10"), where the second pass would cost as much as the first.
// Digits are accumulated with overflow builtins: one flag check per digit, no division.
// A header that arrives in pieces is not rescanned: the scan stops at the end of the input,
// the parser keeps where it stopped and the value so far (state::line), and the next call
// continues from there through resume(). Complete headers take the same inlined scan with
// nothing to resume, which the compiler folds away, and never look at the line limit: their
// first digits need no check (see scan_decimal).

// Which leading characters a decimal header accepts besides digits.
struct decimal_rules {
  bool minus;    // "-1" for RESP2 nulls, or a negative number
  bool plus;     // a leading '+' (numbers only)
  bool unknown;  // "?" for streamed types
  error invalid;
  error overflow;
};

constexpr decimal_rules length_rules{false, false, false, error::invalid_length,
                                     error::length_overflow};
constexpr decimal_rules number_rules{true, true, false, error::invalid_number,
                                     error::number_overflow};

// The rules of the header starting with `c`.
constexpr decimal_rules rules_for(char c) noexcept {
  if (c == ':') return number_rules;
  decimal_rules r = length_rules;
  r.minus = c == '$' || c == '*';
  r.unknown = c != '!' && c != '=' && c != ';';
  return r;
}

// Scans the header whose text starts at `content`. A resumed scan passes the offset `from`
// (from `content`) of the first byte not yet examined and `v`, the value of the digits before
// it; a fresh scan passes 0 and 0. The text may be `limit` bytes long before its CR.
// The first `unchecked` digits (19 always fit in 64 bits; no more than `limit`) are taken
// without a check. Only a header with more digits (or with a sign and exactly `limit`
// digits) reaches the checked loop, which stops at the limit: so an endless header is cut
// short, and whether it fails as too long or as overflowing does not depend on where the
// input was split.
[[gnu::always_inline]] inline scan scan_decimal(const char* base, std::size_t size,
                                                std::size_t content, std::size_t from,
                                                std::uint64_t v, std::size_t limit,
                                                std::size_t unchecked, const decimal_rules& rules,
                                                decimal& out) noexcept {
  std::size_t i = content;
  if (i >= size) {
    out.next = content;
    return scan::need_more;
  }
  if (rules.unknown && base[i] == '?') {
    // Three bytes at most: a resumed "?" header is simply scanned again.
    out.next = content;
    if (i + 1 >= size) return scan::need_more;
    if (base[i + 1] != '\r') {
      out.err = rules.invalid;
      return scan::failed;
    }
    if (i + 2 >= size) return scan::need_more;
    if (base[i + 2] != '\n') {
      out.err = error::missing_crlf;
      return scan::failed;
    }
    out.unknown = true;
    out.next = i + 3;
    return scan::ok;
  }
  if ((rules.minus && base[i] == '-') || (rules.plus && base[i] == '+')) {
    out.negative = base[i] == '-';
    ++i;
  }
  const std::size_t first_digit = i;
  // A resumed scan stopped after the sign, if any.
  if (from != 0) i = content + from;
  const std::size_t fast_end = std::min(size, first_digit + unchecked);
  for (; i < fast_end; ++i) {
    const unsigned d = static_cast<unsigned char>(base[i]) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
  }
  if (i >= fast_end && i < size) [[unlikely]] {
    const std::size_t stop = size - content > limit ? content + limit + 1 : size;
    bool overflow = false;
    for (; i < stop; ++i) {
      const unsigned d = static_cast<unsigned char>(base[i]) - unsigned{'0'};
      if (d > 9) break;
      overflow |= __builtin_mul_overflow(v, 10u, &v);
      overflow |= __builtin_add_overflow(v, d, &v);
      if (overflow) {
        out.err = rules.overflow;
        return scan::failed;
      }
    }
    // Checked before the byte that ended the digits: a header too long is too long whatever
    // follows, and whether that byte has arrived yet.
    if (i - content > limit) {
      out.err = error::line_too_long;
      return scan::failed;
    }
  }
  if (i >= size) {
    out.magnitude = v;
    out.next = i;
    return scan::need_more;
  }
  if (i == first_digit || base[i] != '\r') {
    out.err = rules.invalid;
    return scan::failed;
  }
  if (i + 1 >= size) {
    out.magnitude = v;
    out.next = i;
    return scan::need_more;
  }
  if (base[i + 1] != '\n') {
    out.err = error::missing_crlf;
    return scan::failed;
  }
  out.magnitude = v;
  out.next = i + 2;
  return scan::ok;
}

// Out of line, in parser.cpp: the slow part of parser::line() (the first CR or LF in
// [p, end), or nullptr; the bytes before `quick_end` are short enough for a byte loop) and the
// checks of rare line types.
const char* find_line_end(const char* p, const char* quick_end, const char* end) noexcept;
bool valid_double(std::string_view s) noexcept;
bool valid_big_number(std::string_view s) noexcept;

}  // namespace detail

// PERF: the helpers below are forced inline: consume_message() is large enough that the
// compiler's heuristics would otherwise leave some of them as calls, at a cost per node.
[[gnu::always_inline]] inline void parser::element_done() noexcept {
  if (top_ == 0) {
    done_ = true;
    return;
  }
  frame& f = stack_[top_ - 1];
  if (f.streamed) {
    ++f.remaining;
    f.attribute_pending = false;
    return;
  }
  if (--f.remaining == 0) close_frames();
}

// Completing may close frames, so depth and attribute flag are read first.
// PERF: the node is built in place in the caller's return slot; assembling it on the stack
// and copying it out cost a store-forwarding stall per node.
[[gnu::always_inline]] inline std::optional<node> parser::complete(
    type t, std::string_view value) noexcept {
  const auto depth = static_cast<std::uint32_t>(top_);
  const bool attribute = attributes_ != 0;
  element_done();
  return std::optional<node>(std::in_place, t, attribute, depth, std::size_t{1}, value);
}

[[gnu::always_inline]] inline std::optional<node> parser::header(type t,
                                                                 std::size_t size) const noexcept {
  return std::optional<node>(std::in_place, t, attributes_ != 0 || t == type::attribute,
                             static_cast<std::uint32_t>(top_), size, std::string_view{});
}

// Inline so that consume() completes buffered blobs without a call.
[[gnu::always_inline]] inline std::optional<node> parser::parse_body(std::string_view input,
                                                                     std::size_t& pos,
                                                                     std::error_code& ec) noexcept {
  const std::size_t size = input.size();
  if (size - pos < body_size_) return std::nullopt;
  const char* const base = input.data();
  const std::size_t end = pos + body_size_ - 2;  // the CR
  if (base[end] != '\r' || base[end + 1] != '\n') return fail(ec, error::missing_crlf);
  std::string_view value(base + pos, body_size_ - 2);
  if (body_type_ == type::verbatim_string) {
    if (value[3] != ':') return fail(ec, error::invalid_verbatim);
    value.remove_prefix(4);
  }
  pos = end + 2;
  state_ = state::element;
  return complete(body_type_, value);
}

[[gnu::always_inline]] inline std::optional<node> parser::line(char c, const char* base,
                                                               std::size_t size, std::size_t& pos,
                                                               std::size_t from,
                                                               std::error_code& ec) noexcept {
  // A line: everything up to CRLF. The specification forbids CR and LF inside it: a lone CR
  // or LF is a line end without its CRLF.
  const std::size_t content = pos + 1;
  const std::size_t available = size - content;
  // The CR may sit just after a line of exactly max_line_length bytes.
  const std::size_t searchable =
      limits_.max_line_length < available ? limits_.max_line_length + 1 : available;
  const char* p = base + content + from;
  const char* const end = base + content + searchable;
  const char* const quick_end = end - p > 16 ? p + 16 : end;
  // PERF: most lines are a few bytes ("+OK"); a byte loop finds their CR faster than a call
  // to memchr. One comparison per byte stops at CR and LF alike: it stops at any byte up to
  // CR (13), LF (10) included. Anything but a CR there (an LF, a rarer control byte such as a
  // tab, the end of the quick part) is left to find_line_end(), out of line.
  const char* cr = p;
  while (cr != quick_end && static_cast<unsigned char>(*cr) > '\r')
    ++cr;
  if (cr == quick_end || *cr != '\r') [[unlikely]] {
    cr = detail::find_line_end(cr, quick_end, end);
    if (cr != nullptr && *cr == '\n') return fail(ec, error::missing_crlf);
  }
  if (cr == nullptr) {
    if (available > limits_.max_line_length) return fail(ec, error::line_too_long);
    return suspend_line(available, from);
  }
  const auto cr_at = static_cast<std::size_t>(cr - base);
  if (cr_at + 1 >= size) return suspend_line(cr_at - content, from);
  if (base[cr_at + 1] != '\n') return fail(ec, error::missing_crlf);
  const std::string_view text(base + content, cr_at - content);
  type t;
  switch (c) {
    case '+':
      t = type::simple_string;
      break;
    case '-':
      t = type::simple_error;
      break;
    case ',':
      if (!detail::valid_double(text)) return fail(ec, error::invalid_double);
      t = type::double_;
      break;
    case '(':
      if (!detail::valid_big_number(text)) return fail(ec, error::invalid_big_number);
      t = type::big_number;
      break;
    case '#':
      if (text != "t" && text != "f") return fail(ec, error::invalid_boolean);
      t = type::boolean;
      break;
    default:
      if (!text.empty()) return fail(ec, error::invalid_null);
      t = type::null;
      break;
  }
  pos = cr_at + 2;
  return complete(t, text);
}

[[gnu::always_inline]] inline std::optional<node> parser::number(const char* base, std::size_t& pos,
                                                                 const detail::decimal& d,
                                                                 std::error_code& ec) noexcept {
  const std::uint64_t limit = d.negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
  if (d.magnitude > limit) return fail(ec, error::number_overflow);
  const std::string_view text(base + pos + 1, d.next - pos - 3);
  pos = d.next;
  return complete(type::number, text);
}

// The chunk terminator ";0": the streamed string is complete, as one element of its parent.
// True if that completed the message.
[[gnu::always_inline]] inline bool parser::end_streamed_string(std::size_t next,
                                                               std::size_t& pos) noexcept {
  pos = next;
  --top_;
  in_streamed_string_ = false;
  element_done();
  return done_;
}

[[gnu::always_inline]] inline std::optional<node> parser::string_header(
    char c, std::string_view input, std::size_t& pos, const detail::decimal& d,
    std::error_code& ec) noexcept {
  if (d.negative) {
    // RESP2's null bulk string "$-1".
    if (d.magnitude != 1) return fail(ec, error::invalid_length);
    pos = d.next;
    return complete(type::null, {});
  }
  if (d.unknown) {
    auto n = header(type::streamed_string, node::unbounded);
    if (!push_frame(type::streamed_string, 0, true)) return fail(ec, error::nesting_too_deep);
    pos = d.next;
    return n;
  }
  if (d.magnitude > limits_.max_blob_length) return fail(ec, error::blob_too_large);
  if (c == '=' && d.magnitude < 4) return fail(ec, error::invalid_verbatim);
  // The one place a blob length from the wire meets an addition. The clamp on
  // max_blob_length already keeps it from wrapping; checked all the same, since a wrapped
  // size would pass the comparison below and read far past the input.
  if (__builtin_add_overflow(d.magnitude, std::uint64_t{2}, &body_size_))
    return fail(ec, error::length_overflow);
  pos = d.next;
  body_type_ = c == '$'   ? type::blob_string
               : c == '!' ? type::blob_error
               : c == '=' ? type::verbatim_string
                          : type::streamed_string_part;
  if (input.size() - pos < body_size_) {
    state_ = state::body;
    return std::nullopt;
  }
  return parse_body(input, pos, ec);
}

[[gnu::always_inline]] inline std::optional<node> parser::aggregate_header(
    char c, std::size_t& pos, const detail::decimal& d, std::error_code& ec) noexcept {
  if (d.negative) {
    // RESP2's null multi-bulk "*-1".
    if (d.magnitude != 1) return fail(ec, error::invalid_length);
    pos = d.next;
    return complete(type::null, {});
  }
  const type t = c == '*'   ? type::array
                 : c == '%' ? type::map
                 : c == '~' ? type::set
                 : c == '>' ? type::push
                            : type::attribute;
  const std::size_t multiplicity = element_multiplicity(t);
  std::size_t count = 0;
  if (!d.unknown) {
    if (d.magnitude > limits_.max_aggregate_size) return fail(ec, error::aggregate_too_large);
    // Checked like a blob's size, though the clamp on max_aggregate_size keeps it in range.
    if (__builtin_mul_overflow(d.magnitude, multiplicity, &count))
      return fail(ec, error::length_overflow);
  }
  auto n = header(t, d.unknown ? node::unbounded : static_cast<std::size_t>(d.magnitude));
  pos = d.next;
  if (count == 0 && !d.unknown) {
    // Empty aggregate: complete at once. An empty attribute describes nothing, but an element
    // must still follow it, as after any attribute.
    if (t != type::attribute)
      element_done();
    else
      attribute_done();
    return n;
  }
  if (!push_frame(t, count, d.unknown)) return fail(ec, error::nesting_too_deep);
  return n;
}

// PERF NOTES: one body for both entry points. consume_message() inlines it into its loop,
// which saves a call and the optional<node> round trip through memory per node: about a
// fifth of the time per reply on the proto benchmark's mix.
// Every state but `element` is rare (an element split across calls, or a failed parser), so
// one comparison routes them all out of the way.
[[gnu::always_inline]] inline std::optional<node> parser::next(std::string_view input,
                                                               std::size_t& pos,
                                                               std::error_code& ec) noexcept {
  if (state_ != state::element) [[unlikely]] {
    if (state_ == state::failed) {
      ec = error_;
      return std::nullopt;
    }
    done_ = false;
    if (state_ == state::body) return parse_body(input, pos, ec);
    return resume(input, pos, ec);
  }
  done_ = false;
  const char* const base = input.data();
  const std::size_t size = input.size();
  for (;;) {
    if (pos >= size) return std::nullopt;
    const char c = base[pos];
    if (in_streamed_string_ != (c == ';')) [[unlikely]]
      return fail(ec, error::invalid_chunk);

    switch (c) {
      case '+':
      case '-':
      case ',':
      case '(':
      case '#':
      case '_':
        return line(c, base, size, pos, 0, ec);

      case ':': {
        detail::decimal d;
        if (detail::scan_decimal(base, size, pos + 1, 0, 0, limits_.max_line_length,
                                 unchecked_digits_, detail::number_rules, d) != detail::scan::ok)
            [[unlikely]]
          return header_incomplete(d.err, d.next, d.magnitude, pos, 0, ec);
        return number(base, pos, d, ec);
      }

      case '$':
      case '!':
      case '=':
      case ';': {
        detail::decimal d;
        detail::decimal_rules rules =
            detail::length_rules;  // rules_for(c), from what this case knows
        rules.minus = rules.unknown = c == '$';
        if (detail::scan_decimal(base, size, pos + 1, 0, 0, limits_.max_line_length,
                                 unchecked_digits_, rules, d) != detail::scan::ok) [[unlikely]]
          return header_incomplete(d.err, d.next, d.magnitude, pos, 0, ec);
        // PERF: the chunk terminator is handled here, where it can go on to the next element,
        // so that string_header() builds its node straight into the return slot.
        if (c == ';' && d.magnitude == 0) {
          if (end_streamed_string(d.next, pos)) return std::nullopt;
          continue;
        }
        return string_header(c, input, pos, d, ec);
      }

      case '*':
      case '%':
      case '~':
      case '>':
      case '|': {
        detail::decimal d;
        detail::decimal_rules rules =
            detail::length_rules;  // rules_for(c), from what this case knows
        rules.minus = c == '*';
        rules.unknown = true;
        if (detail::scan_decimal(base, size, pos + 1, 0, 0, limits_.max_line_length,
                                 unchecked_digits_, rules, d) != detail::scan::ok) [[unlikely]]
          return header_incomplete(d.err, d.next, d.magnitude, pos, 0, ec);
        return aggregate_header(c, pos, d, ec);
      }

      case '.':
        if (!end_aggregate(base, size, pos, ec)) return std::nullopt;
        continue;

      default:
        return fail(ec, error::invalid_data_type);
    }
  }
}

template <class Sink>
bool parser::message_loop(std::string_view input, std::size_t& pos, Sink& sink,
                          std::error_code& ec) {
  for (;;) {
    const auto n = next(input, pos, ec);
    if (n) sink(*n);
    if (done_) return true;
    if (!n) return false;  // need more, or ec is set
  }
}

}  // namespace redcoro::proto
