#include <redcoro/proto/adapter.hpp>

#include <charconv>
#include <cmath>
#include <limits>

namespace redcoro::proto::detail {
namespace {

bool is_text(type t) noexcept {
  return t == type::simple_string || t == type::blob_string || t == type::verbatim_string;
}

// A short, printable excerpt of reply text for diagnostics.
std::string excerpt(std::string_view s) {
  constexpr std::size_t max = 64;
  std::string out = "'";
  for (char c : s.substr(0, max))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  out += "'";
  return out;
}

}  // namespace

bool set_server_error(reply_error& err, const node& n) {
  err.code = error::server_error;
  err.message.assign(n.value);
  return false;
}

bool fail_type(reply_error& err, std::string_view expected, const node& n) {
  // An error reply where a value was expected (an EXEC element, say) is the server's error,
  // not a conversion problem: report it as such.
  if (is_error(n.data_type)) return set_server_error(err, n);
  err.code = error::type_mismatch;
  err.message = "expected ";
  err.message += expected;
  err.message += ", got ";
  err.message += to_string(n.data_type);
  return false;
}

bool fail_with(reply_error& err, error code, std::string message) {
  err.code = code;
  err.message = std::move(message);
  return false;
}

void convert_error(reply_error& err, const std::error_code& ec, std::string_view text) {
  err.code = ec;
  err.message = "cannot convert " + excerpt(text) + ": " + ec.message();
}

bool adapt_string(std::string& out, const node& n, reply_error& err) {
  switch (n.data_type) {
    case type::simple_string:
    case type::blob_string:
    case type::verbatim_string:
    case type::number:
    case type::double_:
    case type::big_number:
      // PERF: clear()+append() takes libstdc++'s plain copy path; assign() goes through
      // _M_replace, which guards against aliasing and cost a tenth of the typed benchmark.
      out.clear();
      out.append(n.value);
      return true;
    case type::streamed_string:
      out.clear();
      return true;
    case type::streamed_string_part:
      out.append(n.value);
      return true;
    default:
      return fail_type(err, "string", n);
  }
}

bool adapt_bulk_text(std::string_view& out, const node& n, reply_error& err) {
  if (is_text(n.data_type) || n.data_type == type::number || n.data_type == type::double_ ||
      n.data_type == type::big_number) {
    out = n.value;
    return true;
  }
  return fail_type(err, "string", n);
}

namespace {

enum class parsed : std::uint8_t { ok, not_a_number, out_of_range };

template <class T>
parsed parse_whole(std::string_view s, T& out) noexcept {
  const char* const end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, out);
  if (s.empty() || r.ptr != end) return parsed::not_a_number;
  if (r.ec == std::errc::result_out_of_range) return parsed::out_of_range;
  return r.ec == std::errc{} ? parsed::ok : parsed::not_a_number;
}

bool integer_source(const node& n) noexcept {
  return n.data_type == type::number || n.data_type == type::big_number || is_text(n.data_type);
}

bool fail_parse(reply_error& err, parsed p, const node& n) {
  if (p == parsed::out_of_range)
    return fail_with(err, error::out_of_range, "integer " + excerpt(n.value) + " out of range");
  return fail_with(err, error::not_a_number, "expected integer, got " + excerpt(n.value));
}

}  // namespace

bool adapt_signed(std::int64_t& out, std::int64_t min, std::int64_t max, const node& n,
                  reply_error& err) {
  if (!integer_source(n)) return fail_type(err, "integer", n);
  std::int64_t v;
  parsed p = parse_whole(n.value, v);
  if (p == parsed::ok && (v < min || v > max)) p = parsed::out_of_range;
  if (p != parsed::ok) return fail_parse(err, p, n);
  out = v;
  return true;
}

bool adapt_unsigned(std::uint64_t& out, std::uint64_t max, const node& n, reply_error& err) {
  if (!integer_source(n)) return fail_type(err, "integer", n);
  std::uint64_t v;
  parsed p;
  if (!n.value.empty() && n.value.front() == '-') {
    // A negative number cannot be stored; tell it apart from text that is no number.
    std::int64_t s;
    p = parse_whole(n.value, s) == parsed::not_a_number ? parsed::not_a_number
                                                        : parsed::out_of_range;
  } else {
    p = parse_whole(n.value, v);
    if (p == parsed::ok && v > max) p = parsed::out_of_range;
  }
  if (p != parsed::ok) return fail_parse(err, p, n);
  out = v;
  return true;
}

