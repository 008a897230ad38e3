#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/detail/command_list.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/value.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <span>
#include <vector>

namespace redcoro::proto {
namespace {

using detail::iequals_upper;
constexpr const auto& table = detail::command_list;
constexpr std::size_t table_size = detail::command_list_size;

constexpr std::uint32_t hash(std::string_view s) noexcept {
  std::uint32_t h = 2166136261u;  // FNV-1a over the upper-case bytes
  for (char c : s)
    h = (h ^ static_cast<unsigned char>(detail::upper_ascii(c))) * 16777619u;
  return h;
}

// Open addressing over a power of two four times the table: most names are found at the
// first probe, after one hash of a few bytes and one comparison.
constexpr std::size_t buckets = 1024;
static_assert(buckets >= 4 * table_size);

constexpr std::array<std::uint8_t, buckets> make_index() {
  std::array<std::uint8_t, buckets> index{};
  for (std::size_t i = 0; i < table_size; ++i) {
    std::size_t b = hash(table[i].name) & (buckets - 1);
    bool duplicate = false;
    while (index[b] != 0) {
      if (table[index[b] - 1].name == table[i].name) duplicate = true;
      b = (b + 1) & (buckets - 1);
    }
    if (!duplicate) index[b] = static_cast<std::uint8_t>(i + 1);
  }
  return index;
}
constexpr auto index = make_index();

std::optional<std::chrono::milliseconds> seconds_arg(std::string_view text) noexcept {
  double s = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), s);
  if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || !(s >= 0) || !std::isfinite(s))
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(s * 1000.0)));
}

