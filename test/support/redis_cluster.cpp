#include "support/redis_cluster.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace redcoro::test {

namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

redis_cluster::node_view parse_node(const std::vector<std::string>& words);

// The lines of a CLUSTER NODES reply.
std::vector<redis_cluster::node_view> parse_nodes(const std::string& text) {
  std::vector<redis_cluster::node_view> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto w = words(line);
    if (w.size() < 8) continue;
    try {
      out.push_back(parse_node(w));
    } catch (const std::exception&) {
      // A node the others know no address of yet (":0@0", "noaddr" while it rejoins): not a
      // node to talk to.
    }
  }
  return out;
}

redis_cluster::node_view parse_node(const std::vector<std::string>& w) {
  {
    redis_cluster::node_view n;
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
    if (n.port == 0) throw std::invalid_argument("no address");
    return n;
  }
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
  if (primaries >= 3) {
    std::vector<std::string> create = {"--cluster", "create"};
    for (const auto& s : servers_)
      create.push_back("127.0.0.1:" + std::to_string(s->port()));
    create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
    const std::string out = servers_[0]->cli(create);
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
  for (const auto& s : servers_)
    if (s->answering()) return *s;
  throw std::runtime_error("every node is down");
}

std::string redis_cluster::cli(const std::vector<std::string>& args) const {
  return any_up().cli(args);
}

void redis_cluster::kill(std::uint16_t port) {
  server_on(port).kill();
}

std::vector<redis_cluster::node_view> redis_cluster::nodes() const {
  return parse_nodes(cli({"CLUSTER", "NODES"}));
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
      if (!servers_[i]->answering()) continue;
      const std::string info = servers_[i]->cli({"CLUSTER", "INFO"});
      ok = info.find("cluster_state:ok") != std::string::npos &&
           info.find("cluster_slots_ok:16384") != std::string::npos;
      const std::string repl = servers_[i]->cli({"INFO", "replication"});
      if (repl.find("role:slave") != std::string::npos)
        ok = ok && repl.find("master_link_status:up") != std::string::npos &&
             repl.find("master_sync_in_progress:0") != std::string::npos;
      // Who serves which slots, as this node sees it.
      std::vector<std::string> lines;
      for (const auto& n : parse_nodes(servers_[i]->cli({"CLUSTER", "NODES"}))) {
        std::string l = std::to_string(n.port) + (n.primary ? " M" : " R");
        for (auto [first, last] : n.slots)
          l += " " + std::to_string(first) + "-" + std::to_string(last);
        lines.push_back(std::move(l));
      }
      std::sort(lines.begin(), lines.end());
      std::string view;
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
