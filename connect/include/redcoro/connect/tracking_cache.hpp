#pragma once

#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/connect/handle.hpp>

namespace redcoro {

/// Client-side caching through a handle, for any deployment: tracking_cache over the
/// connection of a single server, of a pooled client (its shared connection) or of Sentinel
/// (the primary's, which follows failovers), and cluster_tracking_cache on a cluster. The same
/// store, guarantee and API (client/README.md, "Client-side caching").
///
/// \code
///   redcoro::handle redis(ioc, "redis://127.0.0.1:6379");
///   redcoro::handle_tracking_cache cache(redis);
///   auto v = co_await cache.async_exec(redcoro::cmd::get("config:limits"), asio::use_awaitable);
/// \endcode
///
/// It holds a copy of the handle (the engine lives at least as long). Use it from the handle's
/// executor; destroy it after the requests made through it completed.
class handle_tracking_cache : public detail::tracking_cache_base {
 public:
  explicit handle_tracking_cache(handle h, tracking_cache_config cfg = {});
  ~handle_tracking_cache();

  /// The handle: calls made on it bypass the local store.
  handle& next_layer() noexcept { return handle_; }

 private:
  handle handle_;
};

}  // namespace redcoro
