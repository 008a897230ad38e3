#include <redcoro/cluster/topology.hpp>
#include <redcoro/proto/error.hpp>

#include <algorithm>
#include <charconv>

namespace redcoro {

namespace {

std::string_view text_of(const proto::value* v) {
  return v ? std::string_view(v->text) : std::string_view();
}

std::optional<std::uint16_t> port_of(const proto::value* v) {
  if (!v) return std::nullopt;
  const auto n = v->to_integer();
  if (!n || *n <= 0 || *n > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(*n);
}

std::optional<std::uint16_t> slot_of(const proto::value& v) {
  const auto n = v.to_integer();
  if (!n || *n < 0 || *n >= proto::slot_count) return std::nullopt;
  return static_cast<std::uint16_t>(*n);
}

bool starts_with_word(std::string_view text, std::string_view word) {
  return text.size() >= word.size() && text.substr(0, word.size()) == word &&
         (text.size() == word.size() || text[word.size()] == ' ');
}

}  // namespace

std::string node_address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<node_address> node_address::parse(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned value = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535)
    return std::nullopt;
  return node_address{std::string(host), static_cast<std::uint16_t>(value)};
}

cluster_topology::cluster_topology() : owner_(proto::slot_count, no_owner) {}

std::vector<node_address> cluster_topology::primaries() const {
  std::vector<node_address> out;
  for (const auto& s : shards_)
    out.push_back(nodes_[s.primary].address);
  return out;
}

bool cluster_topology::covers_all_slots() const noexcept {
  return std::find(owner_.begin(), owner_.end(), no_owner) == owner_.end();
}

const cluster_node* cluster_topology::find(const node_address& address) const noexcept {
  for (const cluster_node& n : nodes_)
    if (n.address == address) return &n;
  return nullptr;
}

std::size_t cluster_topology::add_node(cluster_node n) {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].address == n.address) return i;
  nodes_.push_back(std::move(n));
  return nodes_.size() - 1;
}

void cluster_topology::assign(std::size_t s, std::uint16_t first, std::uint16_t last) {
  shards_[s].slots.emplace_back(first, last);
  std::fill(owner_.begin() + first, owner_.begin() + last + 1, static_cast<std::uint16_t>(s));
}

std::error_code cluster_topology::from_shards(const proto::value& reply, cluster_topology& out,
                                              bool tls, std::string_view asked) {
  if (!reply.is_aggregate()) return proto::error::type_mismatch;
  cluster_topology t;
  for (const proto::value& entry : reply.elements) {
    const proto::value* slots = entry.find("slots");
    const proto::value* nodes = entry.find("nodes");
    if (!slots || !nodes || slots->size() % 2 != 0) return proto::error::type_mismatch;
    cluster_shard s;
    bool has_primary = false;
    // Redis 7.0 reports a replica whose replication offset is 0 as "loading", even when its
    // primary has nothing to send either (a cluster nothing was written to yet): such a
    // replica is in sync, and may serve reads.
    std::vector<std::pair<std::size_t, std::int64_t>> loading;  // node, offset
    std::int64_t primary_offset = -1;
    for (const proto::value& n : nodes->elements) {
      cluster_node info;
      info.id = std::string(text_of(n.find("id")));
      // The endpoint clients are meant to use ("?" when the node does not know it).
      std::string_view host = text_of(n.find("endpoint"));
      if (host.empty() || host == "?") host = text_of(n.find("ip"));
      if (host.empty()) host = asked;
      auto port = port_of(n.find(tls ? "tls-port" : "port"));
      if (!port && tls) port = port_of(n.find("port"));
      if (host.empty() || !port) return proto::error::type_mismatch;
      info.address = {std::string(host), *port};
      info.role = text_of(n.find("role")) == "master" ? node_role::primary : node_role::replica;
      const std::string_view health = text_of(n.find("health"));
      info.healthy = health == "online";
      const std::int64_t offset = [&] {
        const proto::value* o = n.find("replication-offset");
        return o ? o->to_integer().value_or(-1) : -1;
      }();
      const bool primary = info.role == node_role::primary;
      const std::size_t index = t.add_node(std::move(info));
      if (primary && !has_primary) {
        s.primary = index;
        has_primary = true;
        primary_offset = offset;
      } else {
        s.replicas.push_back(index);
        if (health == "loading") loading.emplace_back(index, offset);
      }
    }
    for (auto [index, offset] : loading)
      if (offset >= 0 && offset == primary_offset) t.nodes_[index].healthy = true;
    // A shard whose primary failed and has no replica to take over has no one to serve its
    // slots; they stay unowned.
    if (!has_primary || slots->size() == 0) continue;
    t.shards_.push_back(std::move(s));
    for (std::size_t i = 0; i + 1 < slots->size(); i += 2) {
      const auto first = slot_of((*slots)[i]);
      const auto last = slot_of((*slots)[i + 1]);
      if (!first || !last || *first > *last) return proto::error::type_mismatch;
      t.assign(t.shards_.size() - 1, *first, *last);
    }
  }
  out = std::move(t);
  return {};
}

