// libFuzzer target for the cache codec's readers (JSON and plain text).
//
// The first input byte picks the C++ type to decode into; the rest is the stored value.
// Properties checked:
//  - nothing crashes, leaks, reads out of bounds or recurses without bound (the sanitizers);
//  - a failure carries a code and a message;
//  - whatever decodes also encodes, and that encoding is a fixed point: it decodes again, and
//    encodes to the same bytes.

#include <redcoro/cache/codec.hpp>

#include <boost/describe.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fuzz {

enum class color { red, green, blue };
BOOST_DESCRIBE_ENUM(color, red, green, blue)

struct inner {
  std::string s;
  std::optional<double> d;
  std::vector<bool> bits;
};
BOOST_DESCRIBE_STRUCT(inner, (), (s, d, bits))

struct outer {
  std::int8_t i8 = 0;
  std::uint16_t u16 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  float f = 0;
  double d = 0;
  bool b = false;
  color c = color::red;
  std::optional<std::string> name;
  std::vector<inner> items;
  std::map<std::string, std::int32_t> counts;
  std::unordered_map<std::string, std::vector<std::string>> groups;
  std::chrono::system_clock::time_point at;
  std::chrono::sys_seconds day;
  std::chrono::microseconds took{};
  std::chrono::hours age{};
};
BOOST_DESCRIBE_STRUCT(outer, (),
                      (i8, u16, i64, u64, f, d, b, c, name, items, counts, groups, at, day, took,
                       age))

struct tree {
  std::string name;
  std::vector<tree> children;
};
BOOST_DESCRIBE_STRUCT(tree, (), (name, children))

}  // namespace fuzz

namespace {

namespace cache = redcoro::cache;

template <class T>
void check(std::string_view in) {
  T value{};
  cache::codec_error where;
  if (cache::decode(in, value, where)) {
    if (!where.code || where.message.empty()) std::abort();
    return;
  }
  std::string first;
  if (cache::encode(value, first, where)) std::abort();
  T again{};
  if (cache::decode(first, again, where)) std::abort();
  std::string second;
  if (cache::encode(again, second, where) || second != first) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 10) {
    case 0:
      check<fuzz::outer>(in);
      break;
    case 1:
      check<fuzz::tree>(in);
      break;
    case 2:
      check<std::vector<std::string>>(in);
      break;
    case 3:
      check<std::map<std::string, double>>(in);
      break;
    case 4:
      check<std::int64_t>(in);
      break;
    case 5:
      check<double>(in);
      break;
    case 6:
      check<std::chrono::system_clock::time_point>(in);
      break;
    case 7:
      check<std::chrono::nanoseconds>(in);
      break;
    case 8:
      check<fuzz::color>(in);
      break;
    default:
      check<std::optional<std::vector<float>>>(in);
      break;
  }
  return 0;
}
