// redcoro-gateway-load: the gateway's load generator (load.hpp).
//
//   redcoro-gateway-load --gateway 8080 --gateway 8081 --metrics 9121 --metrics 9122
//                        --clients 1000 --rooms 50 --rate 1 --duration 30 --drain 5
//
// Prints a Markdown table; exits 0 when nothing was lost, duplicated, reordered or closed.

#include "load.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: redcoro-gateway-load --gateway PORT [--gateway PORT ...]\n"
               "         [--metrics PORT ...] [--clients N] [--rooms N] [--rate PER_SECOND]\n"
               "         [--duration SECONDS] [--drain SECONDS]\n",
               why);
  std::exit(2);
}

template <class T>
T number(std::string_view flag, const char* text) {
  const std::string_view s = text;
  T v{};
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) {
    const std::string why = "bad value for " + std::string(flag) + ": " + std::string(s);
    usage(why.c_str());
  }
  return v;
}

std::chrono::milliseconds seconds(std::string_view flag, const char* text) {
  const double s = number<double>(flag, text);
  if (!(s >= 0)) usage("durations are >= 0");
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

}  // namespace

int main(int argc, char** argv) {
  namespace gl = redcoro::gateway_load;
  gl::options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h")
      usage("redcoro-gateway-load: the gateway's load generator");
    if (i + 1 >= argc) usage(("missing value for " + std::string(flag)).c_str());
    const char* value = argv[++i];
    if (flag == "--gateway") {
      o.gateways.push_back(number<std::uint16_t>(flag, value));
    } else if (flag == "--metrics") {
      o.metrics_ports.push_back(number<std::uint16_t>(flag, value));
    } else if (flag == "--clients") {
      o.clients = number<int>(flag, value);
    } else if (flag == "--rooms") {
      o.rooms = number<int>(flag, value);
    } else if (flag == "--rate") {
      o.rate = number<double>(flag, value);
    } else if (flag == "--duration") {
      o.duration = seconds(flag, value);
    } else if (flag == "--drain") {
      o.drain = seconds(flag, value);
    } else {
      usage(("unknown flag " + std::string(flag)).c_str());
    }
  }
  if (o.gateways.empty()) usage("at least one --gateway PORT");
  if (o.clients <= 0 || o.rooms <= 0 || !(o.rate > 0)) usage("clients, rooms and rate are > 0");

  try {
    const gl::report r = gl::run(o);
    std::fputs(gl::to_table(r).c_str(), stdout);
    return r.ok() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "redcoro-gateway-load: %s\n", e.what());
    return 1;
  }
}
