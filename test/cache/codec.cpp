#include <redcoro/cache/codec.hpp>

#include <boost/describe.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace cache = redcoro::cache;
using cache::error;
using namespace std::chrono_literals;
using sys_ms = std::chrono::sys_time<std::chrono::milliseconds>;

// --- types under test -------------------------------------------------------------------------

namespace shop {

enum class color { red, green, blue };
BOOST_DESCRIBE_ENUM(color, red, green, blue)

enum class level : std::uint8_t { low = 1, high = 200 };
BOOST_DESCRIBE_ENUM(level, low, high)

struct geo {
  double lat = 0;
  double lon = 0;
  bool operator==(const geo&) const = default;
};
BOOST_DESCRIBE_STRUCT(geo, (), (lat, lon))

struct address {
  std::string street;
  std::uint16_t zip = 0;
  std::optional<geo> where;
  bool operator==(const address&) const = default;
};
BOOST_DESCRIBE_STRUCT(address, (), (street, zip, where))

struct entry {
  sys_ms at{};
  double amount = 0;
  std::string note;
  bool operator==(const entry&) const = default;
};
BOOST_DESCRIBE_STRUCT(entry, (), (at, amount, note))

// Every supported member type at least once.
struct everything {
  std::string text;
  bool flag = false;
  std::int8_t i8 = 0;
  std::uint8_t u8 = 0;
  std::int16_t i16 = 0;
  std::uint16_t u16 = 0;
  std::int32_t i32 = 0;
  std::uint32_t u32 = 0;
  std::int64_t i64 = 0;
  std::uint64_t u64 = 0;
  long long ll = 0;
  unsigned long ul = 0;
  float f = 0;
  double d = 0;
  std::optional<std::string> maybe_text;
  std::optional<int> maybe_int;
  std::vector<std::string> tags;
  std::vector<bool> bits;
  std::vector<std::vector<int>> grid;
  std::vector<entry> history;
  std::map<std::string, std::int64_t> limits;
  std::unordered_map<std::string, std::vector<std::string>> groups;
  address home;
  color favourite = color::red;
  level priority = level::low;
  std::optional<color> second;
  std::chrono::system_clock::time_point created{};
  std::chrono::milliseconds ttl{};
  std::chrono::seconds timeout{};
  std::chrono::nanoseconds latency{};
  bool operator==(const everything&) const = default;
};
BOOST_DESCRIBE_STRUCT(everything, (),
                      (text, flag, i8, u8, i16, u16, i32, u32, i64, u64, ll, ul, f, d, maybe_text,
                       maybe_int, tags, bits, grid, history, limits, groups, home, favourite,
                       priority, second, created, ttl, timeout, latency))

struct person {
  std::string name;
  int age = 0;
  address home;
  std::vector<std::string> tags;
  std::map<std::string, std::int64_t> limits;
  std::optional<std::string> nickname;
  color favourite = color::red;
  bool operator==(const person&) const = default;
};
BOOST_DESCRIBE_STRUCT(person, (), (name, age, home, tags, limits, nickname, favourite))

struct tree {
  std::string name;
  std::vector<tree> children;
  bool operator==(const tree&) const = default;
};
BOOST_DESCRIBE_STRUCT(tree, (), (name, children))

struct empty {
  bool operator==(const empty&) const = default;
};
BOOST_DESCRIBE_STRUCT(empty, (), ())

struct base {
  int id = 0;
};
BOOST_DESCRIBE_STRUCT(base, (), (id))

struct derived : base {
  std::string name;
};
BOOST_DESCRIBE_STRUCT(derived, (base), (name))

// A user type with its own codec: stored as "#rrggbb", inside JSON as that string.
struct rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const rgb&) const = default;
};

struct palette {
  std::string name;
  rgb main;
  std::vector<rgb> others;
  bool operator==(const palette&) const = default;
};
BOOST_DESCRIBE_STRUCT(palette, (), (name, main, others))

// A binary format (think protobuf): fine on its own, not inside JSON.
struct blob {
  std::string bytes;
  bool operator==(const blob&) const = default;
};

struct holder {
  blob b;
};
BOOST_DESCRIBE_STRUCT(holder, (), (b))

struct not_described {
  int x;
};

// A class whose described members are private: describing them asks for them to be stored.
class account {
 public:
  account() = default;
  account(std::string owner, std::int64_t balance) : owner_(std::move(owner)), balance_(balance) {}
  bool operator==(const account&) const = default;

 private:
  std::string owner_;
  std::int64_t balance_ = 0;
  BOOST_DESCRIBE_CLASS(account, (), (), (), (owner_, balance_))
};

// A user codec that decodes JSON itself (a version prefix, then the JSON of a geo): it runs
// in the middle of the outer document's decoding.
struct versioned_geo {
  geo value;
  bool operator==(const versioned_geo&) const = default;
};

struct trip {
  std::string name;
  std::vector<versioned_geo> stops;
  bool operator==(const trip&) const = default;
};
BOOST_DESCRIBE_STRUCT(trip, (), (name, stops))

}  // namespace shop

