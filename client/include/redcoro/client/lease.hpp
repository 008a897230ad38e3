#pragma once

#include <redcoro/client/config.hpp>
#include <redcoro/client/connection.hpp>
#include <redcoro/client/metrics.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace redcoro {

namespace detail {
struct pool_state;
}

/// A connection of a pool, lent to one caller: blocking commands and WATCH state stay on it
/// and never stall the shared connection. Given back when the lease is destroyed; a
/// connection that still has unanswered requests (a BLPOP whose caller gave up, which the
/// connection unblocks) is lent again only once they are answered.
class lease {
 public:
  lease() = default;
  lease(lease&&) noexcept = default;
  lease& operator=(lease&& other) noexcept;
  ~lease();

  connection& operator*() const noexcept { return *conn_; }
  connection* operator->() const noexcept { return conn_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

 private:
  friend struct detail::pool_state;
  lease(std::shared_ptr<detail::pool_state> p, std::shared_ptr<connection> c)
      : pool_(std::move(p)), conn_(std::move(c)) {}
  void release() noexcept;

  std::shared_ptr<detail::pool_state> pool_;
  std::shared_ptr<connection> conn_;
};

namespace detail {

/// A pool of dedicated connections to one server, made on first use (up to `max`).
std::shared_ptr<pool_state> make_pool(asio::any_io_executor ex, connection_config cfg,
                                      std::size_t max);
/// Closes every connection; waiting acquires complete with error::closed.
void close_pool(pool_state& p);
/// Drops every connection of the pool, lent ones included (connection::reconnect): each
/// reconnects on its own, to wherever its config (or address provider) says now.
void reconnect_pool(pool_state& p);
/// Lends a connection: an idle one, a new one below the bound, or the first given back
/// (waiting up to the config's request timeout, then error::timeout).
asio::awaitable<std::pair<error_code, lease>> acquire_from(std::shared_ptr<pool_state> pool);
/// The pool's part of client_metrics: its gauges, and its connections' metrics summed.
void pool_metrics(const pool_state& p, client_metrics& out);

}  // namespace detail

}  // namespace redcoro
