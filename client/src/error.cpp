#include <redcoro/client/error.hpp>

#include <string>

namespace redcoro {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redcoro.client"; }
  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::not_connected:
        return "not connected, and the request was not to wait for a connection";
      case error::connection_lost:
        return "the connection was lost after the request was sent; it may or may not have "
               "been executed";
      case error::timeout:
        return "the request timed out";
      case error::queue_full:
        return "too many requests queued on the connection";
      case error::connect_timeout:
        return "connecting to the server timed out";
      case error::auth_failed:
        return "the server refused the credentials";
      case error::handshake_failed:
        return "the connection handshake failed";
      case error::unexpected_reply:
        return "the server sent a reply no request was waiting for";
      case error::health_check_failed:
        return "the server stopped answering: no reply within the health-check interval";
      case error::closed:
        return "the connection is closed";
      case error::response_too_short:
        return "the request has more replies than the response has slots";
      case error::wrong_role:
        return "the server's role is not the one expected (a demoted primary, say)";
      case error::no_credentials:
        return "the credentials provider gave no credentials in time";
      case error::no_address:
        return "the address provider gave no address to connect to";
      case error::no_sentinel_reachable:
        return "no sentinel could be reached to ask where the server is";
      case error::unknown_primary_name:
        return "no sentinel knows a primary of this name";
      case error::no_healthy_replica:
        return "the sentinels know no healthy replica of the primary";
      case error::callback_failed:
        return "a function given by the caller threw; nothing was committed";
      case error::no_seed_reachable:
        return "no seed node of the cluster could be reached for the topology";
      case error::out_of_sync:
        return "a reply did not fit the command it would answer: the replies were out of step "
               "with the requests, and the connection was reset";
      case error::invalid_config:
        return "the settings cannot work for this deployment";
      case error::unsupported:
        return "this deployment cannot do that";
      case error::cross_slot:
        return "the keys span cluster slots, so no one node owns them all";
    }
    return "unknown redcoro client error";
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace redcoro