template <>
struct redcoro::cache::codec<shop::rgb> {
  static std::error_code encode(const shop::rgb& c, std::string& out, codec_error&) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '#';
    for (std::uint8_t v : {c.r, c.g, c.b}) {
      out += hex[v >> 4];
      out += hex[v & 15];
    }
    return {};
  }
  static std::error_code decode(std::string_view in, shop::rgb& c, codec_error& where) {
    const auto nibble = [](char ch) -> int {
      if (ch >= '0' && ch <= '9') return ch - '0';
      if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
      return -1;
    };
    if (in.size() != 7 || in[0] != '#') {
      where.message = "not #rrggbb";
      return make_error_code(std::errc::invalid_argument);
    }
    std::uint8_t v[3];
    for (int i = 0; i < 3; ++i) {
      const int hi = nibble(in[1 + 2 * i]), lo = nibble(in[2 + 2 * i]);
      if (hi < 0 || lo < 0) {
        where.message = "not a hex digit";
        return make_error_code(std::errc::invalid_argument);
      }
      v[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    c = {v[0], v[1], v[2]};
    return {};
  }
};

template <>
struct redcoro::cache::codec<shop::blob> {
  static std::error_code encode(const shop::blob& b, std::string& out, codec_error&) {
    out += '\x01';  // a version byte, the way binary formats start
    out += b.bytes;
    return {};
  }
  static std::error_code decode(std::string_view in, shop::blob& b, codec_error& where) {
    if (in.empty() || in[0] != '\x01') {
      where.message = "unknown version";
      return make_error_code(std::errc::invalid_argument);
    }
    b.bytes.assign(in.substr(1));
    return {};
  }
};

template <>
struct redcoro::cache::codec<shop::versioned_geo> {
  static std::error_code encode(const shop::versioned_geo& v, std::string& out,
                                codec_error& where) {
    out += "v1:";
    return redcoro::cache::encode(v.value, out, where);
  }
  static std::error_code decode(std::string_view in, shop::versioned_geo& v, codec_error& where) {
    if (in.substr(0, 3) != "v1:") {
      where.message = "unknown version";
      return make_error_code(std::errc::invalid_argument);
    }
    return redcoro::cache::decode(in.substr(3), v.value, where);
  }
};

// An enum stored as JSON (a quoted name) instead of bare text: a one-line specialization.
namespace shop {
enum class mood { calm, angry };
BOOST_DESCRIBE_ENUM(mood, calm, angry)
}  // namespace shop
template <>
struct redcoro::cache::codec<shop::mood> : redcoro::cache::json_codec<shop::mood> {};

// --- what is cacheable --------------------------------------------------------------------------

static_assert(cache::cacheable<std::string>);
static_assert(cache::cacheable<int>);
static_assert(cache::cacheable<std::uint64_t>);
static_assert(cache::cacheable<double>);
static_assert(cache::cacheable<bool>);
static_assert(cache::cacheable<shop::color>);
static_assert(cache::cacheable<std::chrono::milliseconds>);
static_assert(cache::cacheable<std::chrono::system_clock::time_point>);
static_assert(cache::cacheable<shop::everything>);
static_assert(cache::cacheable<shop::tree>);
static_assert(cache::cacheable<std::vector<shop::person>>);
static_assert(cache::cacheable<std::optional<int>>);
static_assert(cache::cacheable<std::map<std::string, shop::rgb>>);
static_assert(cache::cacheable<shop::rgb>);
static_assert(cache::cacheable<shop::palette>);
static_assert(!cache::cacheable<shop::not_described>);
static_assert(!cache::cacheable<char>);
static_assert(!cache::cacheable<long double>);
static_assert(!cache::cacheable<std::list<int>>);
static_assert(!cache::cacheable<std::map<int, int>>);
static_assert(!cache::cacheable<std::vector<shop::not_described>>);
static_assert(!cache::cacheable<std::optional<std::optional<int>>>);
static_assert(!cache::cacheable<std::chrono::duration<double>>);
static_assert(!cache::cacheable<std::chrono::duration<int, std::ratio<1, 3>>>);
static_assert(!cache::cacheable<std::chrono::steady_clock::time_point>);

// --- helpers ------------------------------------------------------------------------------------

namespace {

template <class T>
std::string encoded(const T& value) {
  std::string out;
  cache::codec_error where;
  const std::error_code ec = cache::encode(value, out, where);
  INFO(where.to_string());
  REQUIRE_FALSE(ec);
  return out;
}

template <class T>
T decoded(std::string_view in) {
  T out{};
  cache::codec_error where;
  const std::error_code ec = cache::decode(in, out, where);
  INFO(std::string(in) << " -> " << where.to_string());
  REQUIRE_FALSE(ec);
  return out;
}

template <class T>
T round_trip(const T& value) {
  return decoded<T>(encoded(value));
}

template <class T>
cache::codec_error decode_error(std::string_view in) {
  T out{};
  cache::codec_error where;
  const std::error_code ec = cache::decode(in, out, where);
  INFO(std::string(in));
  REQUIRE(ec);
  CHECK(where.code == ec);
  return where;
}

template <class T>
cache::codec_error encode_error(const T& value) {
  std::string out = "prefix";
  cache::codec_error where;
  const std::error_code ec = cache::encode(value, out, where);
  REQUIRE(ec);
  CHECK(where.code == ec);
  CHECK(out == "prefix");  // a failed encode leaves the output as it was
  return where;
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

shop::everything full_sample() {
  shop::everything e;
  e.text = "h\xC3\xA9llo \"w\\rld\"\n\t\x01";
  e.flag = true;
  e.i8 = std::numeric_limits<std::int8_t>::min();
  e.u8 = std::numeric_limits<std::uint8_t>::max();
  e.i16 = std::numeric_limits<std::int16_t>::min();
  e.u16 = std::numeric_limits<std::uint16_t>::max();
  e.i32 = std::numeric_limits<std::int32_t>::min();
  e.u32 = std::numeric_limits<std::uint32_t>::max();
  e.i64 = std::numeric_limits<std::int64_t>::min();
  e.u64 = std::numeric_limits<std::uint64_t>::max();
  e.ll = std::numeric_limits<long long>::max();
  e.ul = 42;
  e.f = 0.1f;
  e.d = 0.1 + 0.2;
  e.maybe_text = "";
  e.maybe_int = std::nullopt;
  e.tags = {"a", "", "c d"};
  e.bits = {true, false, true};
  e.grid = {{1, 2}, {}, {3}};
  e.history = {{sys_ms{1765004400123ms}, 12.5, "coffee"}, {sys_ms{-1ms}, -3.25, "refund"}};
  e.limits = {{"daily", 1000}, {"monthly", -25000}};
  e.groups = {{"admins", {"ann", "bob"}}};  // one entry: an unordered_map has no fixed order
  e.home = {"12 Rue de la Paix", 7502, shop::geo{48.8686, 2.3314}};
  e.favourite = shop::color::blue;
  e.priority = shop::level::high;
  e.second = shop::color::green;
  e.created = std::chrono::system_clock::time_point{1765004400123456789ns};
  e.ttl = 3600000ms;
  e.timeout = -30s;
  e.latency = 1234567ns;
  return e;
}

}  // namespace

// --- plain text ---------------------------------------------------------------------------------

TEST_CASE("strings are stored as their bytes, binary included", "[cache][text]") {
  const std::string binary("a\0b\xff\r\n", 6);
  CHECK(encoded(binary) == binary);
  CHECK(round_trip(binary) == binary);
  CHECK(encoded(std::string()).empty());
  CHECK(decoded<std::string>("hello world") == "hello world");
}

TEST_CASE("integers are stored in decimal, every width to its limits", "[cache][text]") {
  CHECK(encoded(42) == "42");
  CHECK(encoded(-7) == "-7");
  CHECK(encoded(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808");
  CHECK(encoded(std::numeric_limits<std::int64_t>::max()) == "9223372036854775807");
  CHECK(encoded(std::numeric_limits<std::uint64_t>::max()) == "18446744073709551615");
  CHECK(encoded(std::int8_t{-128}) == "-128");
  CHECK(encoded(std::uint8_t{255}) == "255");
  CHECK(decoded<std::int64_t>("-9223372036854775808") == std::numeric_limits<std::int64_t>::min());
  CHECK(decoded<std::uint64_t>("18446744073709551615") ==
        std::numeric_limits<std::uint64_t>::max());
  CHECK(decoded<std::int8_t>("-128") == -128);
  CHECK(decoded<std::uint16_t>("65535") == 65535);
  CHECK(decoded<int>("-0") == 0);
}

TEST_CASE("integers out of range or not integers are errors", "[cache][text]") {
  auto e = decode_error<std::int8_t>("128");
  CHECK(e.code == error::out_of_range);
  CHECK(e.message == "\"128\" does not fit in int8");
  CHECK(e.path.empty());
  CHECK(decode_error<std::uint32_t>("-1").code == error::out_of_range);
  CHECK(decode_error<std::uint64_t>("18446744073709551616").code == error::out_of_range);
  CHECK(decode_error<std::int64_t>("9223372036854775808").code == error::out_of_range);
  CHECK(decode_error<std::int64_t>("-9223372036854775809").code == error::out_of_range);
  for (const char* bad : {"", "12a", " 1", "1 ", "+1", "1.0", "1e3", "0x10", "-", "abc"}) {
    INFO(bad);
    e = decode_error<int>(bad);
    CHECK(e.code == error::invalid_text);
    CHECK(e.message.find("is not an integer") != std::string::npos);
  }
}

TEST_CASE("a value written by redis-cli reads back as a string and as a number", "[cache][text]") {
  // `redis-cli SET visits 42` and `redis-cli INCRBYFLOAT price 10.5` store these bytes.
  CHECK(decoded<std::string>("42") == "42");
  CHECK(decoded<int>("42") == 42);
  CHECK(decoded<std::uint64_t>("42") == 42);
  CHECK(decoded<double>("42") == 42.0);
  CHECK(decoded<double>("10.5") == 10.5);
  CHECK(decoded<bool>("1"));
  // ...and what we store reads the same way in redis-cli (and INCR accepts it).
  CHECK(encoded(std::int64_t{41} + 1) == "42");
  CHECK(decode_error<int>("hello").code == error::invalid_text);
}

TEST_CASE("bools are stored as 1 and 0, and true and false are read too", "[cache][text]") {
  CHECK(encoded(true) == "1");
  CHECK(encoded(false) == "0");
  CHECK(decoded<bool>("1"));
  CHECK_FALSE(decoded<bool>("0"));
  CHECK(decoded<bool>("true"));
  CHECK_FALSE(decoded<bool>("false"));
  for (const char* bad : {"", "yes", "TRUE", "2", " 1"})
    CHECK(decode_error<bool>(bad).code == error::invalid_text);
}

TEST_CASE("floating point is stored in its shortest round-trip form", "[cache][text]") {
  CHECK(encoded(0.1) == "0.1");
  CHECK(encoded(0.1 + 0.2) == "0.30000000000000004");
  CHECK(encoded(1e300) == "1e+300");
  CHECK(encoded(-0.0) == "-0");
  CHECK(encoded(0.1f) == "0.1");
  CHECK(encoded(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(encoded(-std::numeric_limits<double>::infinity()) == "-inf");
  CHECK(encoded(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(std::isinf(decoded<double>("inf")));
  CHECK(decoded<double>("-inf") < 0);
  CHECK(std::isnan(decoded<double>("nan")));
  CHECK(decoded<float>("0.1") == 0.1f);
  CHECK(decoded<double>("5e-324") == std::numeric_limits<double>::denorm_min());
  CHECK(decode_error<double>("1e400").code == error::out_of_range);
  CHECK(decode_error<float>("1e39").code == error::out_of_range);
  CHECK(decode_error<double>("1.5x").code == error::invalid_text);
  CHECK(decode_error<double>("").code == error::invalid_text);

  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    std::uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isnan(d)) continue;
    INFO(encoded(d));
    CHECK(same_bits(round_trip(d), d));
  }
}

TEST_CASE("enums are stored as their names", "[cache][text]") {
  CHECK(encoded(shop::color::green) == "green");
  CHECK(decoded<shop::color>("blue") == shop::color::blue);
  CHECK(encoded(shop::level::high) == "high");
  CHECK(decoded<shop::level>("high") == shop::level::high);
  auto e = decode_error<shop::color>("purple");
  CHECK(e.code == error::unknown_enum_name);
  CHECK(e.message == "unknown name \"purple\"; expected one of: red, green, blue");
  CHECK(decode_error<shop::color>("Green").code == error::unknown_enum_name);
  e = encode_error(static_cast<shop::color>(7));
  CHECK(e.code == error::unnamed_enum_value);
  CHECK(e.message == "enum value 7 has no described name");
  // A codec specialization can store an enum as JSON instead.
  CHECK(encoded(shop::mood::angry) == "\"angry\"");
  CHECK(decoded<shop::mood>("\"angry\"") == shop::mood::angry);
}

TEST_CASE("durations are stored as decimal milliseconds, exactly", "[cache][text]") {
  CHECK(encoded(1500ms) == "1500");
  CHECK(encoded(90s) == "90000");
  CHECK(encoded(2min) == "120000");
  CHECK(encoded(1500us) == "1.5");
  CHECK(encoded(1ns) == "0.000001");
  CHECK(encoded(-500us) == "-0.5");
  CHECK(encoded(-1500us) == "-1.5");
  CHECK(encoded(std::chrono::nanoseconds::min()) == "-9223372036854.775808");
  CHECK(encoded(std::chrono::hours::max()) == "33204139332677192905200000");
  CHECK(decoded<std::chrono::milliseconds>("1500") == 1500ms);
  CHECK(decoded<std::chrono::seconds>("90000") == 90s);
  CHECK(decoded<std::chrono::microseconds>("1.5") == 1500us);
  CHECK(decoded<std::chrono::nanoseconds>("-0.000001") == -1ns);
  CHECK(decoded<std::chrono::milliseconds>("1e3") == 1000ms);
  CHECK(decoded<std::chrono::milliseconds>("2.5E1") == 25ms);
  CHECK(decoded<std::chrono::nanoseconds>("-9223372036854.775808") ==
        std::chrono::nanoseconds::min());
  CHECK(decoded<std::chrono::hours>("33204139332677192905200000") == std::chrono::hours::max());
  for (auto d : {1ns, -1ns, 999999ns, 1000000ns, 123456789012345ns, -987654321ns})
    CHECK(round_trip(d) == d);

  auto e = decode_error<std::chrono::seconds>("1500");
  CHECK(e.code == error::out_of_range);
  CHECK(e.message == "\"1500\" is not a whole number of seconds");
  CHECK(decode_error<std::chrono::nanoseconds>("0.0000001").code == error::out_of_range);
  CHECK(decode_error<std::chrono::duration<std::int8_t, std::milli>>("1000").code ==
        error::out_of_range);
  CHECK(decode_error<std::chrono::nanoseconds>("9223372036855").code == error::out_of_range);
  for (const char* bad : {"", "abc", "1.", ".5", "1e", "- 1", "1ms", "+1"})
    CHECK(decode_error<std::chrono::milliseconds>(bad).code == error::invalid_text);
}

TEST_CASE("system_clock time points are stored as ISO-8601 UTC", "[cache][text]") {
  using namespace std::chrono;
  const sys_ms t{1765004400123ms};  // 2025-12-06T07:00:00.123Z
  CHECK(encoded(t) == "2025-12-06T07:00:00.123Z");
  CHECK(encoded(sys_seconds{1765004400s}) == "2025-12-06T07:00:00.000Z");
  CHECK(encoded(sys_time<microseconds>{1765004400123456us}) == "2025-12-06T07:00:00.123456Z");
  CHECK(encoded(system_clock::time_point{1765004400123456789ns}) ==
        "2025-12-06T07:00:00.123456789Z");
  CHECK(encoded(sys_ms{-1ms}) == "1969-12-31T23:59:59.999Z");
  CHECK(encoded(sys_days{2024y / February / 29}) == "2024-02-29T00:00:00.000Z");
  CHECK(encoded(sys_days{0y / January / 1}) == "0000-01-01T00:00:00.000Z");
  CHECK(encoded(sys_days{9999y / December / 31} + 86399999ms) == "9999-12-31T23:59:59.999Z");
  CHECK(encode_error(sys_days{10000y / January / 1}).code == error::out_of_range);
  CHECK(encode_error(sys_days{-1y / December / 31}).code == error::out_of_range);

  CHECK(decoded<sys_ms>("2025-12-06T07:00:00.123Z") == t);
  CHECK(decoded<sys_ms>("2025-12-06t07:00:00.123z") == t);
  CHECK(decoded<sys_ms>("2025-12-06T09:00:00.123+02:00") == t);
  CHECK(decoded<sys_ms>("2025-12-06T06:30:00.123-00:30") == t);
  CHECK(decoded<sys_ms>("2025-12-06T07:00:00.1230Z") == t);
  CHECK(decoded<sys_seconds>("2025-12-06T07:00:00Z") == sys_seconds{1765004400s});
  CHECK(decoded<system_clock::time_point>("1969-12-31T23:59:59.999999999Z") ==
        system_clock::time_point{-1ns});
  for (auto tp : {system_clock::time_point{}, system_clock::time_point{1ns},
                  system_clock::time_point{-1ns}, system_clock::now()})
    CHECK(round_trip(tp) == tp);

  auto e = decode_error<sys_seconds>("2025-12-06T07:00:00.5Z");
  CHECK(e.code == error::out_of_range);
  CHECK(e.message == "\"2025-12-06T07:00:00.5Z\" is not a whole number of seconds");
  CHECK(decode_error<sys_ms>("2025-12-06T07:00:00.0000000001Z").code == error::out_of_range);
  CHECK(decode_error<sys_ms>("0000-01-01T00:30:00+01:00").code == error::out_of_range);
  CHECK(decode_error<sys_ms>("9999-12-31T23:30:00-01:00").code == error::out_of_range);
  CHECK(decoded<sys_ms>("0000-01-01T01:00:00+01:00") == sys_days{0y / January / 1});
  CHECK(decode_error<std::chrono::sys_time<std::chrono::duration<std::int32_t>>>(
            "2100-01-01T00:00:00Z")
            .code == error::out_of_range);
  for (const char* bad : {"", "2025-12-06", "2025-12-06T07:00:00", "2025-12-06T07:00:00.123",
                          "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-12-06T24:00:00Z",
                          "2025-12-06T07:60:00Z", "2025-12-06T07:00:60Z", "2025-12-06 07:00:00Z",
                          "2025-12-06T07:00:00.Z", "2025-12-06T07:00:00Zx",
                          "2025-12-06T07:00:00+0200", "+2025-12-06T07:00:00Z", "1765004400123"}) {
    INFO(bad);
    e = decode_error<sys_ms>(bad);
    CHECK(e.code == error::invalid_text);
    CHECK(e.message.find("is not an ISO-8601 time") != std::string::npos);
  }
}

// --- JSON ---------------------------------------------------------------------------------------

TEST_CASE("a described struct is stored as JSON, members in declaration order", "[cache][json]") {
  const shop::person p{"Ann",
                       42,
                       {"Main St", 12345, std::nullopt},
                       {"a", "b"},
                       {{"daily", 10}},
                       std::nullopt,
                       shop::color::green};
  CHECK(encoded(p) ==
        R"({"name":"Ann","age":42,"home":{"street":"Main St","zip":12345,"where":null},)"
        R"("tags":["a","b"],"limits":{"daily":10},"nickname":null,"favourite":"green"})");
  CHECK(round_trip(p) == p);
}

TEST_CASE("every supported member type round-trips", "[cache][json]") {
  const shop::everything e = full_sample();
  const std::string json = encoded(e);
  INFO(json);
  const auto back = decoded<shop::everything>(json);
  CHECK(back == e);
  CHECK(encoded(back) == json);
  CHECK(json.find(R"("created":"2025-12-06T07:00:00.123456789Z")") != std::string::npos);
  CHECK(json.find(R"("ttl":3600000,"timeout":-30000,"latency":1.234567)") != std::string::npos);
  CHECK(json.find(R"("bits":[true,false,true],"grid":[[1,2],[],[3]])") != std::string::npos);
  CHECK(json.find(R"("i64":-9223372036854775808,"u64":18446744073709551615)") != std::string::npos);
  CHECK(json.find(R"("f":0.1,"d":0.30000000000000004)") != std::string::npos);
  CHECK(json.find(R"("priority":"high","second":"green")") != std::string::npos);
}

TEST_CASE("top-level containers and optionals are JSON", "[cache][json]") {
  CHECK(encoded(std::vector<int>{1, 2, 3}) == "[1,2,3]");
  CHECK(decoded<std::vector<int>>(" [ 1 , 2 , 3 ] ") == std::vector<int>{1, 2, 3});
  CHECK(encoded(std::map<std::string, double>{{"a", 0.5}}) == R"({"a":0.5})");
  CHECK(encoded(std::optional<int>{}) == "null");
  CHECK(encoded(std::optional<int>{5}) == "5");
  CHECK(decoded<std::optional<int>>("null") == std::nullopt);
  CHECK(decoded<std::optional<int>>("5") == 5);
  CHECK(encoded(shop::empty{}) == "{}");
  CHECK(decoded<shop::empty>(R"({"anything":[1,{"x":2}]})") == shop::empty{});
  CHECK(encoded(std::vector<shop::tree>{}) == "[]");
  const shop::tree t{"root", {{"a", {}}, {"b", {{"c", {}}}}}};
  CHECK(encoded(t) == R"({"name":"root","children":[{"name":"a","children":[]},)"
                      R"({"name":"b","children":[{"name":"c","children":[]}]}]})");
  CHECK(round_trip(t) == t);
}

TEST_CASE("inherited members are stored with the struct's own", "[cache][json]") {
  shop::derived d;
  d.id = 7;
  d.name = "seven";
  CHECK(encoded(d) == R"({"id":7,"name":"seven"})");
  const auto back = decoded<shop::derived>(R"({"name":"x","id":3})");
  CHECK(back.id == 3);
  CHECK(back.name == "x");
}

TEST_CASE("members may come in any order, and unknown members are skipped", "[cache][json]") {
  const shop::person expected{"Ann", 42,           {"Main", 1, std::nullopt}, {"x"},
                              {},    std::nullopt, shop::color::blue};
  CHECK(decoded<shop::person>(
            R"({"favourite":"blue","tags":["x"],"limits":{},"home":{"zip":1,"street":"Main"},)"
            R"("age":42,"name":"Ann"})") == expected);
  CHECK(decoded<shop::person>(
            R"({"version":3,"name":"Ann","extra":{"deep":[1,2,{"x":null}]},"age":42,)"
            R"("home":{"street":"Main","zip":1,"country":"FR"},"tags":["x"],"limits":{},)"
            R"("favourite":"blue","tail":"ignored"})") == expected);
  // Keys may be escaped.
  CHECK(decoded<shop::geo>(R"({"l\u0061t":1.5,"\u006con":2})") == shop::geo{1.5, 2});
  // A repeated key: the last one wins.
  CHECK(decoded<shop::geo>(R"({"lat":1,"lon":2,"lat":3})") == shop::geo{3, 2});
}

TEST_CASE("optional members may be null or absent, the others must be there", "[cache][json]") {
  auto a = decoded<shop::address>(R"({"street":"s","zip":1})");
  CHECK_FALSE(a.where.has_value());
  a = decoded<shop::address>(R"({"street":"s","zip":1,"where":null})");
  CHECK_FALSE(a.where.has_value());
  a = decoded<shop::address>(R"({"street":"s","zip":1,"where":{"lat":1,"lon":2}})");
  CHECK(a.where == shop::geo{1, 2});

  auto e = decode_error<shop::address>(R"({"street":"s"})");
  CHECK(e.code == error::missing_field);
  CHECK(e.path == "zip");
  CHECK(e.message == "missing member (expected an integer)");
  e = decode_error<shop::person>(
      R"({"name":"n","age":1,"home":{"zip":1},"tags":[],"limits":{},"favourite":"red"})");
  CHECK(e.code == error::missing_field);
  CHECK(e.path == "home.street");
  e = decode_error<shop::address>(R"({"street":"s","zip":null})");
  CHECK(e.code == error::wrong_type);
  CHECK(e.path == "zip");
  CHECK(e.message == "expected an integer, got null: \"null\"");
}

TEST_CASE("decoding into a used object replaces all of it", "[cache][json]") {
  shop::everything target = full_sample();
  target.tags = {"1", "2", "3", "4", "5"};
  target.maybe_int = 9;
  target.limits = {{"old", 1}};
  shop::everything other;
  other.tags = {"only"};
  other.home.street = "elsewhere";
  cache::codec_error where;
  REQUIRE_FALSE(cache::decode(encoded(other), target, where));
  CHECK(target == other);
}

TEST_CASE("decode errors name the member and what was wrong", "[cache][json]") {
  const std::string good_tail = R"("home":{"street":"s","zip":1},"limits":{},"favourite":"red"})";
  struct bad_case {
    std::string json;
    error code;
    std::string path;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {R"({"name":"n","age":"42","tags":[],)" + good_tail, error::wrong_type, "age",
       "expected an integer, got a string: \"\\\"42\\\"\""},
      {R"({"name":"n","age":1.5,"tags":[],)" + good_tail, error::wrong_type, "age",
       "expected an integer, got a number: \"1.5\""},
      {R"({"name":"n","age":2147483648,"tags":[],)" + good_tail, error::out_of_range, "age",
       "2147483648 does not fit in int32"},
      {R"({"name":"n","age":9223372036854775808,"tags":[],)" + good_tail, error::out_of_range,
       "age", "9223372036854775808 does not fit in int32"},
      {R"({"name":7,"age":1,"tags":[],)" + good_tail, error::wrong_type, "name",
       "expected a string, got a number: \"7\""},
      {R"({"name":"n","age":1,"tags":["a","b","c",4],)" + good_tail, error::wrong_type, "tags[3]",
       "expected a string, got a number: \"4\""},
      {R"({"name":"n","age":1,"tags":{},)" + good_tail, error::wrong_type, "tags",
       "expected an array, got an object"},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":70000},"limits":{},)"
       R"("favourite":"red"})",
       error::out_of_range, "home.zip", "70000 does not fit in uint16"},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":-1},"limits":{},)"
       R"("favourite":"red"})",
       error::out_of_range, "home.zip", "-1 does not fit in uint16"},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":1,"where":{"lat":"x"}},)"
       R"("limits":{},"favourite":"red"})",
       error::wrong_type, "home.where.lat",
       "expected a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got a string: \"x\""},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":1},)"
       R"("limits":{"daily":10,"weird key \"q\"":true},"favourite":"red"})",
       error::wrong_type, R"(limits["weird key \"q\""])",
       "expected an integer, got a boolean: \"true\""},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":1},"limits":{},)"
       R"("favourite":"purple"})",
       error::unknown_enum_name, "favourite",
       "unknown name \"purple\"; expected one of: red, green, blue"},
      {R"({"name":"n","age":1,"tags":[],"home":{"street":"s","zip":1},"limits":{},)"
       R"("favourite":0})",
       error::wrong_type, "favourite",
       "expected a string (an enumerator name), got a number: \"0\""},
      {R"({"name":"n","age":1,"tags":[],"home":[],"limits":{},"favourite":"red"})",
       error::wrong_type, "home", "expected an object, got an array"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    const auto e = decode_error<shop::person>(c.json);
    CHECK(e.code == c.code);
    CHECK(e.path == c.path);
    CHECK(e.message == c.message);
    CHECK(e.offset == cache::codec_error::npos);
  }

  auto e = decode_error<shop::everything>(
      R"({"history":[{"at":"2025-12-06T07:00:00.000Z","amount":1,"note":""},)"
      R"({"at":"yesterday","amount":1,"note":""}]})");
  CHECK(e.code == error::invalid_text);
  CHECK(e.path == "history[1].at");
  e = decode_error<std::vector<std::vector<int>>>("[[1],[2,\"x\"]]");
  CHECK(e.path == "[1][1]");
  e = decode_error<std::map<std::string, shop::geo>>(R"({"home":{"lat":1}})");
  CHECK(e.code == error::missing_field);
  CHECK(e.path == R"(["home"].lon)");
  e = decode_error<std::vector<bool>>("[true,1]");
  CHECK(e.code == error::wrong_type);
  CHECK(e.path == "[1]");
  e = decode_error<shop::geo>(R"({"lat":1,"lon":1e400})");
  CHECK(e.code == error::out_of_range);
  CHECK(e.path == "lon");
}

