#pragma once

// What the cluster tests share: a config naming every node of a test cluster, and a client
// (cluster_client or cluster_subscriber) that runs for one test body.

#include "support/client_helpers.hpp"
#include "support/redis_cluster.hpp"
#include <redcoro/cluster/cluster_client.hpp>

#include <boost/asio/detached.hpp>

#include <chrono>
#include <exception>
#include <functional>

namespace redcoro::test {

/// Every node of `c` as a seed, and the tests' node settings (local_config).
inline cluster_config config_for(const redis_cluster& c) {
  cluster_config cfg;
  for (std::uint16_t p : c.ports())
    cfg.seeds.push_back({"127.0.0.1", p});
  cfg.node = local_config(0);
  cfg.node.health_check_interval = std::chrono::seconds(1);
  return cfg;
}

/// Runs `body` with a running `Client` made from `cfg` (bounded by `limit`), and closes the
/// client afterwards, also when the body failed.
template <class Client>
void with_running(const cluster_config& cfg,
                  const std::function<asio::awaitable<void>(Client&)>& body,
                  std::chrono::seconds limit = std::chrono::seconds(60)) {
  asio::io_context ioc;
  Client client(ioc, cfg);
  client.async_run(asio::detached);
  run_bounded(
      ioc,
      [&]() -> asio::awaitable<void> {
        std::exception_ptr failure;
        try {
          co_await body(client);
        } catch (...) {
          failure = std::current_exception();
        }
        client.close();
        if (failure) std::rethrow_exception(failure);
      },
      limit);
}

}  // namespace redcoro::test
