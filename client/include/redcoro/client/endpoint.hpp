#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace redcoro {

/// A TCP host and port: a sentinel, or a cluster seed, as a URL names it.
///
/// The client module's own type because cluster's node_address (cluster/topology.hpp) is out
/// of its reach (cluster depends on client, never the reverse). The two have the same
/// members, so converting is `node_address{e.host, e.port}`.
struct endpoint {
  /// A host name or an IP address; IPv6 without brackets ("::1").
  std::string host;
  std::uint16_t port = 6379;

  /// "host:port", "[::1]:6380" for IPv6 addresses.
  std::string to_string() const;

  friend auto operator<=>(const endpoint&, const endpoint&) = default;
};

}  // namespace redcoro