TEST_CASE("malformed JSON is an error with its byte offset", "[cache][json]") {
  struct bad_case {
    std::string json;
    error code;
    std::size_t offset;
  };
  const std::vector<bad_case> cases = {
      {R"({"lat":1,"lon":2)", error::invalid_json, 16},  // truncated object
      {R"({"lat":1,"lon":)", error::invalid_json, 15},   // truncated after a colon
      {R"({"lat":1,"lon":2} x)", error::trailing_data, 18},
      {R"({"lat":1,"lon":2}{})", error::trailing_data, 17},
      {R"({"lat":1,"lon":2},{})", error::trailing_data, 18},
      {R"({"lat":1,"lon":2}],[{})", error::trailing_data, 18},
      {R"({"lat":1 "lon":2})", error::invalid_json, 9},
      {R"({"lat":1,,"lon":2})", error::invalid_json, 9},
      {R"({"lat":1,"lon":2,})", error::invalid_json, 17},
      {R"({"lat":tru,"lon":2})", error::invalid_json, 7},
      {R"({"lat":1,"lon":-})", error::invalid_json, 15},
      {"", error::invalid_json, 0},
      {"   ", error::invalid_json, 0},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    const auto e = decode_error<shop::geo>(c.json);
    INFO(e.to_string());
    CHECK(e.code == c.code);
    CHECK(e.offset == c.offset);
    CHECK_FALSE(e.message.empty());
  }
  // Errors simdjson finds before the walk starts have no position, or one we work out.
  auto e = decode_error<std::optional<std::string>>("\"abc");
  CHECK(e.code == error::invalid_json);
  e = decode_error<std::optional<std::string>>("\"ab\xff\"");
  CHECK(e.code == error::invalid_json);
  CHECK(e.offset == 3);
  e = decode_error<std::optional<std::string>>(R"("\ud800")");
  CHECK(e.code == error::invalid_json);
  e = decode_error<std::optional<std::string>>(R"("\x")");
  CHECK(e.code == error::invalid_json);
  CHECK(decode_error<std::optional<int>>("nul").code == error::invalid_json);
  CHECK(decode_error<std::optional<int>>("1 2").code == error::trailing_data);
  e = decode_error<std::vector<int>>("[1,2");
  CHECK(e.code == error::invalid_json);
  CHECK(e.offset == 4);
  e = decode_error<std::vector<shop::geo>>(R"([{"lat":1,"lon":2})");
  CHECK(e.code == error::invalid_json);
  CHECK(e.offset == 18);
  CHECK(decode_error<std::vector<int>>("[1,2]]").code != std::error_code());
  CHECK(decode_error<std::vector<int>>("1").code == error::wrong_type);
  // Plain text where JSON was expected: what reading a value of another type looks like.
  CHECK(decode_error<shop::geo>("hello").code == error::invalid_json);
  CHECK(decode_error<shop::geo>("42").code == error::wrong_type);
}