std::error_code cluster_topology::from_slots(const proto::value& reply, cluster_topology& out,
                                             std::string_view asked) {
  if (!reply.is_aggregate()) return proto::error::type_mismatch;
  cluster_topology t;
  auto node_of = [&](const proto::value& v, node_role role) -> std::optional<cluster_node> {
    if (v.size() < 2) return std::nullopt;
    const auto port = port_of(&v[1]);
    const std::string_view host = v[0].text.empty() ? asked : std::string_view(v[0].text);
    if (host.empty() || host == "?" || !port) return std::nullopt;
    cluster_node n;
    n.address = {std::string(host), *port};
    if (v.size() > 2) n.id = v[2].text;
    n.role = role;
    return n;
  };
  for (const proto::value& range : reply.elements) {
    if (range.size() < 3) return proto::error::type_mismatch;
    const auto first = slot_of(range[0]);
    const auto last = slot_of(range[1]);
    auto primary = node_of(range[2], node_role::primary);
    if (!first || !last || *first > *last || !primary) return proto::error::type_mismatch;
    // A primary serving several ranges is listed once per range: one shard for all of them.
    std::size_t s = 0;
    while (s < t.shards_.size() && t.nodes_[t.shards_[s].primary].address != primary->address)
      ++s;
    if (s == t.shards_.size()) {
      cluster_shard fresh;
      fresh.primary = t.add_node(std::move(*primary));
      for (std::size_t i = 3; i < range.size(); ++i)
        if (auto r = node_of(range[i], node_role::replica))
          fresh.replicas.push_back(t.add_node(*r));
      t.shards_.push_back(std::move(fresh));
    }
    t.assign(s, *first, *last);
  }
  out = std::move(t);
  return {};
}

void cluster_topology::move_slot(std::uint16_t slot, const node_address& address) {
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    if (nodes_[shards_[s].primary].address == address) {
      owner_[slot] = static_cast<std::uint16_t>(s);
      return;
    }
  }
  // Not a primary we know: a replica just promoted, or a node that joined.
  std::size_t index = 0;
  const cluster_node* known = find(address);
  if (known) {
    index = static_cast<std::size_t>(known - nodes_.data());
    nodes_[index].role = node_role::primary;
  } else {
    index = add_node(cluster_node{{}, address, node_role::primary, true});
  }
  cluster_shard fresh;
  fresh.primary = index;
  shards_.push_back(std::move(fresh));
  owner_[slot] = static_cast<std::uint16_t>(shards_.size() - 1);
}

std::optional<detail::redirect> detail::redirect::parse(std::string_view message,
                                                        const node_address& from) {
  detail::redirect r;
  if (starts_with_word(message, "TRYAGAIN")) {
    r.what = kind::try_again;
    return r;
  }
  if (starts_with_word(message, "CLUSTERDOWN")) {
    r.what = kind::cluster_down;
    return r;
  }
  if (starts_with_word(message, "MOVED"))
    r.what = kind::moved;
  else if (starts_with_word(message, "ASK"))
    r.what = kind::ask;
  else
    return std::nullopt;
  // "MOVED <slot> <host>:<port>"
  const auto first = message.find(' ');
  const auto second = message.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const std::string_view slot = message.substr(first + 1, second - first - 1);
  unsigned value = 0;
  const auto [p, ec] = std::from_chars(slot.data(), slot.data() + slot.size(), value);
  if (ec != std::errc{} || p != slot.data() + slot.size() || value >= proto::slot_count)
    return std::nullopt;
  r.slot = static_cast<std::uint16_t>(value);
  auto target = node_address::parse(message.substr(second + 1));
  if (!target) return std::nullopt;
  if (target->host.empty()) target->host = from.host;
  r.target = std::move(*target);
  return r;
}

}  // namespace redcoro
