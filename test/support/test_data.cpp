#include "support/test_data.hpp"

namespace redcoro::test {

std::string test_data(std::string_view name) {
  return std::string(REDCORO_TEST_DATA) + "/" + std::string(name);
}

}  // namespace redcoro::test