TEST_CASE("integers and doubles at their limits inside JSON", "[cache][json]") {
  CHECK(decoded<std::vector<std::int64_t>>("[-9223372036854775808,9223372036854775807]") ==
        std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::max()});
  CHECK(decoded<std::vector<std::uint64_t>>("[0,18446744073709551615]") ==
        std::vector<std::uint64_t>{0, std::numeric_limits<std::uint64_t>::max()});
  CHECK(decode_error<std::vector<std::uint64_t>>("[18446744073709551616]").code ==
        error::out_of_range);
  CHECK(decode_error<std::vector<std::int64_t>>("[-9223372036854775809]").code ==
        error::out_of_range);
  CHECK(decode_error<std::vector<std::uint8_t>>("[256]").code == error::out_of_range);
  CHECK(decode_error<std::vector<std::int8_t>>("[-129]").code == error::out_of_range);
  CHECK(decode_error<std::vector<unsigned>>("[-0.0]").code == error::wrong_type);

  const std::vector<double> doubles = {0.0,
                                       -0.0,
                                       5e-324,
                                       std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::lowest(),
                                       std::numeric_limits<double>::min(),
                                       0.1,
                                       1.0 / 3,
                                       123456789012345680000.0};
  const auto back = round_trip(doubles);
  REQUIRE(back.size() == doubles.size());
  for (std::size_t i = 0; i < doubles.size(); ++i)
    CHECK(same_bits(back[i], doubles[i]));
  CHECK(decoded<std::vector<double>>("[1,2.5,-3e2]") == std::vector<double>{1, 2.5, -300});
  CHECK(decoded<std::vector<float>>("[0.1,16777217]") == std::vector<float>{0.1f, 16777216.0f});
  CHECK(decode_error<std::vector<float>>("[1e39]").code == error::out_of_range);
}

