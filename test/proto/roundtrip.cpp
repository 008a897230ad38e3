// Property test: random reply trees, encoded (sometimes in streamed form) and decoded again
// after being cut at random places, come back equal.

#include "support/proto_helpers.hpp"
#include <redcoro/proto/response.hpp>

#include <algorithm>
#include <charconv>
#include <random>
#include <string>
#include <vector>

namespace proto = redcoro::proto;
using proto::type;
using proto::value;

namespace {

class generator {
 public:
  explicit generator(unsigned seed) : rng_(seed) {}

  value make(int depth, bool top) {
    value v = (depth >= 4 || pick(3) == 0) ? scalar() : aggregate(depth, top);
    if (pick(12) == 0) {
      // An attribute of one or two pairs describing this element.
      const int pairs = 1 + pick(2);
      for (int i = 0; i < pairs; ++i) {
        v.attributes.push_back(value(type::simple_string, "attr" + std::to_string(i)));
        v.attributes.push_back(scalar());
      }
    }
    return v;
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  std::string bytes(bool printable) {
    std::string s(static_cast<std::size_t>(pick(20)), ' ');
    for (char& c : s)
      c = printable ? static_cast<char>('a' + pick(26)) : static_cast<char>(pick(256));
    return s;
  }

  value scalar() {
    switch (pick(10)) {
      case 0:
        return {type::simple_string, bytes(true)};
      case 1:
        return {type::simple_error, "ERR " + bytes(true)};
      case 2: {
        const auto n = std::uniform_int_distribution<std::int64_t>()(rng_);
        return {type::number, std::to_string(n)};
      }
      case 3: {
        static const char* const d[] = {"1.5", "-0.25", "inf", "-inf", "nan", "1e+300", "0"};
        return {type::double_, d[pick(7)]};
      }
      case 4:
        return {type::boolean, pick(2) ? "t" : "f"};
      case 5:
        return {type::big_number, "-" + std::to_string(pick(1000)) + "123456789012345678901234"};
      case 6:
        return {type::null, ""};
      case 7:
        return {type::blob_error, "SYNTAX " + bytes(false)};
      case 8: {
        value v(type::verbatim_string, bytes(false));
        v.format =
            pick(2) ? std::array<char, 3>{'t', 'x', 't'} : std::array<char, 3>{'m', 'k', 'd'};
        return v;
      }
      default:
        return {type::blob_string, bytes(false)};
    }
  }

  value aggregate(int depth, bool top) {
    static const type kinds[] = {type::array, type::set, type::map, type::push};
    const type t = kinds[pick(top ? 4 : 3)];
    value v(t, std::vector<value>{});
    const int n = pick(5) * (t == type::map ? 2 : 1);
    for (int i = 0; i < n; ++i)
      v.elements.push_back(make(depth + 1, false));
    return v;
  }

  std::mt19937 rng_;
};

// Like proto::append_resp3, but may stream blob strings and aggregates.
void encode(std::string& out, const value& v, generator& g) {
  if (!v.attributes.empty()) {
    value attr(type::attribute, v.attributes);
    encode(out, attr, g);
  }
  const bool stream = g.pick(4) == 0;
  if (stream && v.data_type == type::blob_string) {
    out += "$?\r\n";
    std::size_t at = 0;
    while (at < v.text.size()) {
      const std::size_t n =
          std::min<std::size_t>(1 + static_cast<std::size_t>(g.pick(6)), v.text.size() - at);
      out += ";" + std::to_string(n) + "\r\n" + v.text.substr(at, n) + "\r\n";
      at += n;
    }
    out += ";0\r\n";
    return;
  }
  if (stream && v.is_aggregate()) {
    const char prefix = v.data_type == type::array  ? '*'
                        : v.data_type == type::set  ? '~'
                        : v.data_type == type::push ? '>'
                        : v.data_type == type::map  ? '%'
                                                    : '|';
    out += prefix;
    out += "?\r\n";
    for (const value& e : v.elements)
      encode(out, e, g);
    out += ".\r\n";
    return;
  }
  if (v.is_aggregate()) {
    value shell = v;
    shell.elements.clear();
    shell.attributes.clear();
    std::string header = proto::to_resp3(shell);
    // Re-emit the count for the real elements.
    header = header.substr(0, 1) +
             std::to_string(v.elements.size() / proto::element_multiplicity(v.data_type)) + "\r\n";
    out += header;
    for (const value& e : v.elements)
      encode(out, e, g);
    return;
  }
  value plain = v;
  plain.attributes.clear();
  proto::append_resp3(out, plain);
}

}  // namespace

TEST_CASE("random reply trees survive encoding and cut-up decoding", "[roundtrip]") {
  for (unsigned seed = 1; seed <= 1500; ++seed) {
    generator g(seed);
    std::vector<value> replies;
    std::string wire;
    const int count = 1 + g.pick(3);
    for (int i = 0; i < count; ++i) {
      replies.push_back(g.make(0, true));
      encode(wire, replies.back(), g);
    }
    std::vector<std::size_t> cuts;
    for (int i = 0; i < 4; ++i)
      cuts.push_back(static_cast<std::size_t>(g.pick(static_cast<int>(wire.size()) + 1)));
    std::sort(cuts.begin(), cuts.end());

    proto::generic_response r;
    INFO("seed " << seed << " wire " << wire);
    REQUIRE_FALSE(redcoro::test::decode(wire, r, cuts));
    REQUIRE(r.size() == replies.size());
    for (std::size_t i = 0; i < replies.size(); ++i) {
      // Error replies land in the result's error; everything else in its value.
      if (replies[i].is_error()) {
        CHECK(r[i].error().message == replies[i].text);
      } else {
        REQUIRE(r[i].has_value());
        CHECK(*r[i] == replies[i]);
      }
    }
    // The canonical encoding decodes to the same values too.
    std::string canonical;
    for (const value& v : replies)
      proto::append_resp3(canonical, v);
    proto::generic_response c;
    REQUIRE_FALSE(redcoro::test::decode(canonical, c));
    REQUIRE(c.size() == replies.size());
  }
}
