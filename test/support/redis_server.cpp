#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string_view>

namespace redcoro::test {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool can_bind(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  auto a = loopback(port);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Connects, sends PING, and waits for +PONG (or any reply: a server that wants a password
// answers -NOAUTH, which also proves it is up).
bool answers(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  auto a = loopback(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    pollfd p{fd, POLLIN, 0};
    char buf[64];
    ok = ::poll(&p, 1, 1000) == 1 && ::recv(fd, buf, sizeof buf, 0) > 0;
  }
  ::close(fd);
  return ok;
}

std::string make_temp_dir() {
  std::string pattern = "/tmp/redcoro-test-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace

std::uint16_t free_port() {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(12000, 22000);
  for (int i = 0; i < 200; ++i) {
    const auto port = static_cast<std::uint16_t>(pick(rng));
    if (can_bind(port) && can_bind(static_cast<std::uint16_t>(port + 10000))) return port;
  }
  throw std::runtime_error("no free loopback port");
}

redis_server::redis_server(std::vector<std::string> args)
    : redis_server(server_options{std::move(args), {}, false}) {}

redis_server::redis_server(server_options options)
    : args_(std::move(options.args)), sentinel_(options.sentinel), dir_(make_temp_dir()) {
  if (!options.config.empty() || sentinel_) {
    config_file_ = dir_ + (sentinel_ ? "/sentinel.conf" : "/redis.conf");
    std::ofstream out(config_file_);
    out << options.config;
    if (!out) throw std::runtime_error("cannot write " + config_file_);
  }
  // A port that was free a moment ago can be taken before the server binds it: try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (spawn()) return;
  }
  throw std::runtime_error("redis-server did not start; see " + dir_ + "/redis.log");
}

bool redis_server::spawn() {
  std::vector<std::string> argv_s = {"redis-server"};
  // The config file comes first; --sentinel anywhere after it.
  if (!config_file_.empty()) argv_s.push_back(config_file_);
  if (sentinel_) argv_s.push_back("--sentinel");
  const std::vector<std::string> common = {"--port",
                                           std::to_string(port_),
                                           "--bind",
                                           "127.0.0.1",
                                           "--dir",
                                           dir_,
                                           "--logfile",
                                           dir_ + "/redis.log",
                                           "--save",
                                           "",
                                           "--appendonly",
                                           "no",
                                           "--daemonize",
                                           "no",
                                           "--protected-mode",
                                           "no"};
  argv_s.insert(argv_s.end(), common.begin(), common.end());
  argv_s.insert(argv_s.end(), args_.begin(), args_.end());
  std::vector<char*> argv;
  for (auto& s : argv_s)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("cannot fork for redis-server");
  if (pid_ == 0) {
    // The server dies with the test process, even when that one crashes or is killed and
    // no destructor runs. (The signal follows the forking thread: create fixtures on a
    // thread that outlives them, as the tests do on their main thread.)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  // Bounded wait: up to 10 s for the server to answer.
  for (int i = 0; i < 200; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // exited: most likely the port was taken
      return false;
    }
    if (answers(port_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill();
  return false;
}

void redis_server::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void redis_server::pause() {
  if (pid_ > 0) ::kill(pid_, SIGSTOP);
  paused_ = pid_ > 0;
}

void redis_server::resume() {
  if (pid_ > 0) ::kill(pid_, SIGCONT);
  paused_ = false;
}

void redis_server::restart() {
  kill();
  // The port was ours a moment ago; wait (bounded) until it can be bound again.
  for (int i = 0; i < 100 && !spawn(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (pid_ <= 0) throw std::runtime_error("redis-server did not restart");
}

redis_server::~redis_server() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);  // a paused server would not act on SIGTERM
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    kill();
  }
  std::string cmd = "rm -rf '" + dir_ + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir_.c_str());
}

std::string redis_server::cli(const std::vector<std::string>& args) const {
  std::string cmd = "redis-cli -h 127.0.0.1 -p " + std::to_string(port_);
  for (const auto& a : args)
    cmd += " '" + a + "'";
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf;
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), f))
      out.append(buf.data(), n);
    ::pclose(f);
  }
  return out;
}

scripted_server::scripted_server(std::function<std::string(std::size_t)> reply,
                                 std::string hello_reply)
    : reply_(std::move(reply)), hello_reply_(std::move(hello_reply)) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  for (int attempt = 0; attempt < 20; ++attempt) {
    port_ = free_port();
    auto a = loopback(port_);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) break;
    port_ = 0;
  }
  if (port_ == 0 || ::listen(listener_, 16) != 0) throw std::runtime_error("cannot listen");
  thread_ = std::thread([this] { serve(); });
}

scripted_server::~scripted_server() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  thread_.join();
  ::close(listener_);
}

void scripted_server::serve() {
  // One connection at a time; the client under test reconnects after each failure.
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    const int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) continue;
    ++connections_;
    std::string received;
    char buf[4096];
    while (!stopping_) {
      pollfd c{fd, POLLIN, 0};
      if (::poll(&c, 1, 100) != 1) continue;
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      received.assign(buf, static_cast<std::size_t>(n));
      std::string out;
      if (received.find("HELLO") != std::string::npos) {
        out = hello_reply_;
      } else {
        out = reply_(commands_++);
      }
      if (!out.empty()) ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    }
    ::close(fd);
  }
}

}  // namespace redcoro::test