TEST_CASE("NaN and infinities go into JSON as strings, the protobuf way", "[cache][json]") {
  const std::vector<double> v = {std::numeric_limits<double>::quiet_NaN(),
                                 std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity(), 1};
  CHECK(encoded(v) == R"(["NaN","Infinity","-Infinity",1])");
  const auto back = round_trip(v);
  CHECK(std::isnan(back[0]));
  CHECK(back[1] == v[1]);
  CHECK(back[2] == v[2]);
  CHECK(encoded(std::vector<float>{-std::numeric_limits<float>::infinity()}) == R"(["-Infinity"])");
  CHECK(std::isinf(decoded<std::vector<float>>(R"(["Infinity"])")[0]));
  CHECK(decode_error<std::vector<double>>(R"(["nan"])").code == error::wrong_type);
}

TEST_CASE("strings: escapes, control characters, UTF-8 passthrough", "[cache][json]") {
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c)
    all_controls += static_cast<char>(c);
  CHECK(encoded(std::vector<std::string>{all_controls}) ==
        R"(["\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f)"
        R"(\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c)"
        R"(\u001d\u001e\u001f"])");
  CHECK(encoded(std::vector<std::string>{"quote \" backslash \\ slash / del \x7f"}) ==
        "[\"quote \\\" backslash \\\\ slash / del \x7f\"]");
  const std::string unicode = "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xE2\x80\xA8";
  CHECK(encoded(std::vector<std::string>{unicode}) == "[\"" + unicode + "\"]");
  const std::vector<std::string> strings = {all_controls, unicode, "", "\\\"", "\xF4\x8F\xBF\xBF"};
  CHECK(round_trip(strings) == strings);
  CHECK(decoded<std::vector<std::string>>(R"(["caf\u00e9 \ud83d\ude00 \/ \"q\""])") ==
        std::vector<std::string>{"caf\xC3\xA9 \xF0\x9F\x98\x80 / \"q\""});
  // A string JSON cannot carry.
  auto e = encode_error(std::vector<std::string>{"ok", "bad \xC3 byte"});
  CHECK(e.code == error::invalid_utf8);
  CHECK(e.path == "[1]");
  CHECK(e.message == "invalid UTF-8 at byte 4 of \"bad \xC3 byte\"");
  for (const char* bad : {"\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\x80"})
    CHECK(encode_error(std::vector<std::string>{bad}).code == error::invalid_utf8);
  e = encode_error(std::map<std::string, int>{{"k\xFF", 1}});
  CHECK(e.code == error::invalid_utf8);
  CHECK(e.path == "[\"k\xFF\"]");
  shop::person p;
  p.home.street = "\xFF";
  e = encode_error(p);
  CHECK(e.path == "home.street");
}

