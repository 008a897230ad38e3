#pragma once

#include <redcoro/proto/command_info.hpp>
#include <redcoro/proto/detail/command_list.hpp>
#include <redcoro/proto/pubsub.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

/// \file
/// Command names fixed at compile time. request::push takes one in place of a string and then
/// looks nothing up: the command's id, whether it is answered out of band, and its name's bulk
/// string are worked out by the compiler. The typed helpers (cmd::get...) use it; so can code
/// that builds requests in a hot loop.
///
/// \code
///   using namespace redcoro::proto::literals;
///   req.push("GET"_cmd, key);  // the same bytes as req.push("GET", key)
/// \endcode

namespace redcoro::proto {

class command_name {
 public:
  /// The longest name taken (module commands such as "FT.SEARCH" fit).
  static constexpr std::size_t max_size = 32;
  /// The bytes bulk() points into: its bulk string, then zeros. Copying all of them is a few
  /// fixed-size moves, cheaper than copying bulk().size() bytes.
  static constexpr std::size_t bulk_capacity = max_size + 8;

  /// `name` must be a constant of 1 to max_size characters: anything else does not compile.
  consteval explicit command_name(std::string_view name) : id_(detail::command_id_by_walk(name)) {
    if (name.empty() || name.size() > max_size) throw "a command name has 1 to 32 characters";
    // "$<size>\r\n<name>\r\n"
    std::size_t at = 0;
    bulk_[at++] = '$';
    if (name.size() >= 10) bulk_[at++] = static_cast<char>('0' + name.size() / 10);
    bulk_[at++] = static_cast<char>('0' + name.size() % 10);
    bulk_[at++] = '\r';
    bulk_[at++] = '\n';
    name_at_ = static_cast<std::uint8_t>(at);
    for (char c : name)
      bulk_[at++] = c;
    bulk_[at++] = '\r';
    bulk_[at++] = '\n';
    bulk_size_ = static_cast<std::uint8_t>(at);
    if (const auto kind = pubsub_kind_of_command(name)) out_of_band_ = *kind;
  }

  /// The name as written.
  constexpr std::string_view name() const noexcept {
    return {bulk_.data() + name_at_, bulk_size_ - name_at_ - 2u};
  }
  /// Its command_id(): 0 when redcoro knows nothing about it.
  constexpr std::uint8_t id() const noexcept { return id_; }
  /// The name as a RESP bulk string.
  constexpr std::string_view bulk() const noexcept { return {bulk_.data(), bulk_size_}; }
  /// The confirmations that answer it, for the (un)subscribe commands.
  constexpr std::optional<pubsub_kind> out_of_band() const noexcept { return out_of_band_; }

 private:
  std::array<char, bulk_capacity> bulk_{};
  std::uint8_t bulk_size_ = 0;
  std::uint8_t name_at_ = 0;
  std::uint8_t id_ = 0;
  std::optional<pubsub_kind> out_of_band_;
};

namespace detail {
// A string literal as a template argument.
template <std::size_t N>
struct name_literal {
  char text[N]{};
  consteval name_literal(const char (&s)[N]) {  // NOLINT: implicit, from the literal
    for (std::size_t i = 0; i < N; ++i)
      text[i] = s[i];
  }
  constexpr std::string_view view() const noexcept { return {text, N - 1}; }
};
// One constant per name, in read-only data: a push copies its bulk from there instead of from
// a temporary the caller would build on its stack for every call.
template <name_literal S>
inline constexpr command_name named_command{S.view()};
}  // namespace detail

namespace literals {
/// `"GET"_cmd` is a constant `command_name("GET")`.
template <detail::name_literal S>
constexpr const command_name& operator""_cmd() noexcept {
  return detail::named_command<S>;
}
}  // namespace literals

}  // namespace redcoro::proto
