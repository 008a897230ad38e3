#pragma once

// Real servers for the integration tests: each redis-server runs in its own temporary
// directory on a free loopback port below 32768, and is stopped when the object goes away,
// also when a test fails.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace redcoro::test {

/// How to start a redis_server beyond the defaults (loopback, a free port, its own directory,
/// no persistence).
struct server_options {
  /// Added to the command line (e.g. {"--requirepass", "x"}).
  std::vector<std::string> args;
  /// When not empty: written to a config file in the server's directory, which is given as
  /// its first argument (a sentinel needs one it can rewrite). Written once: a restart keeps
  /// what the server rewrote.
  std::string config;
  /// Runs it as a sentinel (`redis-server <config> --sentinel`).
  bool sentinel = false;
};

class redis_server {
 public:
  /// Starts redis-server with `args` added to its command line (e.g. {"--requirepass", "x"}).
  explicit redis_server(std::vector<std::string> args = {});
  explicit redis_server(server_options options);
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  const std::string& dir() const noexcept { return dir_; }
  /// SIGKILL, and wait until it is gone.
  void kill();
  /// Not killed (or restarted since).
  bool running() const noexcept { return pid_ > 0; }
  /// Starts it again on the same port and directory (after kill()).
  void restart();
  /// SIGSTOP / SIGCONT: the server keeps its connections but answers nothing.
  void pause();
  void resume();
  /// Running and not paused: it answers.
  bool answering() const noexcept { return pid_ > 0 && !paused_; }
  /// Runs redis-cli against it and returns its output (for CLIENT KILL and the like).
  std::string cli(const std::vector<std::string>& args) const;

 private:
  bool spawn();
  std::vector<std::string> args_;
  std::string config_file_;  // empty: none
  bool sentinel_ = false;
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

/// A TCP server on loopback that speaks just enough RESP to get through the handshake, then
/// sends what the test wants: garbage, truncated replies, oversized lengths.
class scripted_server {
 public:
  /// `reply(n)` gives the bytes to send after the n-th command following a handshake,
  /// counted over all connections; empty means send nothing.
  explicit scripted_server(std::function<std::string(std::size_t)> reply,
                           std::string hello_reply = "%1\r\n$5\r\nproto\r\n:3\r\n");
  ~scripted_server();
  std::uint16_t port() const noexcept { return port_; }
  std::size_t connections() const noexcept { return connections_; }

 private:
  void serve();
  std::function<std::string(std::size_t)> reply_;
  std::string hello_reply_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<std::size_t> connections_{0};
  std::size_t commands_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

/// A loopback port below 32768 where nothing listens (and port + 10000 too).
std::uint16_t free_port();

}  // namespace redcoro::test
