#include "support/redis_sentinel.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace redcoro::test {
namespace {

std::string run_cli(std::uint16_t port, const std::string& password,
                    const std::vector<std::string>& args) {
  std::string cmd = "redis-cli -h 127.0.0.1 -p " + std::to_string(port);
  if (!password.empty()) cmd += " --no-auth-warning -a '" + password + "'";
  for (const auto& a : args)
    cmd += " '" + a + "'";
  cmd += " 2>/dev/null";
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf;
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), f))
      out.append(buf.data(), n);
    ::pclose(f);
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

// The value after `key` in redis-cli's output of a flat field/value reply.
std::string field(const std::vector<std::string>& lines, const std::string& key) {
  for (std::size_t i = 0; i + 1 < lines.size(); i += 2)
    if (lines[i] == key) return lines[i + 1];
  return {};
}

}  // namespace

redis_sentinel::redis_sentinel() : redis_sentinel(options{}) {}

redis_sentinel::redis_sentinel(options o) : opt_(std::move(o)) {
  std::vector<std::string> data_args = {"--repl-diskless-sync-delay", "0"};
  if (!opt_.password.empty()) {
    data_args.insert(data_args.end(),
                     {"--requirepass", opt_.password, "--masterauth", opt_.password});
  }
  servers_.push_back(std::make_unique<redis_server>(data_args));
  const std::uint16_t primary = servers_[0]->port();
  auto replica_args = data_args;
  replica_args.insert(replica_args.end(), {"--replicaof", "127.0.0.1", std::to_string(primary)});
  servers_.push_back(std::make_unique<redis_server>(replica_args));

  std::string conf = "sentinel announce-ip 127.0.0.1\n";
  conf += "sentinel monitor " + opt_.name + " 127.0.0.1 " + std::to_string(primary) + " 2\n";
  conf += "sentinel down-after-milliseconds " + opt_.name + " 1000\n";
  conf += "sentinel failover-timeout " + opt_.name + " 5000\n";
  if (!opt_.password.empty())
    conf += "sentinel auth-pass " + opt_.name + " " + opt_.password + "\n";
  // With requirepass, a sentinel also uses that password with the other sentinels.
  if (!opt_.sentinel_password.empty()) conf += "requirepass " + opt_.sentinel_password + "\n";
  for (std::size_t i = 0; i < opt_.sentinels; ++i)
    sentinels_.push_back(std::make_unique<redis_server>(server_options{{}, conf, true}));
  if (!wait_ready(std::chrono::seconds(30)))
    throw std::runtime_error("the sentinels did not get ready; see the redis.log files in " +
                             sentinels_[0]->dir());
}

redis_server& redis_sentinel::server_on(std::uint16_t port) {
  for (auto& s : servers_)
    if (s->port() == port) return *s;
  throw std::out_of_range("no data server on port " + std::to_string(port));
}

std::vector<std::uint16_t> redis_sentinel::sentinel_ports() const {
  std::vector<std::uint16_t> out;
  for (const auto& s : sentinels_)
    out.push_back(s->port());
  return out;
}

std::string redis_sentinel::sentinel_cli(std::size_t i,
                                         const std::vector<std::string>& args) const {
  return run_cli(sentinels_.at(i)->port(), opt_.sentinel_password, args);
}

std::string redis_sentinel::server_cli(std::uint16_t port,
                                       const std::vector<std::string>& args) const {
  return run_cli(port, opt_.password, args);
}

std::uint16_t redis_sentinel::agreed_primary() const {
  std::uint16_t agreed = 0;
  bool any = false;
  for (std::size_t i = 0; i < sentinels_.size(); ++i) {
    if (!sentinels_[i]->running()) continue;
    const auto lines =
        lines_of(sentinel_cli(i, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", opt_.name}));
    if (lines.size() < 2) return 0;
    const std::uint16_t port = static_cast<std::uint16_t>(std::atoi(lines[1].c_str()));
    if (port == 0 || (any && port != agreed)) return 0;
    agreed = port;
    any = true;
  }
  if (!any) return 0;
  bool up = false;
  for (const auto& s : servers_)
    if (s->port() == agreed) up = s->answering();
  if (!up) return 0;
  const auto role = lines_of(server_cli(agreed, {"ROLE"}));
  return !role.empty() && role[0] == "master" ? agreed : 0;
}

std::uint16_t redis_sentinel::wait_primary(std::chrono::milliseconds limit,
                                           std::uint16_t not_port) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const std::uint16_t p = agreed_primary();
    if (p != 0 && p != not_port) return p;
    if (std::chrono::steady_clock::now() >= until) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool redis_sentinel::wait_ready(std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  std::size_t running = 0;
  for (const auto& s : sentinels_)
    running += s->running() ? 1 : 0;
  for (;;) {
    bool ready = false;
    if (const std::uint16_t primary = agreed_primary()) {
      const std::string info = server_cli(primary, {"INFO", "replication"});
      ready = info.find("state=online") != std::string::npos;
      for (std::size_t i = 0; ready && i < sentinels_.size(); ++i) {
        if (!sentinels_[i]->running()) continue;
        const auto m = lines_of(sentinel_cli(i, {"SENTINEL", "MASTER", opt_.name}));
        ready = field(m, "flags") == "master" && field(m, "num-slaves") != "0" &&
                field(m, "num-slaves") != "" &&
                field(m, "num-other-sentinels") == std::to_string(running - 1);
        // The replica must be one the sentinel sees as up, or it could not be promoted.
        if (ready) {
          const std::string r = sentinel_cli(i, {"SENTINEL", "REPLICAS", opt_.name});
          ready =
              r.find("s_down") == std::string::npos && r.find("disconnected") == std::string::npos;
        }
      }
    }
    if (ready) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace redcoro::test
