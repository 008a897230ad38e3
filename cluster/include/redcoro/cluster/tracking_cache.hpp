#pragma once

#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/cluster/cluster_client.hpp>

namespace redcoro {

namespace detail {
/// A cache over every node connection of `cl` (cluster_tracking_cache's).
std::shared_ptr<tracking_cache_impl> track_cluster(cluster_client& cl,
                                                   const tracking_cache_config& cfg);
}  // namespace detail

/// Client-side caching over a cluster: tracking_cache's store, misses and guarantee, with
/// every node connection tracking keys (those made later too, before their first handshake)
/// and telling the one store of its invalidations.
///
/// \code
///   redcoro::cluster_client cl(ioc, cfg);
///   redcoro::cluster_tracking_cache cache(cl);
///   cl.async_run(asio::detached);
///   auto v = co_await cache.async_exec(redcoro::cmd::get("user:42"), asio::use_awaitable);
/// \endcode
///
/// What a cluster adds: a reply is kept only while every node session that may answer a read
/// tracks keys, and a session that ends on any node drops everything (a failover, a node
/// restart). A slot that moves takes its keys with it: the old owner deletes each key it
/// migrates and reports that like any change. A key read as absent there and created on the
/// new owner is reported by nobody, so every slot move the client sees (MOVED, ASK, a refresh)
/// drops everything too; until it sees one (at most cluster_config::refresh_interval), such a
/// key may read as absent. Broadcast mode has no such window. Requests passed through (not
/// cacheable) go to the cluster client unchanged, but without per-operation cancellation.
///
/// Make it before or while the cluster client runs; use it on the cluster client's executor;
/// destroy it after the requests made through it completed, and before the cluster client.
class cluster_tracking_cache : public detail::tracking_cache_base {
 public:
  explicit cluster_tracking_cache(cluster_client& cl, tracking_cache_config cfg = {});

  /// The cluster client: calls made on it bypass the local store.
  cluster_client& next_layer() noexcept { return cl_; }

 private:
  cluster_client& cl_;
};

}  // namespace redcoro
