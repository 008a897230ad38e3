// redcoro-gateway: see README.md. Flags:
//   --redis URL            Redis (redis://, redis+cluster://, redis+sentinel://)
//   --port N               the page and the WebSocket (0: a free one)     [8080]
//   --address A            the address to listen on                       [127.0.0.1]
//   --metrics-port N       /metrics and /health, on 127.0.0.1 (0: free)   [0]
//   --id NAME              this gateway's name                            [gw]
//   --allow-origin O       an Origin allowed to connect (repeatable; none: the page's own)
//   --send-queue N, --max-connections N, --rate-limit N, --heartbeat-ms N, --presence-ttl-ms N,
//   --redis-timeout-ms N, --frames-per-second N, --flood-refusals N, --history N,
//   --history-ttl-s N
// Prints "listening on PORT metrics PORT" once both listeners are bound; stops on SIGINT and
// SIGTERM (closing clients with 1001 and removing its members' presence).

#include "gateway.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void usage(std::string_view why) {
  std::fprintf(stderr, "redcoro-gateway: %.*s (see examples/gateway/README.md)\n",
               static_cast<int>(why.size()), why.data());
  std::exit(2);
}

template <class T>
T number(std::string_view flag, const char* v) {
  T out{};
  const std::string_view s(v);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || p != s.data() + s.size()) usage(std::string(flag) + " wants a number");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  redcoro::gateway::options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag(argv[i]);
    if (i + 1 >= argc) usage(std::string(flag) + " wants a value");
    const char* v = argv[++i];
    using ms = std::chrono::milliseconds;
    if (flag == "--redis")
      o.redis = v;
    else if (flag == "--port")
      o.port = number<std::uint16_t>(flag, v);
    else if (flag == "--address")
      o.address = boost::asio::ip::make_address(v);
    else if (flag == "--metrics-port")
      o.metrics_port = number<std::uint16_t>(flag, v);
    else if (flag == "--id")
      o.id = v;
    else if (flag == "--allow-origin")
      o.allowed_origins.emplace_back(v);
    else if (flag == "--send-queue")
      o.send_queue = number<std::size_t>(flag, v);
    else if (flag == "--max-connections")
      o.max_connections = number<std::size_t>(flag, v);
    else if (flag == "--rate-limit")
      o.rate_limit = number<std::int64_t>(flag, v);
    else if (flag == "--heartbeat-ms")
      o.heartbeat = ms(number<int>(flag, v));
    else if (flag == "--presence-ttl-ms")
      o.presence_ttl = ms(number<int>(flag, v));
    else if (flag == "--redis-timeout-ms")
      o.redis_timeout = ms(number<int>(flag, v));
    else if (flag == "--frames-per-second")
      o.frames_per_second = number<int>(flag, v);
    else if (flag == "--flood-refusals")
      o.flood_refusals = number<int>(flag, v);
    else if (flag == "--history")
      o.history = number<std::int64_t>(flag, v);
    else
      usage("unknown flag " + std::string(flag));
  }
  try {
    boost::asio::io_context ioc(1);
    redcoro::gateway::gateway gw(ioc, o);
    std::printf("listening on %u metrics %u\n", static_cast<unsigned>(gw.port()),
                static_cast<unsigned>(gw.metrics_port()));
    std::fflush(stdout);
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    boost::asio::steady_timer deadline(ioc);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      gw.stop([&] { deadline.cancel(); });
      // Bounded: whatever has not finished in 5 s is cut.
      deadline.expires_after(std::chrono::seconds(5));
      deadline.async_wait([&](const boost::system::error_code& e) {
        if (!e) ioc.stop();
      });
    });
    ioc.run();
  } catch (const std::exception& e) {
    spdlog::error("redcoro-gateway: {}", e.what());
    return 1;
  }
  return 0;
}
