#include <redcoro/http/exporter.hpp>
#include <redcoro/http/format.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <exception>
#include <limits>
#include <list>
#include <optional>
#include <utility>
#include <vector>

namespace redcoro::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using response = bhttp::response<bhttp::string_body>;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// After an error response, what the client still sends is read and dropped for this long (and
// up to this much) before the socket is closed: closing with unread bytes makes the kernel send
// a reset, and the client may then lose the response before reading it.
constexpr auto linger_time = std::chrono::seconds(1);
constexpr std::size_t linger_bytes = 64 * 1024;

response make_response(bhttp::status status, unsigned version, std::string body,
                       std::string_view content_type, bool keep_alive) {
  response res{status, version};
  res.set(bhttp::field::server, "redcoro");
  res.set(bhttp::field::content_type, content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response text_response(bhttp::status status, unsigned version, std::string_view text,
                       bool keep_alive) {
  return make_response(status, version, std::string(text) + '\n', "text/plain; charset=utf-8",
                       keep_alive);
}

// The answer to a request that could not be read: a status, or none when there is nobody to
// answer (the client went away, or was too slow).
std::optional<bhttp::status> status_for_read_error(beast::error_code ec) {
  if (ec == bhttp::error::header_limit) return bhttp::status::request_header_fields_too_large;
  if (ec == bhttp::error::body_limit) return bhttp::status::payload_too_large;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) return {};
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category())
    return bhttp::status::bad_request;  // malformed: request line, field, length, chunk...
  return {};
}

asio::awaitable<deployment_metrics> metrics_of(handle h) {
  co_return h.metrics();
}

asio::awaitable<cache_snapshot> snapshot_of(std::string name, cache::cache c) {
  cache_snapshot s;
  s.name = std::move(name);
  s.counters = c.metrics();
  s.latency = c.latency();
  co_return s;
}

asio::awaitable<std::pair<error_code, health_report>> health_of(handle h,
                                                                std::chrono::milliseconds bound) {
  auto [ec, report] = co_await h.async_health(bound, use_tuple);
  co_return std::pair<error_code, health_report>(ec, std::move(report));
}

// A client-side cache or a subscriber as the exporter holds it: the executor its state lives
// on, and the state, shared.
template <class State>
struct shared_source {
  asio::any_io_executor ex;
  std::shared_ptr<const State> state;
};
using registered_client_cache = shared_source<redcoro::detail::tracking_cache_impl>;
using registered_subscriber = shared_source<subscriber_stats>;

// The snapshot of a shared source, read on its executor.
template <class Snapshot, class State, class Read>
asio::awaitable<std::vector<Snapshot>> snapshots_of(
    const std::vector<std::pair<std::string, shared_source<State>>>& sources, Read read) {
  std::vector<Snapshot> out;
  for (const auto& [name, s] : sources) {
    try {
      auto op = [](std::string n, std::shared_ptr<const State> state,
                   Read r) -> asio::awaitable<Snapshot> {
        co_return Snapshot{std::move(n), r(*state)};
      };
      auto reading = op(name, s.state, read);
      auto spawned = asio::co_spawn(s.ex, std::move(reading), asio::use_awaitable);
      out.push_back(co_await std::move(spawned));
    } catch (const std::exception&) {
      // A source whose executor cannot run it is left out of this scrape.
    }
  }
  co_return out;
}

// A /health request's checks, filled in as they complete (on the exporter's strand).
struct health_round {
  explicit health_round(const asio::any_io_executor& ex, std::size_t n)
      : results(n), answered(n, false), left(n), done(ex) {}
  std::vector<handle_health> results;
  std::vector<bool> answered;
  std::size_t left;
  asio::steady_timer done;
};

}  // namespace

