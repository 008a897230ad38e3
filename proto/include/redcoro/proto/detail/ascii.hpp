#pragma once

#include <cstddef>
#include <string_view>

namespace redcoro::proto::detail {

constexpr char upper_ascii(char c) noexcept {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

/// `any_case` equals `upper_case` (upper case already) but for the case of ASCII letters.
constexpr bool iequals_upper(std::string_view any_case, std::string_view upper_case) noexcept {
  if (any_case.size() != upper_case.size()) return false;
  for (std::size_t i = 0; i < any_case.size(); ++i)
    if (upper_ascii(any_case[i]) != upper_case[i]) return false;
  return true;
}

}  // namespace redcoro::proto::detail
