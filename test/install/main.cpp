// Builds a request, parses a reply and makes a connection with an installed redcoro; exits
// non-zero on a mismatch.
#include <redcoro/client/connection.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/request.hpp>

#include <cstdio>
#include <string_view>

int main() {
  redcoro::proto::request req;
  req.push("GET", "key");
  if (req.payload() != "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n") return 1;

  redcoro::proto::parser parser;
  std::string_view reply = "$5\r\nhello\r\n";
  std::size_t pos = 0;
  std::error_code ec;
  std::string_view text;
  const auto keep = [&](const redcoro::proto::node& n) { text = n.value; };
  if (!parser.consume_message(reply, pos, keep, ec) || text != "hello") return 1;
  // The client links too: a connection that is closed before it ever runs.
  boost::asio::io_context ioc;
  redcoro::connection conn(ioc, redcoro::config{});
  conn.close();
  std::puts("redcoro found and working");
  return 0;
}
