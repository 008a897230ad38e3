// cluster_client's periodic topology refresh against a real cluster (3 primaries, 3
// replicas): what changes behind the client's back while it sends nothing shows in
// current_topology() within a few refresh intervals, without a request being redirected.

#include "support/cluster_helpers.hpp"
#include <redcoro/client/commands.hpp>
#include <redcoro/cluster/cluster_client.hpp>
#include <redcoro/proto/key_slot.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <string>
#include <type_traits>
#include <vector>

using namespace redcoro;
using namespace std::chrono_literals;
using asio::awaitable;
using asio::use_awaitable;
using test::run;
using test::sleep_for;

namespace {

// The port of the primary serving `slot` in the client's map, or 0.
std::uint16_t primary_in(const cluster_topology& t, int slot) {
  const std::size_t s = t.shard_of(static_cast<std::uint16_t>(slot));
  if (s == cluster_topology::no_shard) return 0;
  return t.nodes()[t.shards()[s].primary].address.port;
}

// The ports of the replicas of the shard serving `slot` in the client's map.
std::vector<std::uint16_t> replicas_in(const cluster_topology& t, int slot) {
  std::vector<std::uint16_t> out;
  const std::size_t s = t.shard_of(static_cast<std::uint16_t>(slot));
  if (s == cluster_topology::no_shard) return out;
  for (std::size_t r : t.shards()[s].replicas)
    out.push_back(t.nodes()[r].address.port);
  return out;
}

std::int64_t commandstat_calls(test::redis_server& s, std::string_view command) {
  const std::string info = s.cli({"INFO", "commandstats"});
  const std::string tag = "cmdstat_" + std::string(command) + ":calls=";
  const auto at = info.find(tag);
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + tag.size()));
}

// Waits until `seen()` holds, checking every 50 ms, at most `intervals` refresh intervals.
awaitable<bool> within_intervals(const cluster_config& cfg, int intervals,
                                 const std::function<bool()>& seen) {
  const auto until = std::chrono::steady_clock::now() + intervals * cfg.refresh_interval;
  while (!seen() && std::chrono::steady_clock::now() < until)
    co_await sleep_for(50ms);
  co_return seen();
}

// Runs a blocking call (the cluster fixture's waits) on a thread of its own, so that the
// client's io_context keeps running meanwhile: blocked for a second, the client would see a
// PING to a primary unanswered for that long, and read the topology by itself, whatever its
// refresh_interval.
template <class F>
awaitable<std::invoke_result_t<F>> off_thread(F f) {
  auto done = std::async(std::launch::async, std::move(f));
  while (done.wait_for(0s) != std::future_status::ready)
    co_await sleep_for(10ms);
  co_return done.get();
}

}  // namespace

TEST_CASE("cluster: the periodic refresh follows a slot move and a failover the client never saw",
          "[cluster][refresh]") {
  test::redis_cluster c;
  auto cfg = test::config_for(c);
  cfg.refresh_interval = 300ms;
  // Nothing of the client's doing is redirected (it sends nothing), and the map follows:
  // within 20 intervals (6 s; it takes one or two).
  constexpr int bound = 20;

  // An empty slot moves from `source` to `target`; the third primary is replaced by its
  // replica (CLUSTER FAILOVER).
  const int slot = proto::key_slot("{moved}");
  const std::uint16_t source = c.owner_of(slot);
  std::uint16_t target = 0, demoted = 0;
  std::string target_id;
  std::vector<std::uint16_t> primaries;
  for (const auto& n : c.nodes()) {
    if (!n.primary) continue;
    primaries.push_back(n.port);
    if (n.port == source) continue;
    if (!target) {
      target = n.port;
      target_id = n.id;
    } else if (!demoted) {
      demoted = n.port;
    }
  }
  REQUIRE(demoted != 0);
  const std::uint16_t promoted = c.replicas_of(demoted).at(0);
  std::string fo_key;  // a key the failed-over shard serves
  for (int i = 0; fo_key.empty(); ++i)
    if (c.owner_of(proto::key_slot("fo:" + std::to_string(i))) == demoted)
      fo_key = "fo:" + std::to_string(i);
  const int fo_slot = proto::key_slot(fo_key);

  test::with_running<cluster_client>(cfg, [&](cluster_client& cl) -> awaitable<void> {
    // (Waiting for the topology sends no request of ours.)
    co_await cl.async_wait_topology(-1ms, use_awaitable);
    CHECK(primary_in(cl.current_topology(), slot) == source);
    CHECK(primary_in(cl.current_topology(), fo_slot) == demoted);

    // 1. The slot moves: CLUSTER SETSLOT ... NODE on every primary, the target first.
    auto refreshes = cl.stats().refreshes;
    const std::string s = std::to_string(slot);
    c.server_on(target).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    for (std::uint16_t p : primaries)
      if (p != target) c.server_on(p).cli({"CLUSTER", "SETSLOT", s, "NODE", target_id});
    const bool agreed = co_await off_thread([&] { return c.wait_healthy(); });
    REQUIRE(agreed);  // every node agrees
    REQUIRE(c.owner_of(slot) == target);
    const bool moved_seen = co_await within_intervals(
        cfg, bound, [&] { return primary_in(cl.current_topology(), slot) == target; });
    CHECK(moved_seen);
    CHECK(cl.stats().moved == 0);
    CHECK(cl.stats().refreshes > refreshes);
    // A write to the slot goes straight to its new owner.
    const auto sets = commandstat_calls(c.server_on(target), "set");
    co_await run(cl, cmd::set("{moved}k", "v"));
    CHECK(commandstat_calls(c.server_on(target), "set") == sets + 1);
    CHECK(cl.stats().moved == 0);

    // 2. A failover, the client silent.
    refreshes = cl.stats().refreshes;
    CHECK(c.server_on(promoted).cli({"CLUSTER", "FAILOVER"}).find("OK") != std::string::npos);
    for (int i = 0; i < 100 && c.owner_of(fo_slot) != promoted; ++i)
      co_await sleep_for(100ms);
    REQUIRE(c.owner_of(fo_slot) == promoted);
    const bool healthy = co_await off_thread([&] { return c.wait_healthy(); });
    REQUIRE(healthy);
    const bool failover_seen = co_await within_intervals(cfg, bound, [&] {
      const auto& t = cl.current_topology();
      const auto r = replicas_in(t, fo_slot);
      return primary_in(t, fo_slot) == promoted &&
             std::find(r.begin(), r.end(), demoted) != r.end();
    });
    CHECK(failover_seen);
    CHECK(cl.stats().moved == 0);
    CHECK(cl.stats().refreshes > refreshes);
    // A write to the shard goes straight to the promoted replica.
    const auto fo_sets = commandstat_calls(c.server_on(promoted), "set");
    co_await run(cl, cmd::set(fo_key, "v"));
    CHECK(commandstat_calls(c.server_on(promoted), "set") == fo_sets + 1);
    CHECK(cl.stats().moved == 0);
  });
}
