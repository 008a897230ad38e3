#include <redcoro/client/client.hpp>
#include <redcoro/client/detail/tracking_backend.hpp>
#include <redcoro/client/sentinel_client.hpp>
#include <redcoro/cluster/tracking_cache.hpp>
#include <redcoro/connect/tracking_cache.hpp>

namespace redcoro {
namespace {

// The connection a handle's requests share when its engine is not a cluster.
connection& shared_connection(handle& h) {
  if (connection* c = h.as_connection()) return *c;
  if (client* c = h.as_client()) return c->next_layer();
  return h.as_sentinel()->next_layer().next_layer();
}

}  // namespace

handle_tracking_cache::handle_tracking_cache(handle h, tracking_cache_config cfg)
    : handle_(std::move(h)) {
  if (cluster_client* cl = handle_.as_cluster())
    impl_ = detail::track_cluster(*cl, cfg);
  else
    impl_ = detail::track_connection(shared_connection(handle_), cfg);
}

// Detached while the handle (and so its engine) is still held: the members go before the
// base, whose destructor would do it too late.
handle_tracking_cache::~handle_tracking_cache() {
  detail::close(*impl_);
}

}  // namespace redcoro
