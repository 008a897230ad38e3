#pragma once

#include <redcoro/cluster/detail/router.hpp>
#include <redcoro/cluster/topology.hpp>
#include <redcoro/proto/value.hpp>

#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redcoro::detail {

/// How one attempt of one part of a request went, as its driver saw it.
struct attempt_result {
  enum class kind : std::uint8_t {
    replied,     ///< every reply is in, none is a redirect
    redirected,  ///< a reply was MOVED, ASK, TRYAGAIN or CLUSTERDOWN (`redirect`)
    not_sent,    ///< the node connection never wrote it (not connected, or closed)
    lost,        ///< written, then the connection failed: it may or may not have run
    no_node,     ///< no node serves the slot now
    failed,      ///< another error (timeout, the client closed, malformed replies)
  };
  kind what = kind::replied;
  std::optional<redirect> r;     ///< redirected: what the reply said
  boost::system::error_code ec;  ///< lost, failed: the node connection's error
};

/// The retry policy of one part of a request, sans-I/O: after each attempt it says whether
/// the part is done, where the next attempt goes (and after how long, and whether ASKING
/// goes first), or how it ends. It owns the attempt budget (max_redirects) and the backoff
/// of retries. The cluster client drives one per part; the cluster subscriber one per slot
/// of shard channels.
class redirect_machine {
 public:
  struct policy {
    std::size_t max_redirects = 16;
    std::chrono::milliseconds retry_delay{20};
    std::chrono::milliseconds max_delay{1000};
  };

  enum class step : std::uint8_t {
    send,     ///< send (again): to `to` when set, else to the slot's node per the topology
    done,     ///< the replies are final (errors that are not redirects included)
    fail,     ///< the part, and its request, end with `ec`
    give_up,  ///< too many redirects: the reply that redirected last is final, renamed
              ///< by too_many_redirects()
  };

  struct action {
    step what = step::send;
    std::optional<node_address> to;      ///< send: ASK's or MOVED's target
    bool asking = false;                 ///< send: ASKING first (after ASK)
    std::chrono::milliseconds delay{0};  ///< send: wait this long first
    bool refresh = false;                ///< read the topology again (rate-limited by the client)
    std::optional<redirect> moved;       ///< MOVED: record the slot's new owner in the topology
    bool retry = false;                  ///< counts as a retry (TRYAGAIN, CLUSTERDOWN, no node...)
    boost::system::error_code ec;        ///< fail: why
  };

  /// `readonly`: every command of the part only reads, so that a part lost with its
  /// connection can be sent again (to another node) without running anything twice.
  redirect_machine(policy p, bool readonly) : policy_(p), readonly_(readonly) {}

  /// What to do after attempt `r`.
  action next(const attempt_result& r);

  /// Redirects and retries counted against max_redirects so far.
  std::size_t attempts() const noexcept { return attempts_; }

  /// The text that replaces a redirect reply when the budget is spent.
  static std::string too_many_redirects(std::size_t max_redirects, std::string_view last);

 private:
  std::chrono::milliseconds backoff() noexcept;

  policy policy_;
  bool readonly_;
  std::size_t attempts_ = 0;
  std::size_t waits_ = 0;  // consecutive waits: the delay doubles with each
};

/// Puts the replies of a request's parts back in the caller's order, merging what was split
/// (MGET by key, DEL summed, KEYS concatenated, MSET's first reply) and what went to every
/// primary. An error reply of any part wins over the others of its command. Sans-I/O.
class reply_merge {
 public:
  /// `total`: the caller's commands; `commands`: the plan's, one per caller's command.
  reply_merge(std::size_t total, const std::vector<command_plan>& commands);

  /// The replies of `p` (one per command it holds, or one merged reply for a split one).
  void add(const part& p, std::vector<proto::value> replies);

  /// The reply to caller's command `i`, once every part is in; null when nothing answered it.
  const std::optional<proto::value>& reply(std::size_t i) const noexcept { return finals_[i]; }

 private:
  void merge_into(std::optional<proto::value>& out, const command_plan& how, const part& p,
                  proto::value v);
  const std::vector<command_plan>* commands_;
  std::vector<std::optional<proto::value>> finals_;
};

}  // namespace redcoro::detail
