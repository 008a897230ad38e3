#include <redcoro/proto/key_slot.hpp>

#include <array>
#include <cstddef>
#include <cstring>

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

// tables[k][b]: the CRC of byte b followed by k zero bytes. Eight bytes a step, with eight
// independent lookups (keys are hashed on every request a cluster routes).
constexpr std::array<std::array<std::uint16_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint16_t, 256>, 8> t{};
  t[0] = make_table();
  for (std::size_t k = 1; k < t.size(); ++k)
    for (unsigned i = 0; i < 256; ++i)
      t[k][i] = static_cast<std::uint16_t>((t[k - 1][i] << 8) ^ t[0][t[k - 1][i] >> 8]);
  return t;
}

constexpr auto tables = make_tables();

// Whether one of the 8 bytes at `p` is '{' (the exact zero-byte test, on v ^ "{{{{{{{{").
bool has_brace(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  constexpr std::uint64_t ones = 0x0101010101010101u;
  v ^= ones * '{';
  return ((v - ones) & ~v & (ones << 7)) != 0;
}

// The CRC of `data`. With WatchBrace, stops early and sets `brace` when it meets a '{': the
// key has a hash tag, and the caller hashes that instead.
template <bool WatchBrace>
std::uint16_t crc_of(std::string_view data, bool& brace) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t head = data.size() % 8;
  // Leading zero bytes leave a CRC that starts at 0 at 0: the first `head` bytes are the end
  // of an eight-byte step whose other bytes are zero, each byte one lookup.
  std::uint16_t crc = 0;
  for (std::size_t i = 0; i < head; ++i) {
    if (WatchBrace && p[i] == '{') {
      brace = true;
      return 0;
    }
    crc ^= tables[head - 1 - i][p[i]];
  }
  p += head;
  for (std::size_t n = data.size() - head; n > 0; n -= 8, p += 8) {
    if (WatchBrace && has_brace(p)) {
      brace = true;
      return 0;
    }
    crc = static_cast<std::uint16_t>(tables[7][p[0] ^ (crc >> 8)] ^ tables[6][p[1] ^ (crc & 0xff)] ^
                                     tables[5][p[2]] ^ tables[4][p[3]] ^ tables[3][p[4]] ^
                                     tables[2][p[5]] ^ tables[1][p[6]] ^ tables[0][p[7]]);
  }
  return crc;
}

}  // namespace

std::uint16_t crc16(std::string_view data) noexcept {
  bool unused = false;
  return crc_of<false>(data, unused);
}

std::uint16_t key_slot(std::string_view key) noexcept {
  // One pass over a key without '{', the common case; one with it may have a hash tag.
  bool brace = false;
  const std::uint16_t crc = crc_of<true>(key, brace);
  return static_cast<std::uint16_t>((brace ? crc16(hash_tag(key)) : crc) % slot_count);
}

std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

}  // namespace redcoro::proto
