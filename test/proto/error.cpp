#include <redcoro/proto/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>

using redcoro::proto::error;

TEST_CASE("every error has its own message in the redcoro.proto category", "[error]") {
  std::set<std::string> messages;
  const int first = static_cast<int>(error::invalid_data_type);
  const int last = static_cast<int>(error::response_size_mismatch);
  for (int e = first; e <= last; ++e) {
    const std::error_code ec = static_cast<error>(e);
    CHECK(ec.category().name() == std::string("redcoro.proto"));
    CHECK(ec.message().find("unknown") == std::string::npos);
    messages.insert(ec.message());
  }
  CHECK(messages.size() == static_cast<std::size_t>(last - first + 1));
  CHECK(std::error_code(error::missing_crlf) == error::missing_crlf);
  CHECK(redcoro::proto::is_protocol_error(error::line_too_long));
  CHECK_FALSE(redcoro::proto::is_protocol_error(error::type_mismatch));
}
