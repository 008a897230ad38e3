#pragma once

#include <system_error>
#include <type_traits>

namespace redcoro {

/// Transport and connection failures of redcoro::connection. Protocol failures (malformed
/// replies) are redcoro::proto::error values; a server's error reply to one command is data
/// in that command's response, never one of these.
enum class error {
  not_connected = 1,  ///< not written: no connection, and the request was not to wait for one
                      ///< (cancel_if_not_connected, connection_config::fail_waiting_on_disconnect)
  connection_lost,    ///< the connection dropped after the request was written
  timeout,            ///< the request's timeout expired before all its replies arrived
  queue_full,         ///< connection_config::max_queued_requests requests are already queued
  connect_timeout,    ///< connecting took longer than connection_config::connect_timeout
  auth_failed,        ///< the server refused the credentials (WRONGPASS, NOAUTH, NOPERM)
  handshake_failed,   ///< HELLO, AUTH, SETNAME or SELECT failed for another reason
  unexpected_reply,   ///< a reply arrived with no request waiting for it
  health_check_failed,  ///< PING on an idle connection was not answered in time
  closed,               ///< the connection was closed or async_run ended
  response_too_short,   ///< the request has more replies than the response has slots
  out_of_sync,  ///< a reply's type cannot answer the command it would belong to: the stream of
                ///< replies is out of step with the requests, so the connection was reset
  no_seed_reachable,      ///< cluster: no seed node answered with the topology, and the retries
                          ///< allowed (reconnect_policy::max_attempts) are used up
  callback_failed,        ///< a function the caller gave (async_optimistic's) threw; nothing was
                          ///< committed
  wrong_role,             ///< the server is not the primary (or replica) it was expected to be:
                          ///< a Sentinel-managed connection refuses a demoted primary
  no_credentials,         ///< the credentials provider gave none, or not in time
  no_address,             ///< the address provider (connection_config::address_provider) gave
                          ///< none, or not in time
  no_sentinel_reachable,  ///< Sentinel: no sentinel could be asked where the server is
                          ///< (down, refusing the credentials, not answering in time)
  unknown_primary_name,   ///< Sentinel: the sentinels that answered do not monitor a primary
                          ///< of that name (sentinel_config::primary_name)
  no_healthy_replica,     ///< Sentinel, role replica: the sentinels know no replica that is up
                          ///< and in sync with its primary
  invalid_config,         ///< the settings cannot work for this deployment (a database other
                          ///< than 0 on a cluster): refused when the handle is made
  unsupported,            ///< this deployment cannot do it (a dedicated connection on a handle
                          ///< over a single connection)
  cross_slot,             ///< cluster: the keys of a dedicated request or WATCH span slots
};

const std::error_category& client_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), client_category()};
}

}  // namespace redcoro

template <>
struct std::is_error_code_enum<redcoro::error> : std::true_type {};
