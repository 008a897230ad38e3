#pragma once

#include <redcoro/proto/key_slot.hpp>
#include <redcoro/proto/value.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace redcoro {

/// Where a node listens.
struct node_address {
  std::string host;
  std::uint16_t port = 0;

  /// "host:port" ("[::1]:7000" for IPv6 hosts).
  std::string to_string() const;
  /// Parses "host:port" as MOVED and ASK write it; nullopt when it is not one.
  static std::optional<node_address> parse(std::string_view text);

  friend auto operator<=>(const node_address&, const node_address&) = default;
};

enum class node_role : std::uint8_t { primary, replica };

struct cluster_node {
  std::string id;  ///< the node's cluster id (empty when the server did not say)
  node_address address;
  node_role role = node_role::primary;
  /// False while the cluster marks it failed or it is loading its data: no reads go to it.
  bool healthy = true;
};

/// A primary, its replicas, and the slots it serves.
struct cluster_shard {
  std::size_t primary = 0;            ///< index in cluster_topology::nodes()
  std::vector<std::size_t> replicas;  ///< indexes in cluster_topology::nodes()
  std::vector<std::pair<std::uint16_t, std::uint16_t>> slots;  ///< inclusive ranges
};

/// The cluster as one node described it, sans-I/O: its nodes, its shards and the owner of
/// every slot.
class cluster_topology {
 public:
  static constexpr std::size_t no_shard = static_cast<std::size_t>(-1);

  cluster_topology();

  /// Reads the reply to `CLUSTER SHARDS` (Redis 7). `tls` picks the nodes' `tls-port`.
  /// `asked` is the host the reply came from: a node that does not know its own address (a
  /// cluster of one node that never met another) leaves it empty. Fails with
  /// proto::error::type_mismatch when the reply does not look like one.
  static std::error_code from_shards(const proto::value& reply, cluster_topology& out,
                                     bool tls = false, std::string_view asked = {});
  /// Reads the reply to `CLUSTER SLOTS`, which older servers have.
  static std::error_code from_slots(const proto::value& reply, cluster_topology& out,
                                    std::string_view asked = {});

  const std::vector<cluster_node>& nodes() const noexcept { return nodes_; }
  const std::vector<cluster_shard>& shards() const noexcept { return shards_; }

  /// The shard serving `slot`, or no_shard.
  std::size_t shard_of(std::uint16_t slot) const noexcept {
    const std::uint16_t s = owner_[slot];
    return s == no_owner ? no_shard : s;
  }
  /// The address of each shard's primary.
  std::vector<node_address> primaries() const;
  /// True when every slot has an owner.
  bool covers_all_slots() const noexcept;
  /// The node at `address`, or nullptr.
  const cluster_node* find(const node_address& address) const noexcept;

  /// What a `MOVED slot address` reply says: `slot` is now served by `address` (a node not
  /// seen before becomes the primary of a new shard) until the next refresh tells the rest.
  void move_slot(std::uint16_t slot, const node_address& address);

 private:
  std::size_t add_node(cluster_node n);
  void assign(std::size_t shard, std::uint16_t first, std::uint16_t last);

  std::vector<cluster_node> nodes_;
  std::vector<cluster_shard> shards_;
  // proto::slot_count entries, 2 bytes each: the table is looked up on every request, and at
  // 32 KiB it stays in cache where 8-byte entries would not.
  static constexpr std::uint16_t no_owner = 0xffff;
  std::vector<std::uint16_t> owner_;
};

namespace detail {

/// A cluster redirection or transient refusal, read from an error reply.
struct redirect {
  enum class kind : std::uint8_t {
    moved,        ///< the slot lives elsewhere now: update the map, go there
    ask,          ///< this key is being migrated: ask the target once, map unchanged
    try_again,    ///< TRYAGAIN: multi-key command during a migration, retry later
    cluster_down  ///< CLUSTERDOWN: the cluster cannot serve the slot now, retry later
  };
  kind what = kind::moved;
  std::uint16_t slot = 0;
  node_address target;  // moved and ask

  /// The redirect an error reply's text carries, or nullopt when it is an ordinary error.
  /// `from` fills in the host when the server left it empty (`MOVED 3999 :6381`, a node
  /// whose endpoint is unknown).
  static std::optional<redirect> parse(std::string_view message, const node_address& from = {});
};

}  // namespace detail

}  // namespace redcoro
