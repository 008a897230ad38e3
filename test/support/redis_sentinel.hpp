#pragma once

// A real Sentinel deployment for the integration tests: one primary, one replica
// (replicaof), and three redis-sentinel processes watching them, every process a
// redis_server on a free loopback port in its own temporary directory. Failover is quick
// (down-after-milliseconds 1000, failover-timeout 5000). Everything stops when the object
// goes away, also when a test fails.

#include "support/redis_server.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace redcoro::test {

class redis_sentinel {
 public:
  struct options {
    std::string name = "mymaster";
    std::size_t sentinels = 3;
    /// The data servers' password (requirepass and masterauth; the sentinels get it as
    /// auth-pass). Empty: none.
    std::string password;
    /// The sentinels' own password (requirepass of each sentinel). Empty: none.
    std::string sentinel_password;
  };

  /// Starts the servers, then the sentinels, and waits (at most 30 s) until they are ready
  /// (see wait_ready); throws if they are not.
  redis_sentinel();
  explicit redis_sentinel(options o);

  const std::string& name() const noexcept { return opt_.name; }
  /// The data servers: 0 is the primary at the start, 1 its replica.
  redis_server& server(std::size_t i) { return *servers_.at(i); }
  redis_server& server_on(std::uint16_t port);
  std::vector<std::uint16_t> sentinel_ports() const;
  redis_server& sentinel(std::size_t i) { return *sentinels_.at(i); }

  /// SIGKILL of a sentinel; it stays down until start_sentinel.
  void stop_sentinel(std::size_t i) { sentinels_.at(i)->kill(); }
  /// Starts it again on its port, with the configuration it rewrote.
  void start_sentinel(std::size_t i) { sentinels_.at(i)->restart(); }

  /// The port every running sentinel names as the primary, when they all name the same one
  /// and that server's ROLE says master; 0 otherwise.
  std::uint16_t agreed_primary() const;
  /// Polls agreed_primary() every 50 ms until it names a primary other than `not_port`, for
  /// at most `limit`; returns it, or 0.
  std::uint16_t wait_primary(std::chrono::milliseconds limit, std::uint16_t not_port = 0) const;
  /// Waits (polling, at most `limit`) until the sentinels agree on a primary, it has an online
  /// replica, and every running sentinel knows that replica and the other running sentinels
  /// (a failover needs both). False after `limit`.
  bool wait_ready(std::chrono::milliseconds limit) const;

  /// redis-cli against a sentinel / a data server, with the password when there is one.
  std::string sentinel_cli(std::size_t i, const std::vector<std::string>& args) const;
  std::string server_cli(std::uint16_t port, const std::vector<std::string>& args) const;

 private:
  options opt_;
  std::vector<std::unique_ptr<redis_server>> servers_;
  std::vector<std::unique_ptr<redis_server>> sentinels_;
};

}  // namespace redcoro::test
