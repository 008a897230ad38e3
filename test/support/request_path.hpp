#pragma once

// The request-path tests (test/client/commands.cpp and scripts.cpp) are compiled twice: into
// test_client, where they run on a `connection`, and into test_paths with
// REDCORO_TEST_THROUGH_HANDLE, where the same bodies run through a `redcoro::handle` over each
// deployment in turn: a single server, a pooled client with a key prefix, a 3-primary cluster
// (keys kept in one slot by a hash-tagged prefix, so that multi-key commands work as on one
// server), and a Sentinel-managed primary. What a deployment does differently is asked with
// `current_path()` / `one_node()` in the test, next to the check it changes.
#include "support/client_helpers.hpp"
#include "support/redis_server.hpp"
#include <redcoro/client/connection.hpp>

#ifdef REDCORO_TEST_THROUGH_HANDLE
#include "support/cluster_helpers.hpp"
#include "support/handle_helpers.hpp"
#include "support/redis_cluster.hpp"
#include "support/redis_sentinel.hpp"
#include "support/sentinel_helpers.hpp"
#include <redcoro/connect/handle.hpp>
#endif

#include <boost/asio/detached.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace redcoro::test {

enum class path { connection, single, pooled, cluster, sentinel };

#ifdef REDCORO_TEST_THROUGH_HANDLE
using path_target = redcoro::handle;
#else
using path_target = redcoro::connection;
#endif

using path_body = std::function<asio::awaitable<void>(path_target&)>;

namespace detail {
inline path& running_path() {
  static path p = path::connection;
  return p;
}
}  // namespace detail

/// The deployment the running body goes to.
inline path current_path() {
  return detail::running_path();
}
/// Every key on one server: everything but the cluster.
inline bool one_node() {
  return current_path() != path::cluster;
}

#ifndef REDCORO_TEST_THROUGH_HANDLE

/// Runs `body` on a connection to a fresh server started with `server_args`.
inline void on_every_path(const path_body& body, std::vector<std::string> server_args = {}) {
  redis_server server(std::move(server_args));
  asio::io_context ioc;
  connection conn(ioc, local_config(server.port()));
  run_bounded(ioc, [&]() -> asio::awaitable<void> {
    conn.async_run(asio::detached);
    co_await body(conn);
    conn.close();
  });
}

#else

namespace detail {

// The cluster and the Sentinel deployment are started once per process (test_paths runs
// every case in one process) and emptied before each body.
inline redis_cluster& shared_cluster() {
  static redis_cluster c(3, 0);
  static const bool healthy = c.wait_healthy();
  REQUIRE(healthy);
  return c;
}
inline redis_sentinel& shared_sentinel() {
  static redis_sentinel d;
  return d;
}

// "--name value" server arguments as CONFIG SET on a running server, then FLUSHALL, SCRIPT
// FLUSH and FUNCTION FLUSH: as fresh as a new server for what the tests look at.
inline void reset_server(const std::function<std::string(const std::vector<std::string>&)>& cli,
                         const std::vector<std::string>& server_args) {
  for (std::size_t i = 0; i + 1 < server_args.size(); i += 2)
    cli({"CONFIG", "SET", server_args[i].substr(2), server_args[i + 1]});
  cli({"FLUSHALL"});
  cli({"SCRIPT", "FLUSH"});
  cli({"FUNCTION", "FLUSH"});
  cli({"SLOWLOG", "RESET"});
}

}  // namespace detail

/// Runs `body` through a handle on each deployment in turn (INFO names it on failure).
inline void on_every_path(const path_body& body, std::vector<std::string> server_args = {}) {
  const auto through = [&](path p, handle_config cfg) {
    detail::running_path() = p;
    with_handle(std::move(cfg), body);
    detail::running_path() = path::connection;
  };
  {
    INFO("through the handle: a single server");
    redis_server server(server_args);
    through(path::single, local_config(server.port()));
  }
  {
    INFO("through the handle: a pooled client with the key prefix app:");
    redis_server server(server_args);
    auto cfg = local_config(server.port());
    cfg.pool_size = 4;
    cfg.key_prefix = "app:";
    through(path::pooled, cfg);
  }
  {
    INFO("through the handle: a cluster of 3 primaries, keys prefixed {path}:");
    auto& cluster = detail::shared_cluster();
    for (auto port : cluster.ports())
      detail::reset_server([&](const auto& a) { return cluster.server_on(port).cli(a); },
                           server_args);
    auto cfg = config_for(cluster);
    cfg.node.key_prefix = "{path}:";
    through(path::cluster, cfg);
  }
  {
    INFO("through the handle: a Sentinel-managed primary");
    auto& d = detail::shared_sentinel();
    REQUIRE(d.wait_ready(std::chrono::seconds(20)));
    const auto primary = d.agreed_primary();
    detail::reset_server([&](const auto& a) { return d.server_cli(primary, a); }, server_args);
    through(path::sentinel, config_for(d));
  }
}

#endif

}  // namespace redcoro::test
