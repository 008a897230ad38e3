#include <redcoro/proto/error.hpp>
#include <redcoro/proto/parser.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace redcoro::proto {
namespace {

// Outcome of scanning a decimal header such as "123\r\n" or "?\r\n".
enum class scan : std::uint8_t { ok, need_more, failed };

struct decimal {
  std::uint64_t magnitude = 0;
  std::size_t next = 0;   // index just past the CRLF
  bool negative = false;  // a leading '-'
  bool unknown = false;   // "?": streamed
  error err = {};
};

// PERF NOTES: headers and numbers are parsed in one pass over their digits instead of a
// memchr for CR followed by a conversion; replies are dominated by short headers ("$32",
// ":1", "*10"), where the second pass would cost as much as the first.
// Digits are accumulated with overflow builtins: one flag check per digit, no division.
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

[[gnu::always_inline]] inline scan scan_decimal(const char* base, std::size_t size, std::size_t at,
                                                const decimal_rules& rules, decimal& out) noexcept {
  std::size_t i = at;
  if (i >= size) return scan::need_more;
  if (rules.unknown && base[i] == '?') {
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
  std::uint64_t v = 0;
  // 19 digits always fit in 64 bits; only longer runs need an overflow check.
  const std::size_t fast_end = std::min(size, first_digit + 19);
  for (; i < fast_end; ++i) {
    const unsigned d = static_cast<unsigned char>(base[i]) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
  }
  if (i == fast_end && i < size) {
    bool overflow = false;
    for (; i < size; ++i) {
      const unsigned d = static_cast<unsigned char>(base[i]) - unsigned{'0'};
      if (d > 9) break;
      overflow |= __builtin_mul_overflow(v, 10u, &v);
      overflow |= __builtin_add_overflow(v, d, &v);
      if (overflow) {
        out.err = rules.overflow;
        return scan::failed;
      }
    }
  }
  if (i >= size) return scan::need_more;
  if (i == first_digit || base[i] != '\r') {
    out.err = rules.invalid;
    return scan::failed;
  }
  if (i + 1 >= size) return scan::need_more;
  if (base[i + 1] != '\n') {
    out.err = error::missing_crlf;
    return scan::failed;
  }
  out.magnitude = v;
  out.next = i + 2;
  return scan::ok;
}

bool valid_double(std::string_view s) noexcept {
  const char* b = s.data();
  const char* const e = b + s.size();
  if (b != e && *b == '+') {
    ++b;
    if (b != e && *b == '-') return false;
  }
  if (b == e) return false;
  double d;
  const auto r = std::from_chars(b, e, d);
  // Out-of-range exponents ("1e999") are well-formed doubles; the adapter saturates them.
  return r.ptr == e && (r.ec == std::errc{} || r.ec == std::errc::result_out_of_range);
}

bool valid_big_number(std::string_view s) noexcept {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

parser::parser(const parser_limits& limits)
    : limits_(limits),
      stack_(std::make_unique<frame[]>(std::max<std::size_t>(1, limits.max_depth))) {}

void parser::reset() noexcept {
  top_ = 0;
  attributes_ = 0;
  body_length_ = 0;
  scanned_ = 0;
  error_ = {};
  state_ = state::element;
  done_ = false;
  in_streamed_string_ = false;
}

std::optional<node> parser::fail(std::error_code& ec, error e) noexcept {
  state_ = state::failed;
  error_ = e;
  ec = e;
  return std::nullopt;
}

void parser::close_frames() noexcept {
  // The top frame has all its elements; it counts as one element of its parent, which may
  // complete in turn.
  for (;;) {
    const frame& f = stack_[--top_];
    // An attribute is not an element of its parent: the element it describes follows.
    if (f.data_type == type::attribute) {
      --attributes_;
      return;
    }
    if (top_ == 0) {
      done_ = true;
      return;
    }
    frame& parent = stack_[top_ - 1];
    if (parent.streamed) {
      ++parent.remaining;
      return;
    }
    if (--parent.remaining != 0) return;
  }
}

bool parser::push_frame(type t, std::size_t count, bool streamed) noexcept {
  if (top_ >= limits_.max_depth) return false;
  stack_[top_++] = frame{count, t, streamed};
  if (t == type::attribute) ++attributes_;
  if (t == type::streamed_string) in_streamed_string_ = true;
  return true;
}

// Inline so that consume() completes buffered blobs without a call.
inline std::optional<node> parser::parse_body(std::string_view input, std::size_t& pos,
                                              std::error_code& ec) noexcept {
  const std::size_t size = input.size();
  if (size - pos < body_length_ + 2) return std::nullopt;
  const char* const base = input.data();
  const std::size_t end = pos + body_length_;
  if (base[end] != '\r' || base[end + 1] != '\n') return fail(ec, error::missing_crlf);
  std::string_view value(base + pos, body_length_);
  if (body_type_ == type::verbatim_string) {
    if (value[3] != ':') return fail(ec, error::invalid_verbatim);
    value.remove_prefix(4);
  }
  pos = end + 2;
  state_ = state::element;
  return complete(body_type_, value);
}

// PERF NOTES: one body for both entry points. consume_message() inlines it into its loop,
// which saves a call and the optional<node> round trip through memory per node: about a
// fifth of the time per reply on the proto benchmark's mix.
[[gnu::always_inline]] inline std::optional<node> parser::next(std::string_view input,
                                                               std::size_t& pos,
                                                               std::error_code& ec) noexcept {
  if (state_ == state::failed) {
    ec = error_;
    return std::nullopt;
  }
  done_ = false;
  if (state_ == state::body) return parse_body(input, pos, ec);
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
      case '_': {
        // A line: everything up to CRLF. Remember how far a previous call searched, so a
        // long line arriving in many pieces is scanned once.
        const std::size_t content = pos + 1;
        const std::size_t available = size - content;
        // The CR may sit just after a line of exactly max_line_length bytes.
        const std::size_t searchable =
            limits_.max_line_length < available ? limits_.max_line_length + 1 : available;
        if (scanned_ > searchable) scanned_ = 0;
        // PERF: most lines are a few bytes ("+OK"); a byte loop finds their CR faster than
        // a call to memchr, which takes over for long lines.
        const char* p = base + content + scanned_;
        const char* const end = base + content + searchable;
        const char* const quick_end = end - p > 16 ? p + 16 : end;
        while (p != quick_end && *p != '\r')
          ++p;
        const void* cr = p != quick_end ? p
                         : p == end     ? nullptr
                                        : std::memchr(p, '\r', static_cast<std::size_t>(end - p));
        if (cr == nullptr) {
          if (available > limits_.max_line_length) return fail(ec, error::line_too_long);
          scanned_ = available;
          return std::nullopt;
        }
        const std::size_t cr_at = static_cast<std::size_t>(static_cast<const char*>(cr) - base);
        if (cr_at + 1 >= size) {
          scanned_ = cr_at - content;
          return std::nullopt;
        }
        if (base[cr_at + 1] != '\n') return fail(ec, error::missing_crlf);
        const std::string_view line(base + content, cr_at - content);
        type t;
        switch (c) {
          case '+':
            t = type::simple_string;
            break;
          case '-':
            t = type::simple_error;
            break;
          case ',':
            if (!valid_double(line)) return fail(ec, error::invalid_double);
            t = type::double_;
            break;
          case '(':
            if (!valid_big_number(line)) return fail(ec, error::invalid_big_number);
            t = type::big_number;
            break;
          case '#':
            if (line != "t" && line != "f") return fail(ec, error::invalid_boolean);
            t = type::boolean;
            break;
          default:
            if (!line.empty()) return fail(ec, error::invalid_null);
            t = type::null;
            break;
        }
        scanned_ = 0;
        pos = cr_at + 2;
        return complete(t, line);
      }

      case ':': {
        decimal d;
        switch (scan_decimal(base, size, pos + 1, number_rules, d)) {
          case scan::need_more:
            return std::nullopt;
          case scan::failed:
            return fail(ec, d.err);
          case scan::ok:
            break;
        }
        const std::uint64_t limit =
            d.negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
        if (d.magnitude > limit) return fail(ec, error::number_overflow);
        const std::string_view text(base + pos + 1, d.next - pos - 3);
        pos = d.next;
        return complete(type::number, text);
      }

      case '$':
      case '!':
      case '=':
      case ';': {
        decimal_rules rules = length_rules;
        rules.minus = rules.unknown = c == '$';
        decimal d;
        switch (scan_decimal(base, size, pos + 1, rules, d)) {
          case scan::need_more:
            return std::nullopt;
          case scan::failed:
            return fail(ec, d.err);
          case scan::ok:
            break;
        }
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
        if (c == ';' && d.magnitude == 0) {
          // The end of a streamed string: it counts as one element of its parent.
          pos = d.next;
          --top_;
          in_streamed_string_ = false;
          element_done();
          if (done_) return std::nullopt;
          continue;
        }
        if (c == '=' && d.magnitude < 4) return fail(ec, error::invalid_verbatim);
        pos = d.next;
        body_length_ = static_cast<std::size_t>(d.magnitude);
        body_type_ = c == '$'   ? type::blob_string
                     : c == '!' ? type::blob_error
                     : c == '=' ? type::verbatim_string
                                : type::streamed_string_part;
        if (size - pos < body_length_ + 2) {
          state_ = state::body;
          return std::nullopt;
        }
        return parse_body(input, pos, ec);
      }

      case '*':
      case '%':
      case '~':
      case '>':
      case '|': {
        decimal_rules rules = length_rules;
        rules.minus = c == '*';
        rules.unknown = true;
        decimal d;
        switch (scan_decimal(base, size, pos + 1, rules, d)) {
          case scan::need_more:
            return std::nullopt;
          case scan::failed:
            return fail(ec, d.err);
          case scan::ok:
            break;
        }
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
          if (d.magnitude > static_cast<std::size_t>(-1) / 4)
            return fail(ec, error::length_overflow);
          count = static_cast<std::size_t>(d.magnitude) * multiplicity;
        }
        auto n = header(t, d.unknown ? node::unbounded : static_cast<std::size_t>(d.magnitude));
        pos = d.next;
        if (count == 0 && !d.unknown) {
          // Empty aggregate: complete at once. An empty attribute describes nothing.
          if (t != type::attribute) element_done();
          return n;
        }
        if (!push_frame(t, count, d.unknown)) return fail(ec, error::nesting_too_deep);
        return n;
      }

      case '.': {
        if (top_ == 0 || !stack_[top_ - 1].streamed) return fail(ec, error::unexpected_end);
        if (size - pos < 3) return std::nullopt;
        if (base[pos + 1] != '\r' || base[pos + 2] != '\n') return fail(ec, error::missing_crlf);
        const frame f = stack_[top_ - 1];
        if (element_multiplicity(f.data_type) == 2 && f.remaining % 2 != 0)
          return fail(ec, error::unpaired_map_element);
        pos += 3;
        --top_;
        if (f.data_type == type::attribute) {
          --attributes_;
        } else {
          element_done();
          if (done_) return std::nullopt;
        }
        continue;
      }

      default:
        return fail(ec, error::invalid_data_type);
    }
  }
}

std::optional<node> parser::consume(std::string_view input, std::size_t& pos,
                                    std::error_code& ec) noexcept {
  return next(input, pos, ec);
}

bool parser::consume_message(std::string_view input, std::size_t& pos, node_sink sink,
                             std::error_code& ec) {
  for (;;) {
    const auto n = next(input, pos, ec);
    if (n) sink(*n);
    if (done_) return true;
    if (!n) return false;  // need more, or ec is set
  }
}

}  // namespace redcoro::proto