std::optional<std::chrono::milliseconds> millis_arg(std::string_view text) noexcept {
  std::int64_t ms = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (r.ec != std::errc{} || r.ptr != text.data() + text.size() || ms < 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace

std::uint8_t command_id(std::string_view name) noexcept {
  if (name.empty() || name.size() > 16) return 0;
  for (std::size_t b = hash(name) & (buckets - 1);; b = (b + 1) & (buckets - 1)) {
    const std::uint8_t id = index[b];
    if (id == 0) return 0;
    if (iequals_upper(name, table[id - 1].name)) return id;
  }
}

const command_info* command_by_id(std::uint8_t id) noexcept {
  return id == 0 || id > table_size ? nullptr : &table[id - 1];
}

std::optional<std::chrono::milliseconds> block_time(std::string_view command_bytes) noexcept {
  // At most a handful of arguments matter; the others are looked at and skipped.
  std::string_view name, first, last, previous, block;
  std::size_t count = 0, options_from = 2;
  bool streams = false;
  const bool whole = request::for_each_arg(command_bytes, [&](std::string_view arg) {
    if (count == 0) {
      name = arg;
      // XREADGROUP GROUP <group> <consumer>: names, whatever they spell.
      if (iequals_upper(name, "XREADGROUP")) options_from = 5;
    } else if (count == 1) {
      first = arg;
    }
    // XREAD's options come before STREAMS; after it, everything is a key or an id.
    if (!streams && block.empty() && count >= options_from && iequals_upper(previous, "BLOCK"))
      block = arg;
    if (iequals_upper(arg, "STREAMS")) streams = true;
    previous = arg;
    last = arg;
    ++count;
  });
  if (!whole) return std::nullopt;
  const command_info* c = find_command(name);
  if (!c || count < 2) return std::nullopt;
  switch (c->blocking) {
    case block_arg::none:
      return std::nullopt;
    case block_arg::last_seconds:
      return seconds_arg(last);
    case block_arg::first_seconds:
      return seconds_arg(first);
    case block_arg::block_option:
      if (block.empty()) return std::nullopt;
      return millis_arg(block);
    case block_arg::last_millis:
      return millis_arg(last);
  }
  return std::nullopt;
}

namespace {

// BLMOVE's element, back from the end of the destination where it went to the end of the
// source it came from, only if it is still there: another client may have taken it from the
// destination since, and then moving whatever is there now would move the wrong element.
constexpr std::string_view move_back_script =
    "local at = ARGV[2] == 'LEFT' and 0 or -1 "
    "if redis.call('LINDEX', KEYS[1], at) == ARGV[1] then "
    "return redis.call('LMOVE', KEYS[1], KEYS[2], ARGV[2], ARGV[3]) end "
    "return false";

bool text_of(const value& v, std::string_view& out) {
  if (v.is_aggregate() || v.is_null() || v.is_error()) return false;
  out = v.text;
  return true;
}

}  // namespace

bool append_hand_back(std::string_view command_bytes, const value& reply, request& out) {
  if (reply.is_null() || reply.is_error()) return false;
  std::vector<std::string_view> argv;
  if (!request::for_each_arg(command_bytes, [&](std::string_view a) { argv.push_back(a); }))
    return false;
  if (argv.empty()) return false;
  const command_info* c = find_command(argv[0]);
  if (!c) return false;
  std::string_view key, element;
  switch (c->give_back) {
    case hand_back::none:
      return false;
    case hand_back::lpush:
    case hand_back::rpush:
      // [key, element]
      if (reply.size() != 2 || !text_of(reply[0], key) || !text_of(reply[1], element)) return false;
      out.push(c->give_back == hand_back::lpush ? "LPUSH" : "RPUSH", key, element);
      return true;
    case hand_back::lmove_back: {
      // BLMOVE source destination wherefrom whereto timeout; BRPOPLPUSH source destination
      // timeout, which is BLMOVE ... RIGHT LEFT.
      if (!text_of(reply, element) || argv.size() < 4) return false;
      const bool blmove = argv.size() >= 6;
      const std::string_view from = blmove ? argv[3] : "RIGHT";
      const std::string_view to = blmove ? argv[4] : "LEFT";
      out.push("EVAL", move_back_script, 2, argv[2], argv[1], element, to, from);
      return true;
    }
    case hand_back::zadd: {
      // [key, member, score]
      std::string_view member, score;
      if (reply.size() != 3 || !text_of(reply[0], key) || !text_of(reply[1], member) ||
          !text_of(reply[2], score))
        return false;
      out.push("ZADD", key, "NX", score, member);
      return true;
    }
    case hand_back::lmpop: {
      // BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n] -> [key, [element...]], in the
      // order they were popped: pushing them back last first restores the list.
      if (reply.size() != 2 || !text_of(reply[0], key) || !reply[1].is_aggregate()) return false;
      std::size_t numkeys = 0;
      const std::string_view n = argv.size() > 2 ? argv[2] : std::string_view();
      if (std::from_chars(n.data(), n.data() + n.size(), numkeys).ec != std::errc{} ||
          argv.size() < 4 + numkeys)
        return false;
      const std::string_view end = argv[3 + numkeys];
      std::vector<std::string_view> elements;
      for (auto it = reply[1].elements.rbegin(); it != reply[1].elements.rend(); ++it) {
        if (!text_of(*it, element)) return false;
        elements.push_back(element);
      }
      if (elements.empty()) return false;
      const bool left = end.size() == 4 && (end[0] == 'L' || end[0] == 'l');
      out.push(left ? "LPUSH" : "RPUSH", key, elements);
      return true;
    }
    case hand_back::zmpop: {
      // [key, [[member, score]...]]
      if (reply.size() != 2 || !text_of(reply[0], key) || !reply[1].is_aggregate()) return false;
      std::vector<std::string_view> pairs;
      for (const value& p : reply[1].elements) {
        std::string_view member, score;
        if (p.size() != 2 || !text_of(p[0], member) || !text_of(p[1], score)) return false;
        pairs.push_back(score);
        pairs.push_back(member);
      }
      if (pairs.empty()) return false;
      out.push("ZADD", key, "NX", pairs);
      return true;
    }
  }
  return false;
}

}  // namespace redcoro::proto
