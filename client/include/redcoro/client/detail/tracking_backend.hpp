#pragma once

// What a client-side cache (tracking_cache.hpp) runs on: one connection, or a cluster's node
// connections (cluster/tracking_cache.hpp). The store, the misses and the invalidations are
// the same for both; the backend says where requests go and which sessions track keys.

#include <redcoro/client/detail/exec_entry.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_type.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace redcoro {
class connection;
struct tracking_cache_config;
}  // namespace redcoro

namespace redcoro::detail {

struct tracking_cache_impl;

class tracking_backend {
 public:
  virtual ~tracking_backend() = default;
  /// Tracks the connections it sends through (track()), once the cache exists.
  virtual void attach(tracking_cache_impl& cache) = 0;
  virtual const boost::asio::any_io_executor& executor() const noexcept = 0;
  virtual void* allocate(std::size_t size) = 0;
  virtual void deallocate(void* p, std::size_t size) noexcept = 0;
  /// Sends `e` and completes it through `e.complete`, exactly once.
  virtual void exec(exec_entry& e) = 0;
  virtual void cancel(exec_entry& e, boost::asio::cancellation_type type) = 0;
  /// The connections' key prefix (the broadcast prefixes get it in front).
  virtual const std::string& key_prefix() const noexcept = 0;
  /// The cache is going: no connection may tell it anything from now on.
  virtual void detach() noexcept = 0;
};

/// A cache over `backend`, attached to it.
std::shared_ptr<tracking_cache_impl> make_tracking_cache(std::unique_ptr<tracking_backend> backend,
                                                         const tracking_cache_config& cfg);
/// A cache over one connection (tracking_cache's).
std::shared_ptr<tracking_cache_impl> track_connection(connection& conn,
                                                      const tracking_cache_config& cfg);
/// Has `conn` ask for CLIENT TRACKING in its handshakes (at once too, when it runs) and tell
/// `cache` of its sessions and invalidations, through a tracker the cache owns. Reads are
/// kept while every tracked connection with a session up tracks keys, and one is up.
void track(tracking_cache_impl& cache, connection& conn);
/// `conn` tells the cache nothing more (when it still points at one of its trackers).
void untrack(tracking_cache_impl& cache, connection& conn) noexcept;

}  // namespace redcoro::detail
