#pragma once

// The reply to COMMAND of a real server (Redis 7.0.15, RESP3), captured once and kept as test
// data, so that the router and key-prefix tests need no server.

#include "support/proto_helpers.hpp"
#include "support/test_data.hpp"
#include <redcoro/proto/command_table.hpp>
#include <redcoro/proto/response.hpp>

#include <fstream>
#include <iterator>
#include <string>

namespace redcoro::test {

inline const proto::value& captured_command_reply() {
  static const proto::value reply = [] {
    std::ifstream in(test_data("command-7.0.15.resp"), std::ios::binary);
    REQUIRE(in);
    const std::string wire{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    proto::response<proto::value> r;
    REQUIRE_FALSE(decode(wire, r));
    REQUIRE(std::get<0>(r).has_value());
    return std::get<0>(r).value();
  }();
  return reply;
}

inline const proto::command_table& captured_command_table() {
  static const proto::command_table table = [] {
    proto::command_table t;
    REQUIRE_FALSE(t.load(captured_command_reply()));
    return t;
  }();
  return table;
}

}  // namespace redcoro::test
