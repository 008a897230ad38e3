#pragma once

// What the cache's test files share: a handle on a single server and on a cluster.
#include "support/client_helpers.hpp"
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"
#include <redcoro/connect/handle.hpp>

#include <chrono>
#include <exception>
#include <functional>

namespace cache_test {

namespace asio = boost::asio;
using redcoro::test::with_handle;
using namespace std::chrono_literals;
using redcoro::handle;
using redcoro::handle_config;

// Runs `body` on a single server (a pooled client, with a connection key prefix, so that the
// cache's prefix is shown to come after it) and on a 3+3 cluster (three primaries, a replica each).
inline void on_both(const std::function<asio::awaitable<void>(handle&)>& body) {
  {
    INFO("single server");
    redcoro::test::redis_server server;
    auto cfg = redcoro::test::local_config(server.port());
    cfg.key_prefix = "svc:";
    with_handle(cfg, body);
  }
  {
    INFO("cluster");
    redcoro::test::redis_cluster cluster(3, 1);
    REQUIRE(cluster.wait_healthy());
    with_handle(redcoro::test::config_for(cluster), body);
  }
}

}  // namespace cache_test