TEST_CASE("a type with its own codec, alone and inside JSON", "[cache][custom]") {
  CHECK(encoded(shop::rgb{255, 0, 16}) == "#ff0010");
  CHECK(decoded<shop::rgb>("#ff0010") == shop::rgb{255, 0, 16});
  auto e = decode_error<shop::rgb>("red");
  CHECK(e.code == std::errc::invalid_argument);
  CHECK(e.message == "not #rrggbb");

  const shop::palette p{"warm", {255, 128, 0}, {{1, 2, 3}, {0, 0, 0}}};
  CHECK(encoded(p) == R"({"name":"warm","main":"#ff8000","others":["#010203","#000000"]})");
  CHECK(round_trip(p) == p);
  e = decode_error<shop::palette>(R"({"name":"x","main":"#000000","others":["#0g0000"]})");
  CHECK(e.code == std::errc::invalid_argument);
  CHECK(e.path == "others[0]");
  CHECK(e.message == "not a hex digit");
  e = decode_error<shop::palette>(R"({"name":"x","main":7,"others":[]})");
  CHECK(e.code == error::wrong_type);
  CHECK(e.path == "main");

  // A binary format is fine on its own, and refused inside JSON rather than corrupting it.
  const shop::blob b{std::string("\0\xff", 2)};
  CHECK(encoded(b) == std::string("\x01\0\xff", 3));
  CHECK(round_trip(b) == b);
  e = encode_error(shop::holder{b});
  CHECK(e.code == error::invalid_utf8);
  CHECK(e.path == "b");
}

TEST_CASE("no input crashes the reader: every prefix, byte flips, deep nesting", "[cache][json]") {
  const std::string json = encoded(full_sample());
  shop::everything out;
  cache::codec_error where;
  for (std::size_t n = 0; n < json.size(); ++n) {
    INFO(n);
    CHECK(cache::decode(std::string_view(json).substr(0, n), out, where));
  }
  std::mt19937_64 rng(11);
  std::size_t failures = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string mutated = json;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k)
      mutated[rng() % mutated.size()] = static_cast<char>(rng());
    if (cache::decode(mutated, out, where)) {
      ++failures;
      CHECK(where.code.category() == cache::error_category());
      CHECK_FALSE(where.message.empty());
    }
  }
  CHECK(failures > 10000);

  // Nesting is bounded by max_depth, not by the stack: both ways.
  const auto nested = [](int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i)
      s += R"({"name":"n","children":[)";
    s += R"({"name":"leaf","children":[]})";
    for (int i = 0; i < depth; ++i)
      s += "]}";
    return s;
  };
  shop::tree t;
  // Each tree level is an object and an array.
  constexpr int deepest = cache::max_depth / 2 - 1;
  CHECK_FALSE(cache::decode(nested(deepest), t, where));
  CHECK(encoded(t) == nested(deepest));
  CHECK(cache::decode(nested(deepest + 1), t, where) == error::too_deep);
  CHECK(where.message == "more than 256 levels of arrays and objects");
  CHECK(where.path.rfind("children[0].children[0].", 0) == 0);
  CHECK(cache::decode(nested(100000), t, where) == error::too_deep);
  shop::tree* leaf = &t;
  for (int i = 0; i < 10; ++i)
    leaf = &leaf->children.emplace_back();
  CHECK(encode_error(t).code == error::too_deep);
  // Deep JSON in a member that is skipped costs no recursion.
  CHECK(decoded<shop::geo>(R"({"lat":1,"lon":2,"x":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}") == shop::geo{1, 2});
}

