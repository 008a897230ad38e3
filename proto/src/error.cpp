#include <redcoro/proto/error.hpp>

namespace redcoro::proto {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redcoro.proto"; }

  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::invalid_data_type:
        return "invalid RESP3 type byte where an element must start";
      case error::missing_crlf:
        return "expected CRLF at the end of a line or blob (a line holds no lone CR or LF)";
      case error::invalid_length:
        return "malformed length or element count";
      case error::length_overflow:
        return "length or element count does not fit in 64 bits";
      case error::invalid_number:
        return "malformed RESP3 number";
      case error::number_overflow:
        return "RESP3 number outside the signed 64-bit range";
      case error::invalid_double:
        return "malformed RESP3 double";
      case error::invalid_boolean:
        return "RESP3 boolean is neither 't' nor 'f'";
      case error::invalid_big_number:
        return "malformed RESP3 big number";
      case error::invalid_null:
        return "RESP3 null with a payload";
      case error::invalid_verbatim:
        return "verbatim string without its 'xxx:' format prefix";
      case error::invalid_chunk:
        return "streamed string chunk out of place or missing";
      case error::unexpected_end:
        return "end marker '.' outside a streamed aggregate, or right after an attribute";
      case error::unpaired_map_element:
        return "streamed map or attribute ended after a key";
      case error::nesting_too_deep:
        return "aggregates nested deeper than the parser's max_depth";
      case error::blob_too_large:
        return "blob longer than the parser's max_blob_length";
      case error::aggregate_too_large:
        return "aggregate larger than the parser's max_aggregate_size";
      case error::line_too_long:
        return "line longer than the parser's max_line_length";
      case error::server_error:
        return "the server replied with an error";
      case error::type_mismatch:
        return "reply type does not match the requested C++ type";
      case error::not_a_number:
        return "reply text is not a number";
      case error::out_of_range:
        return "number does not fit the requested C++ type";
      case error::size_mismatch:
        return "aggregate size differs from the fixed-size C++ type";
      case error::response_size_mismatch:
        return "response has a different number of slots than the request has replies";
    }
    return "unknown redcoro.proto error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace redcoro::proto
