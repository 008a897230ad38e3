#include <redcoro/proto/key_slot.hpp>

#include <array>
#include <cstddef>

namespace redcoro::proto {

namespace {

// Polynomial 0x1021, initial value 0, no reflection: the table for one byte at a time.
constexpr std::array<std::uint16_t, 256> make_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    auto crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    t[i] = crc;
  }
  return t;
}

constexpr auto table = make_table();

// The contribution of a byte followed by a zero byte: two bytes per step with two
// independent lookups (the key is hashed on every request).
constexpr std::array<std::uint16_t, 256> make_table2() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i)
    t[i] = static_cast<std::uint16_t>(((table[i] & 0xff) << 8) ^ table[table[i] >> 8]);
  return t;
}

constexpr auto table2 = make_table2();

}  // namespace

std::uint16_t crc16(std::string_view data) noexcept {
  std::uint16_t crc = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  for (; n >= 2; n -= 2, p += 2)
    crc = static_cast<std::uint16_t>(table2[(crc >> 8) ^ p[0]] ^ table[(crc & 0xff) ^ p[1]]);
  if (n) crc = static_cast<std::uint16_t>((crc << 8) ^ table[((crc >> 8) ^ p[0]) & 0xff]);
  return crc;
}

std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

}  // namespace redcoro::proto
