#pragma once

// redcoro::http::exporter: an HTTP endpoint a service attaches next to its Redis handles, with
// GET /metrics (Prometheus text format 0.0.4) and GET /health (JSON; 200 or 503). Built on
// Boost.Beast, which stays in the library's source: this header includes Asio's executor and
// endpoint types only. See http/README.md.

#include <redcoro/cache/cache.hpp>
#include <redcoro/client/tracking_cache.hpp>
#include <redcoro/cluster/cluster_subscriber.hpp>
#include <redcoro/connect/handle.hpp>
#include <redcoro/connect/subscriber.hpp>
#include <redcoro/pubsub/subscriber.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace redcoro::http {

namespace asio = boost::asio;

/// Where the exporter listens, and the bounds it keeps to.
struct exporter_options {
  /// The address and port to listen on; port 0 picks a free one (exporter::local_endpoint()
  /// tells which). Loopback by default: a scraper on another host needs the address given.
  asio::ip::tcp::endpoint endpoint{asio::ip::address_v4::loopback(), 0};
  /// How long each handle's health check may take (handle::async_health's bound). The checks
  /// of a /health request run concurrently, so the request takes about this long at most.
  std::chrono::milliseconds health_timeout{1000};
  /// How long a client may take to send one request (and how long an idle keep-alive
  /// connection stays open); the connection is closed after it.
  std::chrono::milliseconds read_timeout{10000};
  /// How long the write of one response may take.
  std::chrono::milliseconds write_timeout{10000};
  /// The request line and header fields together, in bytes: larger gets 431 and the
  /// connection is closed. This also bounds how many header fields a request can have.
  std::size_t header_limit = 8 * 1024;
  /// A request body, in bytes (the exporter reads none): larger gets 413.
  std::size_t body_limit = 4 * 1024;
  /// HTTP connections served at once; a connection accepted beyond it is closed at once.
  std::size_t max_connections = 32;
};

/// Serves the metrics and the health of registered handles and caches over HTTP.
///
/// \code
///   redcoro::http::exporter web(ioc.get_executor(), {.endpoint = {asio::ip::tcp::v4(), 9121}});
///   web.add("sessions", redis);        // a redcoro::handle
///   web.add("profiles", profile_cache);  // a redcoro::cache::cache
/// \endcode
///
/// The exporter listens from construction (it throws std::system_error when the endpoint cannot
/// be bound) and serves on its executor, through a strand of its own, so a multi-threaded
/// io_context is fine. Everything it does is asynchronous: a scrape reads each handle's
/// snapshot on the handle's executor, and a health check is a request like any other, so it
/// never blocks the Redis I/O. add(), remove() and close() may be called from any thread: they
/// take effect on the exporter's strand (at once when called from it).
///
/// Sources are held by value: a handle or a cache is a cheap copy sharing its engine, so the
/// exporter never points at a destroyed object, and it keeps the engine alive until the source
/// is removed or the exporter closed. Close a handle (handle::close()) to stop its engine
/// regardless of copies; the exporter then reports it unhealthy.
class exporter {
 public:
  using executor_type = asio::any_io_executor;

  /// Binds and listens on options.endpoint, and starts accepting.
  explicit exporter(executor_type ex, exporter_options options = {});
  /// close().
  ~exporter();
  exporter(const exporter&) = delete;
  exporter& operator=(const exporter&) = delete;

  executor_type get_executor() const noexcept;
  /// The endpoint listened on (with the port picked when options.endpoint's was 0).
  asio::ip::tcp::endpoint local_endpoint() const;

  /// Registers a handle (a copy of it) under `name`: the `handle` label of its metrics and its
  /// entry in /health. A name already registered as a handle is replaced.
  void add(std::string name, handle redis);
  /// Registers a cache (a copy: copies share their counters) under `name`, the `cache` label.
  void add(std::string name, cache::cache c);
  /// Registers a client-side cache (a tracking_cache, cluster_tracking_cache or
  /// handle_tracking_cache) under `name`, the `client_cache` label of its metrics; each scrape
  /// reads its stats() on the executor it runs on. The exporter shares the cache's counters
  /// rather than pointing at the object: a cache destroyed before remove(name) is safe, and its
  /// last figures are served until then. A name already registered as one is replaced.
  void add(std::string name, const redcoro::detail::tracking_cache_base& c);
  /// Registers a subscriber under `name`, the `subscriber` label of its metrics: messages
  /// received and dropped, overflow disconnects, messages buffered (message_stats()), read on
  /// its executor. Shared like a client-side cache's: a subscriber destroyed before
  /// remove(name) is safe. A name already registered as one is replaced.
  void add(std::string name, const subscriber& s) { add_subscriber(std::move(name), s); }
  void add(std::string name, const cluster_subscriber& s) { add_subscriber(std::move(name), s); }
  void add(std::string name, const handle_subscriber& s) { add_subscriber(std::move(name), s); }
  /// What a collector does: appends whole metric families (`# HELP`, `# TYPE`, samples) in the
  /// text format to `out`. Names must not clash with redcoro's (`redcoro_*`) or another
  /// collector's.
  using collector = std::function<void(std::string& out)>;
  /// Registers a collector of the application's own metrics under `name`: each scrape calls it
  /// on `ex` (the executor that owns what it reads, so it needs no lock) and appends what it
  /// wrote after redcoro's families. A name already registered as a collector is replaced.
  void add(std::string name, executor_type ex, collector c);
  /// Removes the handle, the cache, the client-side cache, the subscriber and the collector
  /// registered under `name` (if any).
  void remove(std::string name);

  /// Stops accepting, closes every HTTP connection (a request being answered is dropped) and
  /// lets go of the sources. The destructor does it too.
  void close();

 private:
  template <class Subscriber>
  void add_subscriber(std::string name, const Subscriber& s) {
    add_subscriber(std::move(name), s.get_executor(), shared_stats(s));
  }
  void add_subscriber(std::string name, executor_type ex,
                      std::shared_ptr<const subscriber_stats> stats);

  class impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace redcoro::http
