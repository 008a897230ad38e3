#pragma once

#include <redcoro/proto/detail/ascii.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>

/// \file
/// The pub/sub frames and commands, named once: the first element of each push frame
/// ("message", "subscribe"...) and the (un)subscribe commands that those confirmations answer.

namespace redcoro::proto {

/// What a pub/sub frame is: three kinds of message, then the confirmations of the six
/// (un)subscribe commands, in this order. The family of a kind (channels, patterns, shard
/// channels) is pubsub_family().
enum class pubsub_kind : std::uint8_t {
  message,    ///< on a channel
  pmessage,   ///< on a channel matching a pattern
  smessage,   ///< on a shard channel
  subscribe,  ///< confirmations of SUBSCRIBE ... SUNSUBSCRIBE
  psubscribe,
  ssubscribe,
  unsubscribe,
  punsubscribe,
  sunsubscribe,
};

/// The frame's first element for each kind, as the server sends it (lower case).
inline constexpr std::string_view pubsub_frame_names[] = {
    "message",    "pmessage",    "smessage",     "subscribe",   "psubscribe",
    "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"};

/// The kind of a frame from its first element, or nullopt (an invalidation push, say).
std::optional<pubsub_kind> pubsub_kind_of_frame(std::string_view first) noexcept;

/// The (un)subscribe commands, in the order of their confirmation kinds.
inline constexpr std::string_view pubsub_command_names[] = {
    "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

/// The confirmation kind of an (un)subscribe command named `command` in any case
/// (SUBSCRIBE -> pubsub_kind::subscribe), or nullopt for any other command.
constexpr std::optional<pubsub_kind> pubsub_kind_of_command(std::string_view command) noexcept {
  if (command.size() < 9 || command.size() > 12) return std::nullopt;
  for (std::size_t i = 0; i < std::size(pubsub_command_names); ++i)
    if (detail::iequals_upper(command, pubsub_command_names[i]))
      return static_cast<pubsub_kind>(static_cast<std::size_t>(pubsub_kind::subscribe) + i);
  return std::nullopt;
}

/// The command a confirmation kind answers ("SUBSCRIBE"...); empty for messages.
constexpr std::string_view pubsub_command_name(pubsub_kind k) noexcept {
  const auto i = static_cast<std::size_t>(k),
             first = static_cast<std::size_t>(pubsub_kind::subscribe);
  return i >= first ? pubsub_command_names[i - first] : std::string_view();
}

constexpr bool is_pubsub_message(pubsub_kind k) noexcept {
  return k <= pubsub_kind::smessage;
}
constexpr bool is_unsubscribe(pubsub_kind k) noexcept {
  return k >= pubsub_kind::unsubscribe;
}
/// 0: channels, 1: patterns, 2: shard channels.
constexpr int pubsub_family(pubsub_kind k) noexcept {
  return static_cast<int>(k) % 3;
}
/// The subscribe and unsubscribe kinds of a family (0: channels, 1: patterns, 2: shard
/// channels).
constexpr pubsub_kind subscribe_kind(int family) noexcept {
  return static_cast<pubsub_kind>(static_cast<int>(pubsub_kind::subscribe) + family);
}
constexpr pubsub_kind unsubscribe_kind(int family) noexcept {
  return static_cast<pubsub_kind>(static_cast<int>(pubsub_kind::unsubscribe) + family);
}

}  // namespace redcoro::proto
