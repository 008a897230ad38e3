#pragma once

// A real Redis Cluster for the integration tests: N primaries with R replicas each, every
// node a redis_server in its own temporary directory, made into a cluster with
// `redis-cli --cluster create`. The nodes stop when the object goes away.

#include "support/redis_server.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::test {

class redis_cluster {
 public:
  /// One line of CLUSTER NODES.
  struct node_view {
    std::string id;
    std::uint16_t port = 0;
    bool primary = false;
    bool failed = false;
    std::string primary_id;  // replicas: whose
    std::vector<std::pair<int, int>> slots;
  };

  explicit redis_cluster(std::size_t primaries = 3, std::size_t replicas = 1);

  std::size_t size() const noexcept { return servers_.size(); }
  /// The server listening on `port`.
  redis_server& server_on(std::uint16_t port);
  std::vector<std::uint16_t> ports() const;

  /// CLUSTER NODES as a node that is up sees it.
  std::vector<node_view> nodes() const;
  /// The port of the primary serving `slot`, and of its replicas.
  std::uint16_t owner_of(int slot) const;
  std::vector<std::uint16_t> replicas_of(std::uint16_t primary_port) const;

  /// Waits until every node that is up (and not paused) reports cluster_state:ok, covers all slots
  /// and agrees on who serves them, and every replica is in sync. False after `limit`.
  bool wait_healthy(std::chrono::seconds limit = std::chrono::seconds(30)) const;

  /// redis-cli against a node that is up and not paused.
  std::string cli(const std::vector<std::string>& args) const;

  /// SIGKILL of one node; it stays down.
  void kill(std::uint16_t port);

 private:
  const redis_server& any_up() const;
  std::vector<std::unique_ptr<redis_server>> servers_;
};

}  // namespace redcoro::test