TEST_CASE("large values, and threads decoding at once", "[cache][json]") {
  // A value larger than what the per-thread buffers keep: decoded twice, the same.
  const std::vector<std::string> big(3, std::string(1 << 20, 'x'));
  CHECK(round_trip(big) == big);
  CHECK(round_trip(big) == big);
  // A new vector is reserved once from the element count, up to a bound, then grows.
  std::vector<int> many(100000);
  for (std::size_t i = 0; i < many.size(); ++i)
    many[i] = static_cast<int>(i * 7);
  CHECK(round_trip(many) == many);

  const shop::everything sample = full_sample();
  const std::string json = encoded(sample);
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      shop::everything out;
      cache::codec_error where;
      for (int k = 0; k < 500; ++k)
        good[static_cast<std::size_t>(i)] += !cache::decode(json, out, where) && out == sample;
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(good == std::vector<int>(4, 500));
}

TEST_CASE("private described members, and user codecs that decode JSON themselves", "[cache]") {
  const shop::account a("ann", -5);
  CHECK(encoded(a) == R"({"owner_":"ann","balance_":-5})");
  CHECK(round_trip(a) == a);

  const shop::trip t{"tour", {{{1, 2}}, {{3.5, -4}}}};
  const std::string json = encoded(t);
  CHECK(json ==
        R"({"name":"tour","stops":["v1:{\"lat\":1,\"lon\":2}","v1:{\"lat\":3.5,\"lon\":-4}"]})");
  CHECK(round_trip(t) == t);
  const auto e = decode_error<shop::trip>(R"({"name":"x","stops":["v1:{\"lat\":1}"]})");
  CHECK(e.code == error::missing_field);
  CHECK(e.path == "stops[0].lon");
}

