#pragma once

#include <string>
#include <string_view>

namespace redcoro::test {

/// The path of a file of test/data.
std::string test_data(std::string_view name);

}  // namespace redcoro::test
