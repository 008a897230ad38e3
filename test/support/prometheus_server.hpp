#pragma once

// A real Prometheus server for the exporter's tests: it runs in its own temporary directory
// (configuration and storage) on a free loopback port, scrapes the given targets every second,
// and is stopped when the object goes away, also when a test fails.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace redcoro::test {

class prometheus_server {
 public:
  /// Starts `prometheus` scraping each of `targets` ("127.0.0.1:9121") at /metrics every
  /// second, and waits (at most 30 s) until it is ready. Throws std::runtime_error when it does
  /// not start.
  explicit prometheus_server(std::vector<std::string> targets);
  ~prometheus_server();
  prometheus_server(const prometheus_server&) = delete;
  prometheus_server& operator=(const prometheus_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  const std::string& dir() const noexcept { return dir_; }
  /// The end of its log, for a failure's message.
  std::string log_tail() const;

  /// Whether a program named `name` (prometheus, promtool) is on the PATH.
  static bool on_path(const std::string& name);

 private:
  bool spawn();
  void stop();
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace redcoro::test
