#pragma once

#include <redcoro/client/config.hpp>
#include <redcoro/client/endpoint.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace redcoro {

/// Which server a Sentinel-managed client talks to.
enum class sentinel_role : std::uint8_t {
  primary,  ///< the current primary (default); followed across failovers
  replica   ///< one of the primary's replicas, for reads
};

/// What a client of a Sentinel-managed deployment needs to know: where the sentinels are,
/// the name they monitor the primary under, and the settings of both kinds of connection.
struct sentinel_config {
  /// The name the sentinels know the primary by (`sentinel monitor <name> ...`).
  std::string primary_name;
  /// Sentinels to ask, in order; list several so that one being down does not matter.
  std::vector<endpoint> sentinels;
  sentinel_role role = sentinel_role::primary;
  /// Settings of the data connections (credentials, TLS, database, timeouts, key prefix...).
  /// Their host, port and unix_socket are ignored: the sentinels name the servers
  /// (sentinel_client sets address_provider and expect_role).
  connection_config node;
  /// Settings of the connections to the sentinels, which have their own credentials (and no
  /// database or key prefix). Their host, port and unix_socket are ignored: see `sentinels`.
  /// connect_timeout bounds each question to one sentinel (connect, handshake and answer);
  /// reconnect paces the rounds over all sentinels when none can be watched.
  connection_config sentinel;
  /// The sentinels are asked again this often (where the primary is, which sentinels there
  /// are), besides every time a data connection connects; 0: only then, and after the
  /// failover subscription was (re)established.
  std::chrono::milliseconds refresh_interval{60000};
};

}  // namespace redcoro
