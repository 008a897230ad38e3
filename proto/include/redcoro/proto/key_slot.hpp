#pragma once

#include <cstdint>
#include <string_view>

namespace redcoro::proto {

/// Number of hash slots of a Redis Cluster.
inline constexpr std::uint16_t slot_count = 16384;

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
std::uint16_t crc16(std::string_view data) noexcept;

/// The part of `key` that is hashed: the text between the first `{` and the first `}`
/// after it, when that is not empty; otherwise the whole key. Keys sharing a hash tag
/// (`{user:42}:name`, `{user:42}:mail`) live in the same slot, so multi-key commands and
/// transactions can use them together.
std::string_view hash_tag(std::string_view key) noexcept;

/// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it.
/// (crc16(hash_tag(key)) % slot_count, in one pass over a key without `{`.)
std::uint16_t key_slot(std::string_view key) noexcept;

}  // namespace redcoro::proto
