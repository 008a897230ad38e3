// The protocol layer on its own: build a request, then decode replies into C++ types.
// Runs without a server: the replies are the bytes a server would send.
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

int main() {
  namespace proto = redcoro::proto;

  // Commands go into one buffer; CR/LF/NUL in arguments are plain data.
  proto::request req;
  req.push("SET", "greeting", "hello", "EX", 60);
  req.push("INCR", "visits");
  req.push("GET", "missing");
  std::printf("request: %zu commands, %zu bytes\n", req.commands(), req.payload().size());

  // What the server answers: OK, a counter, and a nil.
  const std::string_view bytes_received = "+OK\r\n:7\r\n_\r\n";

  proto::response<std::string, std::int64_t, std::optional<std::string>> resp;
  proto::response_adapter<decltype(resp)> adapter(resp);
  proto::parser parser;
  std::size_t pos = 0, index = 0;
  std::error_code ec;
  auto sink = [&](const proto::node& n) { adapter.on_node(index, n); };
  while (parser.consume_message(bytes_received, pos, sink, ec))
    ++index;
  if (ec) {
    std::printf("malformed reply: %s\n", ec.message().c_str());
    return 1;
  }

  const auto& [set, visits, missing] = resp;
  std::printf("SET -> %s, INCR -> %lld, GET missing -> %s\n", set.value().c_str(),
              static_cast<long long>(visits.value()), missing.value() ? "a value" : "nil");
  return set.value() == "OK" && visits.value() == 7 && !missing.value() ? 0 : 1;
}
