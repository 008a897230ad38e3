#include <redcoro/proto/pubsub.hpp>

#include <cstddef>

namespace redcoro::proto {
namespace {

constexpr std::string_view command_names[] = {"SUBSCRIBE",   "PSUBSCRIBE",   "SSUBSCRIBE",
                                              "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};
constexpr std::size_t first_confirmation = static_cast<std::size_t>(pubsub_kind::subscribe);

bool iequals_upper(std::string_view any, std::string_view upper) noexcept {
  if (any.size() != upper.size()) return false;
  for (std::size_t i = 0; i < any.size(); ++i) {
    char c = any[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<pubsub_kind> pubsub_kind_of_frame(std::string_view first) noexcept {
  for (std::size_t i = 0; i < std::size(pubsub_frame_names); ++i)
    if (first == pubsub_frame_names[i]) return static_cast<pubsub_kind>(i);
  return std::nullopt;
}

std::optional<pubsub_kind> pubsub_kind_of_command(std::string_view command) noexcept {
  if (command.size() < 9 || command.size() > 12) return std::nullopt;
  for (std::size_t i = 0; i < std::size(command_names); ++i)
    if (iequals_upper(command, command_names[i]))
      return static_cast<pubsub_kind>(first_confirmation + i);
  return std::nullopt;
}

std::string_view pubsub_command_name(pubsub_kind k) noexcept {
  const auto i = static_cast<std::size_t>(k);
  return i >= first_confirmation ? command_names[i - first_confirmation] : std::string_view();
}

}  // namespace redcoro::proto
