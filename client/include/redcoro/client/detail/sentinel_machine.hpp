#pragma once

// What sentinel_client makes of the sentinels' replies, without sockets: the address of the
// primary, the choice of a replica, +switch-master messages, the order in which sentinels are
// asked, and the verdict when none gave an address. The Asio side (client/src/sentinel.cpp)
// only sends the commands and passes the replies here.

#include <redcoro/client/endpoint.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace redcoro::detail {

/// One entry of `SENTINEL REPLICAS <name>` or `SENTINEL SENTINELS <name>`: what the client
/// uses of it.
struct sentinel_instance {
  endpoint address;
  /// The `flags` field split at commas: "slave", "s_down", "o_down", "disconnected"...
  std::vector<std::string> flags;
  /// `master-link-status` (replicas): "ok" or "err"; empty when absent.
  std::string link_status;

  bool has_flag(std::string_view flag) const noexcept;
  /// Not down (s_down, o_down) or disconnected in the sentinel's view, and, for a replica that
  /// reports its link to the primary, replicating ("ok").
  bool healthy() const noexcept;
};

/// What one sentinel said to a query.
struct sentinel_answer {
  enum class kind : std::uint8_t {
    address,       ///< `address` is where to connect
    unknown_name,  ///< it does not monitor a primary of that name
    no_replica,    ///< it knows the primary, but no healthy replica of it
    failed,        ///< no usable answer: `detail` says why (unreachable, an error reply...)
  };
  kind what = kind::failed;
  endpoint address;
  std::string detail;
};

/// `SENTINEL GET-MASTER-ADDR-BY-NAME <name>`: [ip, port], or null for a name it does not know.
sentinel_answer read_primary_address(const proto::result<proto::value>& reply);

/// `SENTINEL REPLICAS` / `SENTINEL SENTINELS`: one map per instance (RESP3), or one flat
/// field/value array (RESP2). Entries without a usable ip and port are skipped; nullopt when
/// the reply is not a list.
std::optional<std::vector<sentinel_instance>> read_instances(const proto::value& reply);

/// `SENTINEL REPLICAS <name>`: the healthy replicas, and of those the `turn`-th (modulo their
/// number), so that successive connections spread over them. An error reply naming no such
/// master is kind::unknown_name; a list without a healthy replica kind::no_replica.
sentinel_answer choose_replica(const proto::result<proto::value>& reply, std::size_t turn);

/// A `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>` event.
struct switch_master {
  endpoint from, to;
};
/// The event a push carries, when it is a +switch-master message about `name` (a "message"
/// or "pmessage" push on channel +switch-master); nullopt for anything else.
std::optional<switch_master> read_switch_master(const proto::value& push, std::string_view name);
/// True for the confirmation of a SUBSCRIBE to `channel`.
bool is_subscribe_confirmation(const proto::value& push, std::string_view channel);

/// The sentinels, in the order they are asked: the last one that answered first, the ones
/// found through `SENTINEL SENTINELS` appended.
class sentinel_list {
 public:
  explicit sentinel_list(std::vector<endpoint> initial);
  const std::vector<endpoint>& order() const noexcept { return list_; }
  /// It answered: first from now on.
  void answered(const endpoint& s);
  /// Appended unless already known; true when it was new.
  bool add(const endpoint& s);

 private:
  std::vector<endpoint> list_;
};

/// One round of asking the sentinels in turn, until one gives an address: what the others
/// said, and what to report when none did.
class resolve_round {
 public:
  /// An answer other than an address (kind::address is ignored).
  void record(const endpoint& sentinel, const sentinel_answer& a);
  /// When none gave an address: error::no_healthy_replica if one knew the primary but no
  /// healthy replica; else error::unknown_primary_name if one answered that it does not know
  /// the name (and none knew it); else error::no_sentinel_reachable.
  std::error_code verdict() const;
  /// "host:port: what it said; ..." for the log.
  std::string summary() const;

 private:
  bool unknown_ = false, no_replica_ = false;
  std::string summary_;
};

}  // namespace redcoro::detail
