#include "support/redis_cluster.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace redcoro::test {

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  if (FILE* f = ::popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    while (std::size_t n = std::fread(buf.data(), 1, buf.size(), f))
      out.append(buf.data(), n);
    ::pclose(f);
  }
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

}  // namespace

redis_cluster::redis_cluster(std::size_t primaries, std::size_t replicas) {
  const std::vector<std::string> args = {
      "--cluster-enabled",      "yes",  "--cluster-config-file",      "nodes.conf",
      "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
      "--repl-diskless-sync",   "yes"};
  const std::size_t count = primaries * (1 + replicas);
  for (std::size_t i = 0; i < count; ++i)
    servers_.push_back(std::make_unique<redis_server>(args));
  down_.assign(count, false);
  if (primaries >= 3) {
    std::string cmd = "redis-cli --cluster create";
    for (const auto& s : servers_)
      cmd += " 127.0.0.1:" + std::to_string(s->port());
    cmd += " --cluster-replicas " + std::to_string(replicas) + " --cluster-yes 2>&1";
    const std::string out = run(cmd);
    if (out.find("[OK] All 16384 slots covered") == std::string::npos)
      throw std::runtime_error("redis-cli --cluster create failed:\n" + out);
  } else {
    // redis-cli wants three primaries; fewer are made by hand: the first node takes every
    // slot, the others meet it and replicate it.
    if (primaries != 1) throw std::runtime_error("a cluster of 1 or at least 3 primaries");
    redis_server& first = *servers_[0];
    first.cli({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"});
    const std::string id = words(first.cli({"CLUSTER", "MYID"})).at(0);
    for (std::size_t i = 1; i < servers_.size(); ++i)
      servers_[i]->cli({"CLUSTER", "MEET", "127.0.0.1", std::to_string(first.port())});
    for (std::size_t i = 1; i < servers_.size(); ++i) {
      for (int attempt = 0; attempt < 100; ++attempt) {
        if (servers_[i]->cli({"CLUSTER", "REPLICATE", id}).find("OK") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  if (!wait_healthy()) throw std::runtime_error("the new cluster did not become healthy");
}

std::vector<std::uint16_t> redis_cluster::ports() const {
  std::vector<std::uint16_t> out;
  for (const auto& s : servers_)
    out.push_back(s->port());
  return out;
}

redis_server& redis_cluster::server_on(std::uint16_t port) {
  for (auto& s : servers_)
    if (s->port() == port) return *s;
  throw std::runtime_error("no node on port " + std::to_string(port));
}

const redis_server& redis_cluster::any_up() const {
  for (std::size_t i = 0; i < servers_.size(); ++i)
    if (!down_[i]) return *servers_[i];
  throw std::runtime_error("every node is down");
}

std::string redis_cluster::cli(const std::vector<std::string>& args) const {
  return any_up().cli(args);
}

void redis_cluster::kill(std::uint16_t port) {
  for (std::size_t i = 0; i < servers_.size(); ++i)
    if (servers_[i]->port() == port) {
      servers_[i]->kill();
      down_[i] = true;
    }
}

std::vector<redis_cluster::node_view> redis_cluster::nodes() const {
  std::vector<node_view> out;
  std::istringstream in(cli({"CLUSTER", "NODES"}));
  for (std::string line; std::getline(in, line);) {
    const auto w = words(line);
    if (w.size() < 8) continue;
    node_view n;
    n.id = w[0];
    const auto colon = w[1].find(':');
    const auto at = w[1].find('@');
    n.port = static_cast<std::uint16_t>(std::stoi(w[1].substr(colon + 1, at - colon - 1)));
    n.primary = w[2].find("master") != std::string::npos;
    n.failed = w[2].find("fail") != std::string::npos && w[2].find("fail?") == std::string::npos;
    n.primary_id = w[3];
    for (std::size_t i = 8; i < w.size(); ++i) {
      if (w[i].front() == '[') continue;  // a slot being migrated
      const auto dash = w[i].find('-');
      const int first = std::stoi(w[i].substr(0, dash));
      const int last = dash == std::string::npos ? first : std::stoi(w[i].substr(dash + 1));
      n.slots.emplace_back(first, last);
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::uint16_t redis_cluster::owner_of(int slot) const {
  for (const auto& n : nodes())
    for (auto [first, last] : n.slots)
      if (slot >= first && slot <= last) return n.port;
  return 0;
}

std::vector<std::uint16_t> redis_cluster::replicas_of(std::uint16_t primary_port) const {
  const auto all = nodes();
  std::string id;
  for (const auto& n : all)
    if (n.port == primary_port) id = n.id;
  std::vector<std::uint16_t> out;
  for (const auto& n : all)
    if (!n.primary && n.primary_id == id && !n.failed) out.push_back(n.port);
  return out;
}

bool redis_cluster::wait_healthy(std::chrono::seconds limit) const {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    bool ok = true;
    std::set<std::string> views;
    for (std::size_t i = 0; i < servers_.size() && ok; ++i) {
      if (down_[i]) continue;
      const std::string info = servers_[i]->cli({"CLUSTER", "INFO"});
      ok = info.find("cluster_state:ok") != std::string::npos &&
           info.find("cluster_slots_ok:16384") != std::string::npos;
      const std::string repl = servers_[i]->cli({"INFO", "replication"});
      if (repl.find("role:slave") != std::string::npos)
        ok = ok && repl.find("master_link_status:up") != std::string::npos &&
             repl.find("master_sync_in_progress:0") != std::string::npos;
      // Who serves which slots, as this node sees it.
      std::string view;
      std::istringstream in(servers_[i]->cli({"CLUSTER", "NODES"}));
      std::vector<std::string> lines;
      for (std::string line; std::getline(in, line);) {
        const auto w = words(line);
        if (w.size() < 8) continue;
        std::string l = w[1].substr(0, w[1].find('@'));
        l += w[2].find("master") != std::string::npos ? " M" : " R";
        for (std::size_t k = 8; k < w.size(); ++k)
          l += " " + w[k];
        lines.push_back(l);
      }
      std::sort(lines.begin(), lines.end());
      for (const auto& l : lines)
        view += l + "\n";
      views.insert(view);
    }
    if (ok && views.size() == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace redcoro::test
