#include "support/prometheus_server.hpp"

#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace redcoro::test {
namespace {

// GET /-/ready answered with 200: Prometheus has loaded its configuration and storage.
bool ready(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  const std::string req = "GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    pollfd p{fd, POLLIN, 0};
    char buf[64] = {};
    if (::poll(&p, 1, 1000) == 1 && ::recv(fd, buf, sizeof buf - 1, 0) > 12)
      ok = std::string_view(buf).substr(9, 3) == "200";
  }
  ::close(fd);
  return ok;
}

std::string make_temp_dir() {
  std::string pattern = "/tmp/redcoro-prometheus-XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace

bool prometheus_server::on_path(const std::string& name) {
  const std::string cmd = "command -v '" + name + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

prometheus_server::prometheus_server(std::vector<std::string> targets) : dir_(make_temp_dir()) {
  std::ostringstream yml;
  yml << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: redcoro\n    static_configs:\n      - targets: [";
  for (std::size_t i = 0; i < targets.size(); ++i)
    yml << (i ? ", " : "") << "'" << targets[i] << "'";
  yml << "]\n";
  std::ofstream out(dir_ + "/prometheus.yml");
  out << yml.str();
  out.close();
  if (!out) throw std::runtime_error("cannot write " + dir_ + "/prometheus.yml");
  // A port free a moment ago can be taken before Prometheus binds it: try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    if (spawn()) return;
  }
  const auto tail = log_tail();
  stop();
  throw std::runtime_error("prometheus did not start:\n" + tail);
}

bool prometheus_server::spawn() {
  std::vector<std::string> args = {"prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                                   "--storage.tsdb.path=" + dir_ + "/data",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                   "--log.level=warn"};
  std::vector<char*> argv;
  for (auto& s : args)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string log = dir_ + "/prometheus.log";
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("cannot fork for prometheus");
  if (pid_ == 0) {
    // Dies with the test process, even when no destructor runs.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execvp("prometheus", argv.data());
    ::_exit(127);
  }
  // Bounded: up to 30 s to load (a cold start on a busy machine takes a few seconds).
  for (int i = 0; i < 300; ++i) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // exited: most likely the port was taken
      return false;
    }
    if (ready(port_)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop();
  return false;
}

void prometheus_server::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 250 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (::waitpid(pid_, &status, WNOHANG) == 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

std::string prometheus_server::log_tail() const {
  std::ifstream in(dir_ + "/prometheus.log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

prometheus_server::~prometheus_server() {
  stop();
  const std::string cmd = "rm -rf '" + dir_ + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir_.c_str());
}

}  // namespace redcoro::test
