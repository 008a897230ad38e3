// redcoro-gateway: see README.md ("Running it" lists the flags; each sets the member of
// redcoro::gateway::options of the same name). Prints "listening on PORT metrics PORT" once both
// listeners are bound; stops on SIGINT and SIGTERM (closing clients with 1001 and removing its
// members' presence).

#include "gateway.hpp"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
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
  using ms = std::chrono::milliseconds;
  // Every flag takes one value.
  const std::map<std::string_view, std::function<void(std::string_view, const char*)>> flags = {
      {"--redis", [&](auto, const char* v) { o.redis = v; }},
      {"--port", [&](auto f, const char* v) { o.port = number<std::uint16_t>(f, v); }},
      {"--address", [&](auto, const char* v) { o.address = boost::asio::ip::make_address(v); }},
      {"--metrics-port",
       [&](auto f, const char* v) { o.metrics_port = number<std::uint16_t>(f, v); }},
      {"--id", [&](auto, const char* v) { o.id = v; }},
      {"--allow-origin", [&](auto, const char* v) { o.allowed_origins.emplace_back(v); }},
      {"--max-connections",
       [&](auto f, const char* v) { o.max_connections = number<std::size_t>(f, v); }},
      {"--send-queue", [&](auto f, const char* v) { o.send_queue = number<std::size_t>(f, v); }},
      {"--send-queue-bytes",
       [&](auto f, const char* v) { o.send_queue_bytes = number<std::size_t>(f, v); }},
      {"--socket-send-buffer",
       [&](auto f, const char* v) { o.socket_send_buffer = number<int>(f, v); }},
      {"--max-frame", [&](auto f, const char* v) { o.max_frame = number<std::size_t>(f, v); }},
      {"--max-text", [&](auto f, const char* v) { o.max_text = number<std::size_t>(f, v); }},
      {"--rooms-per-client",
       [&](auto f, const char* v) { o.rooms_per_client = number<std::size_t>(f, v); }},
      {"--history", [&](auto f, const char* v) { o.history = number<std::int64_t>(f, v); }},
      {"--history-ttl-s",
       [&](auto f, const char* v) { o.history_ttl = std::chrono::seconds(number<int>(f, v)); }},
      {"--heartbeat-ms", [&](auto f, const char* v) { o.heartbeat = ms(number<int>(f, v)); }},
      {"--presence-ttl-ms", [&](auto f, const char* v) { o.presence_ttl = ms(number<int>(f, v)); }},
      {"--rate-limit", [&](auto f, const char* v) { o.rate_limit = number<std::int64_t>(f, v); }},
      {"--rate-window-ms", [&](auto f, const char* v) { o.rate_window = ms(number<int>(f, v)); }},
      {"--frames-per-second",
       [&](auto f, const char* v) { o.frames_per_second = number<int>(f, v); }},
      {"--joins-per-second",
       [&](auto f, const char* v) { o.joins_per_second = number<int>(f, v); }},
      {"--flood-refusals", [&](auto f, const char* v) { o.flood_refusals = number<int>(f, v); }},
      {"--redis-timeout-ms",
       [&](auto f, const char* v) { o.redis_timeout = ms(number<int>(f, v)); }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag(argv[i]);
    const auto it = flags.find(flag);
    if (it == flags.end()) usage("unknown flag " + std::string(flag));
    if (i + 1 >= argc) usage(std::string(flag) + " wants a value");
    it->second(flag, argv[++i]);
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
