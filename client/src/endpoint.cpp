#include <redcoro/client/endpoint.hpp>

namespace redcoro {

std::string endpoint::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out;
  out.reserve(host.size() + 8);
  if (ipv6) out += '[';
  out += host;
  if (ipv6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace redcoro