// --- errors -------------------------------------------------------------------------------------

TEST_CASE("every cache error has its own message in the redcoro.cache category", "[cache]") {
  std::set<std::string> messages;
  const int first = static_cast<int>(error::invalid_json);
  const int last = static_cast<int>(error::invalid_utf8);
  static_assert(static_cast<int>(error::too_deep) < last);
  for (int v = first; v <= last; ++v) {
    const std::error_code ec = static_cast<error>(v);
    CHECK(ec.category().name() == std::string("redcoro.cache"));
    CHECK(ec.message().find("unknown") == std::string::npos);
    messages.insert(ec.message());
  }
  CHECK(messages.size() == static_cast<std::size_t>(last - first + 1));
}

TEST_CASE("codec_error::to_string gives the whole story in one line", "[cache]") {
  shop::address a;
  cache::codec_error where;
  where.key = "user:1";
  REQUIRE(cache::decode(R"({"street":"s","zip":70000})", a, where));
  CHECK(where.key == "user:1");  // left to the caller
  CHECK(where.to_string() ==
        "value out of range for the C++ type at zip (key \"user:1\"): 70000 does not fit in "
        "uint16");
  where = {};
  REQUIRE(cache::decode(R"({"street":"s")", a, where));
  CHECK(where.to_string() ==
        "malformed JSON: The JSON document has an improper structure: missing or superfluous "
        "commas, braces, missing keys, etc. (at byte 13)");
}