class exporter::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(executor_type ex, exporter_options options)
      : ex_(std::move(ex)),
        strand_(asio::make_strand(ex_)),
        options_(std::move(options)),
        acceptor_(strand_) {
    acceptor_.open(options_.endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(options_.endpoint);
    acceptor_.listen();
    local_ = acceptor_.local_endpoint();
  }

  void start() { asio::co_spawn(strand_, accept_loop(shared_from_this()), asio::detached); }

  // Runs `f` on the strand: at once when called from it, later otherwise.
  template <class F>
  void on_strand(F f) {
    asio::dispatch(strand_, [self = shared_from_this(), f = std::move(f)]() mutable { f(*self); });
  }

  void set(std::string name, handle h) { put(handles_, std::move(name), std::move(h)); }
  void set(std::string name, cache::cache c) { put(caches_, std::move(name), std::move(c)); }
  void set(std::string name, registered_client_cache c) {
    put(client_caches_, std::move(name), std::move(c));
  }
  void set(std::string name, registered_subscriber s) {
    put(subscribers_, std::move(name), std::move(s));
  }
  void set(std::string name, executor_type ex, collector c) {
    put(collectors_, std::move(name), registered_collector{std::move(ex), std::move(c)});
  }

  // Adds a source, or replaces the one of that name.
  template <class Source>
  void put(std::vector<std::pair<std::string, Source>>& sources, std::string name, Source s) {
    if (closed_) return;
    for (auto& [n, existing] : sources)
      if (n == name) {
        existing = std::move(s);
        return;
      }
    sources.emplace_back(std::move(name), std::move(s));
  }

  void erase(const std::string& name) {
    std::erase_if(handles_, [&](const auto& e) { return e.first == name; });
    std::erase_if(caches_, [&](const auto& e) { return e.first == name; });
    std::erase_if(client_caches_, [&](const auto& e) { return e.first == name; });
    std::erase_if(subscribers_, [&](const auto& e) { return e.first == name; });
    std::erase_if(collectors_, [&](const auto& e) { return e.first == name; });
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto* stream : sessions_)
      stream->close();
    handles_.clear();
    caches_.clear();
    client_caches_.clear();
    subscribers_.clear();
    collectors_.clear();
  }

  const executor_type& executor() const noexcept { return ex_; }
  const tcp::endpoint& local_endpoint() const noexcept { return local_; }

 private:
  static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    for (;;) {
      auto [ec, socket] = co_await self->acceptor_.async_accept(use_tuple);
      if (self->closed_) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of descriptors, or a connection reset before it was accepted: try again soon
        // rather than spin.
        asio::steady_timer pause(self->strand_, std::chrono::milliseconds(100));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (self->sessions_.size() >= self->options_.max_connections) {
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(self->strand_, session(self, std::move(socket)), asio::detached);
    }
  }

  static asio::awaitable<void> session(std::shared_ptr<impl> self, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    // Known to close_now() while it lives; the frame holds it, so it is taken out on every
    // way out of the coroutine (also when the frame is destroyed unfinished).
    struct registration {
      std::list<beast::tcp_stream*>& list;
      std::list<beast::tcp_stream*>::iterator it;
      ~registration() { list.erase(it); }
    } registered{self->sessions_, self->sessions_.insert(self->sessions_.end(), &stream)};

    beast::flat_buffer buffer;
    const auto& o = self->options_;
    while (!self->closed_) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(
          std::min<std::size_t>(o.header_limit, std::numeric_limits<std::uint32_t>::max())));
      parser.body_limit(o.body_limit);
      stream.expires_after(o.read_timeout);
      auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
      if (self->closed_) break;
      if (ec) {
        // A timeout has closed the socket already; a malformed or oversized request gets its
        // status and the connection is closed (the parser cannot go on after an error).
        const auto status = status_for_read_error(ec);
        if (!status) break;
        auto res = text_response(*status, 11, bhttp::obsolete_reason(*status), false);
        stream.expires_after(o.write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
        if (!wec) co_await linger(stream);
        break;
      }
      auto request = parser.release();
      auto answering = answer(self, request);
      auto res = co_await std::move(answering);
      // HEAD: GET's status and headers, its Content-Length included, without the body.
      if (request.method() == bhttp::verb::head) res.body().clear();
      res.keep_alive(request.keep_alive() && !self->closed_);
      const bool keep = res.keep_alive();
      if (self->closed_) break;
      stream.expires_after(o.write_timeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
      if (wec || !keep) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }

  static asio::awaitable<void> linger(beast::tcp_stream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(linger_time);
    char scratch[4096];
    for (std::size_t total = 0; total < linger_bytes;) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), use_tuple);
      if (ec) break;
      total += n;
    }
  }

  static asio::awaitable<response> answer(std::shared_ptr<impl> self,
                                          const bhttp::request<bhttp::string_body>& req) {
    const std::string_view target(req.target().data(), req.target().size());
    const auto path = target.substr(0, target.find('?'));
    const unsigned version = req.version();
    if (path != "/metrics" && path != "/health")
      co_return text_response(bhttp::status::not_found, version,
                              "not found: try /metrics or /health", true);
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
      auto res =
          text_response(bhttp::status::method_not_allowed, version, "only GET and HEAD", true);
      res.set(bhttp::field::allow, "GET, HEAD");
      co_return res;
    }
    if (path == "/metrics") {
      auto text = metrics_text(self);
      auto body = co_await std::move(text);
      co_return make_response(bhttp::status::ok, version, std::move(body),
                              "text/plain; version=0.0.4; charset=utf-8", true);
    }
    auto checking = health(self);
    auto checks = co_await std::move(checking);
    bool healthy = true;
    for (const auto& h : checks)
      healthy = healthy && h.healthy();
    auto body = to_health_json(checks);
    body += '\n';
    co_return make_response(healthy ? bhttp::status::ok : bhttp::status::service_unavailable,
                            version, std::move(body), "application/json", true);
  }

  // Each source's snapshot, read on the source's own executor (metrics() must be called
  // there), one after the other: each is a copy of counters, quick.
  static asio::awaitable<std::string> metrics_text(std::shared_ptr<impl> self) {
    // Copies: add() and remove() may change the lists while this waits.
    const auto handles = self->handles_;
    const auto caches = self->caches_;
    std::vector<handle_snapshot> hs;
    std::vector<cache_snapshot> cs;
    for (const auto& [name, h] : handles) {
      try {
        auto op = metrics_of(h);
        auto ex = h.get_executor();
        auto spawned = asio::co_spawn(ex, std::move(op), asio::use_awaitable);
        auto m = co_await std::move(spawned);
        handle_snapshot s;
        s.name = name;
        s.metrics = std::move(m);
        hs.push_back(std::move(s));
      } catch (const std::exception&) {
        // A handle that cannot report (closed, say) is left out of this scrape.
      }
    }
    for (const auto& [name, c] : caches) {
      try {
        auto op = snapshot_of(name, c);
        auto ex = c.redis().get_executor();
        auto spawned = asio::co_spawn(ex, std::move(op), asio::use_awaitable);
        auto s = co_await std::move(spawned);
        cs.push_back(std::move(s));
      } catch (const std::exception&) {}
    }
    const auto client_caches = self->client_caches_;
    auto reading_caches = snapshots_of<client_cache_snapshot>(
        client_caches,
        [](const redcoro::detail::tracking_cache_impl& c) { return redcoro::detail::stats_of(c); });
    const auto ccs = co_await std::move(reading_caches);
    const auto subscribers = self->subscribers_;
    auto reading_subscribers =
        snapshots_of<subscriber_snapshot>(subscribers, [](const subscriber_stats& s) { return s; });
    const auto ss = co_await std::move(reading_subscribers);
    auto text = to_prometheus(hs, cs, ccs, ss);
    const auto collectors = self->collectors_;
    for (const auto& [name, c] : collectors) {
      try {
        auto collecting = asio::co_spawn(
            c.ex,
            [f = c.collect]() -> asio::awaitable<std::string> {
              std::string out;
              f(out);
              co_return out;
            },
            asio::use_awaitable);
        text += co_await std::move(collecting);
      } catch (const std::exception&) {
        // A collector that throws is left out of this scrape.
      }
    }
    co_return text;
  }

  // Every handle's health check at once, each started on the handle's executor and bounded by
  // options.health_timeout; the answer waits for the last, or a little longer than the bound
  // (a handle whose executor does not run answers never: it is reported as not answering).
  static asio::awaitable<std::vector<handle_health>> health(std::shared_ptr<impl> self) {
    const auto handles = self->handles_;
    const auto bound = self->options_.health_timeout;
    auto round = std::make_shared<health_round>(self->strand_, handles.size());
    for (std::size_t i = 0; i < handles.size(); ++i) {
      round->results[i].name = handles[i].first;
      const auto& h = handles[i].second;
      auto op = health_of(h, bound);
      asio::co_spawn(
          h.get_executor(), std::move(op),
          asio::bind_executor(self->strand_, [round, i](std::exception_ptr e,
                                                        std::pair<error_code, health_report> r) {
            auto& slot = round->results[i];
            if (e) {
              slot.error = boost::system::errc::make_error_code(boost::system::errc::io_error);
            } else {
              slot.error = r.first;
              slot.report = std::move(r.second);
            }
            round->answered[i] = true;
            if (--round->left == 0) round->done.cancel();
          }));
    }
    if (round->left > 0) {
      round->done.expires_after(bound + std::chrono::seconds(1));
      co_await round->done.async_wait(use_tuple);
    }
    auto results = round->results;
    for (std::size_t i = 0; i < results.size(); ++i)
      if (!round->answered[i]) {
        results[i].error = boost::system::errc::make_error_code(boost::system::errc::timed_out);
        results[i].report.reason = "no answer";
      }
    co_return results;
  }

  executor_type ex_;
  asio::strand<executor_type> strand_;
  exporter_options options_;
  tcp::acceptor acceptor_;
  tcp::endpoint local_;
  bool closed_ = false;
  std::vector<std::pair<std::string, handle>> handles_;
  std::vector<std::pair<std::string, cache::cache>> caches_;
  std::vector<std::pair<std::string, registered_client_cache>> client_caches_;
  std::vector<std::pair<std::string, registered_subscriber>> subscribers_;
  struct registered_collector {
    executor_type ex;
    collector collect;
  };
  std::vector<std::pair<std::string, registered_collector>> collectors_;
  std::list<beast::tcp_stream*> sessions_;
};

