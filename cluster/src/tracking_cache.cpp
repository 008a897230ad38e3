#include "cluster_impl.hpp"
#include <redcoro/client/detail/tracking_backend.hpp>
#include <redcoro/cluster/tracking_cache.hpp>

namespace redcoro {
namespace detail {
namespace {

// Every node connection: requests go through the cluster client (routed, redirects
// followed), and each node connection is tracked.
class cluster_backend final : public tracking_backend {
 public:
  explicit cluster_backend(cluster_client& cl) noexcept : cl_(cl), impl_(impl_of(cl)) {}

  void attach(tracking_cache_impl& cache) override {
    cache_ = &cache;
    for (auto& [address, node] : impl_.nodes)
      track(cache, *node->conn);
    impl_.on_node = [this](connection& c) { track(*cache_, c); };
    // A key absent from a slot's old owner may be created on the new one, which never
    // reports it to a reader that read it from the old one: what was read may be stale once
    // a slot moves.
    impl_.on_slots_moved = [this] { clear(*cache_); };
  }

  const asio::any_io_executor& executor() const noexcept override { return executor_of(impl_); }
  void* allocate(std::size_t size) override { return allocate_op(impl_, size); }
  void deallocate(void* p, std::size_t size) noexcept override { deallocate_op(impl_, p, size); }
  void exec(exec_entry& e) override {
    cl_.async_exec(*e.req, e.adapter, [&e](error_code ec, std::size_t n) {
      e.bytes_read = n;
      e.complete(e, ec);
    });
  }
  void cancel(exec_entry&, asio::cancellation_type) override {}
  const std::string& key_prefix() const noexcept override { return impl_.cfg.node.key_prefix; }
  void detach() noexcept override {
    impl_.on_node = nullptr;
    impl_.on_slots_moved = nullptr;
    if (!cache_) return;
    for (auto& [address, node] : impl_.nodes)
      untrack(*cache_, *node->conn);
  }

 private:
  cluster_client& cl_;
  cluster_impl& impl_;
  tracking_cache_impl* cache_ = nullptr;
};

}  // namespace

std::shared_ptr<tracking_cache_impl> track_cluster(cluster_client& cl,
                                                   const tracking_cache_config& cfg) {
  return make_tracking_cache(std::make_unique<cluster_backend>(cl), cfg);
}

}  // namespace detail

cluster_tracking_cache::cluster_tracking_cache(cluster_client& cl, tracking_cache_config cfg)
    : cl_(cl) {
  impl_ = detail::track_cluster(cl, cfg);
}

}  // namespace redcoro
