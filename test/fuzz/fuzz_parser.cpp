// libFuzzer target for the RESP3 parser and the adapters.
//
// The first input byte picks the limits (its top bit: the largest the parser accepts, so that
// lengths near SIZE_MAX reach its arithmetic) and a chunk size (the other bits); the rest is
// the wire data. Properties checked:
//  - nothing crashes, leaks or reads out of bounds (the sanitizers);
//  - feeding the data in chunks gives exactly the nodes and error of feeding it whole;
//  - every node's view lies inside the input;
//  - the adapters accept whatever node stream the parser produces.

#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/response.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace proto = redcoro::proto;

struct seen {
  proto::type data_type;
  bool in_attribute;
  std::uint32_t depth;
  std::size_t aggregate_size;
  std::string value;
  bool operator==(const seen&) const = default;
};

struct outcome {
  std::vector<seen> nodes;
  std::size_t messages = 0;
  std::error_code ec;
};

// Small limits so that the fuzzer reaches every limit check, or none at all (the parser
// clamps them) so that it reaches the arithmetic on huge lengths.
proto::parser_config limits(bool unlimited) {
  proto::parser_config l;
  l.max_depth = 16;
  l.max_blob_length = unlimited ? SIZE_MAX : 4096;
  l.max_aggregate_size = unlimited ? SIZE_MAX : 1024;
  l.max_line_length = unlimited ? SIZE_MAX : 512;
  return l;
}

outcome run(std::string_view wire, std::size_t chunk, bool unlimited) {
  outcome out;
  proto::parser p(limits(unlimited));
  proto::generic_response generic;
  proto::response_adapter<proto::generic_response> generic_adapter(generic);
  proto::response<std::vector<std::string>, std::map<std::string, std::optional<double>>,
                  std::int64_t>
      typed;
  proto::response_adapter<decltype(typed)> typed_adapter(typed);

  std::string buffer;
  std::size_t pos = 0, fed = 0;
  while (fed < wire.size() || pos < buffer.size()) {
    const std::size_t n = std::min(chunk, wire.size() - fed);
    buffer.append(wire.substr(fed, n));
    fed += n;
    for (;;) {
      auto node = p.consume(buffer, pos, out.ec);
      if (out.ec) return out;
      if (node) {
        if (!node->value.empty() &&
            (node->value.data() < buffer.data() ||
             node->value.data() + node->value.size() > buffer.data() + buffer.size()))
          std::abort();
        out.nodes.push_back({node->data_type, node->in_attribute, node->depth, node->aggregate_size,
                             std::string(node->value)});
        generic_adapter.on_node(out.messages % 64, *node);
        typed_adapter.on_node(out.messages % 3, *node);
      }
      if (p.done())
        ++out.messages;
      else if (!node)
        break;
    }
    buffer.erase(0, pos);
    pos = 0;
    if (n == 0) break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool unlimited = (data[0] & 0x80) != 0;
  const std::size_t chunk = 1 + (data[0] & 0x7f) % 17;
  const std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  const outcome whole = run(wire, wire.size() + 1, unlimited);
  const outcome split = run(wire, chunk, unlimited);
  if (!(whole.nodes == split.nodes) || whole.messages != split.messages || whole.ec != split.ec)
    std::abort();
  return 0;
}