exporter::exporter(executor_type ex, exporter_options options)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(options))) {
  impl_->start();
}

exporter::~exporter() {
  if (impl_) close();
}

exporter::executor_type exporter::get_executor() const noexcept {
  return impl_->executor();
}

asio::ip::tcp::endpoint exporter::local_endpoint() const {
  return impl_->local_endpoint();
}

void exporter::add(std::string name, handle redis) {
  impl_->on_strand([name = std::move(name), redis = std::move(redis)](impl& i) mutable {
    i.set(std::move(name), std::move(redis));
  });
}

void exporter::add(std::string name, cache::cache c) {
  impl_->on_strand([name = std::move(name), c = std::move(c)](impl& i) mutable {
    i.set(std::move(name), std::move(c));
  });
}

void exporter::add(std::string name, const redcoro::detail::tracking_cache_base& c) {
  // The executor now, while the cache's connection surely lives; the state, shared.
  registered_client_cache r{c.get_executor(), shared_state(c)};
  impl_->on_strand([name = std::move(name), r = std::move(r)](impl& i) mutable {
    i.set(std::move(name), std::move(r));
  });
}

void exporter::add_subscriber(std::string name, executor_type ex,
                              std::shared_ptr<const subscriber_stats> stats) {
  registered_subscriber r{std::move(ex), std::move(stats)};
  impl_->on_strand([name = std::move(name), r = std::move(r)](impl& i) mutable {
    i.set(std::move(name), std::move(r));
  });
}

void exporter::add(std::string name, executor_type ex, collector c) {
  impl_->on_strand([name = std::move(name), ex = std::move(ex), c = std::move(c)](impl& i) mutable {
    i.set(std::move(name), std::move(ex), std::move(c));
  });
}

void exporter::remove(std::string name) {
  impl_->on_strand([name = std::move(name)](impl& i) { i.erase(name); });
}

void exporter::close() {
  impl_->on_strand([](impl& i) { i.close_now(); });
}

}  // namespace redcoro::http
