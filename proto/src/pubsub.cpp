#include <redcoro/proto/pubsub.hpp>

#include <cstddef>

namespace redcoro::proto {

std::optional<pubsub_kind> pubsub_kind_of_frame(std::string_view first) noexcept {
  for (std::size_t i = 0; i < std::size(pubsub_frame_names); ++i)
    if (first == pubsub_frame_names[i]) return static_cast<pubsub_kind>(i);
  return std::nullopt;
}

}  // namespace redcoro::proto
