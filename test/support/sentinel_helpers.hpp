#pragma once

// A sentinel_config for a test's Sentinel deployment.
#include "support/client_helpers.hpp"
#include "support/redis_sentinel.hpp"
#include <redcoro/client/sentinel_config.hpp>

namespace redcoro::test {

/// Every sentinel of `d`, its primary's name, and the tests' node settings (local_config).
inline sentinel_config config_for(const redis_sentinel& d) {
  sentinel_config cfg;
  cfg.primary_name = d.name();
  for (auto port : d.sentinel_ports())
    cfg.sentinels.push_back({"127.0.0.1", port});
  cfg.node = local_config(0);
  return cfg;
}

}  // namespace redcoro::test