bool adapt_double(double& out, const node& n, reply_error& err) {
  if (n.data_type != type::double_ && n.data_type != type::number &&
      n.data_type != type::big_number && !is_text(n.data_type))
    return fail_type(err, "double", n);
  std::string_view s = n.value;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ptr != s.data() + s.size() ||
      (r.ec != std::errc{} && r.ec != std::errc::result_out_of_range))
    return fail_with(err, error::not_a_number, "expected double, got " + excerpt(n.value));
  if (r.ec == std::errc::result_out_of_range) {
    // from_chars leaves v unspecified here; saturate like strtod.
    const bool negative = !s.empty() && s.front() == '-';
    const auto e = s.find_first_of("eE");
    const bool tiny = e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-';
    v = tiny ? (negative ? -0.0 : 0.0)
             : (negative ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity());
  }
  out = v;
  return true;
}

bool adapt_bool(bool& out, const node& n, reply_error& err) {
  if (n.data_type == type::boolean) {
    out = n.value == "t";
    return true;
  }
  if (n.data_type == type::number || is_text(n.data_type)) {
    if (n.value == "1" || n.value == "0") {
      out = n.value == "1";
      return true;
    }
    if (n.data_type == type::number)
      return fail_with(err, error::out_of_range, "expected 0 or 1, got " + excerpt(n.value));
  }
  return fail_type(err, "boolean", n);
}

bool check_fixed_size(const node& n, std::size_t expected, reply_error& err) {
  if (!is_aggregate(n.data_type)) return fail_type(err, "array", n);
  const std::size_t got = n.element_count();
  if (got != node::unbounded && got != expected)
    return fail_with(
        err, error::size_mismatch,
        "expected " + std::to_string(expected) + " elements, got " + std::to_string(got));
  return true;
}

namespace {

value make_value(const node& n) {
  value v;
  v.data_type = n.data_type == type::streamed_string ? type::blob_string : n.data_type;
  if (!has_children(n.data_type)) v.text.assign(n.value);
  if (n.data_type == type::verbatim_string) {
    const std::string_view f = n.verbatim_format();
    v.format = {f[0], f[1], f[2]};
  }
  if (is_aggregate(n.data_type)) v.elements.reserve(presize(n.element_count(), 0));
  return v;
}

// Appends node `n` at relative depth `depth` (>= 1) below path[depth - 1]. Returns the new
// element, or nullptr when the node does not fit the tree built so far.
value* append_child(std::vector<value*>& path, const node& n, std::size_t depth) {
  if (depth == 0 || path.size() < depth) return nullptr;
  path.resize(depth);
  value& parent = *path[depth - 1];
  if (n.data_type == type::streamed_string_part) {
    parent.text.append(n.value);
    return &parent;
  }
  parent.elements.push_back(make_value(n));
  value* child = &parent.elements.back();
  if (has_children(n.data_type)) path.push_back(child);
  return child;
}

}  // namespace

bool value_builder::on_node(value& root, const node& n, std::size_t depth) {
  if (n.in_attribute) {
    if (n.data_type == type::attribute && (!has_attribute_ || depth <= attribute_depth_)) {
      attribute_ = make_value(n);
      attribute_depth_ = depth;
      attribute_path_.assign(1, &attribute_);
      has_attribute_ = true;
      return true;
    }
    if (has_attribute_ && depth > attribute_depth_)
      append_child(attribute_path_, n, depth - attribute_depth_);
    return true;
  }

  value* target;
  if (depth == 0) {
    root = make_value(n);
    path_.clear();
    if (has_children(n.data_type)) path_.push_back(&root);
    target = &root;
  } else {
    target = append_child(path_, n, depth);
    if (target == nullptr) return false;
    if (n.data_type == type::streamed_string_part) return true;
  }
  if (has_attribute_ && attribute_depth_ == depth) {
    target->attributes = std::move(attribute_.elements);
    has_attribute_ = false;
    attribute_path_.clear();
  }
  return true;
}

}  // namespace redcoro::proto::detail
