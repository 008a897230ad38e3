#!/usr/bin/env bash
# The main job: install what is missing, build in release mode, then
#  1. the examples, each against a redis-server started for it (with_server);
#  2. the client benchmark (it starts its own server): redcoro next to hiredis and
#     redis-benchmark, a short run (REDCORO_BENCH_SCALE=1 REDCORO_BENCH_ROUNDS=5 for the
#     README's figures);
#  3. the protocol benchmark, a short run (REDCORO_BENCH_MEGABYTES=64 for the full one);
#  4. redcoro-bench --compare on a server it starts: redcoro, hiredis and redis-benchmark
#     with 50 connections and 16 commands per request, and its HTML report;
#  5. the pub/sub benchmark, a short run (it starts its own server): 1 and 100 subscribers,
#     redcoro next to hiredis (--rounds=3 --messages=200000 for the README's figures);
#  6. the cluster example, and redcoro-bench --cluster --compare, each against a cluster of
#     3 primaries and 3 replicas started for it (the cluster's cost per operation next to a
#     standalone server at the same requests in flight per socket);
#  7. the cache codec benchmark, a short run: JSON both ways next to Boost.JSON (--rounds=5
#     for the figures in cache/README.md);
#  8. the WebSocket gateway: Redis, two gateways, a load run of 1,000 clients in 50 rooms across
#     both (delivery, latency and the gateways' CPU per message), and the page's address
#     (scripts/gateway-demo.sh; REDCORO_GATEWAY_KEEP=1 keeps the gateways up afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

build=${REDCORO_BUILD_DIR:-$root/build/release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREDCORO_BUILD_TESTS=OFF
cmake --build "$build" --target hello_client threads game_loop cache_service user_service \
  work_queue leaderboard event_stream distributed_lock rate_limiter cluster_tour with_server \
  bench_client bench_proto bench_pubsub bench_cache redcoro-bench redcoro-gateway \
  redcoro-gateway-load

echo
echo "== demo: the examples against a redis-server started for them =="
# with_server starts a redis-server on a free loopback port, passes the port as the last
# argument, and stops the server afterwards.
for example in hello_client threads game_loop cache_service user_service work_queue \
  leaderboard event_stream distributed_lock rate_limiter; do
  "$build/with_server" "$build/examples/$example"
done

echo
echo "== client: GETs on one connection, next to hiredis and redis-benchmark =="
"$build/bench/bench_client" --rounds="${REDCORO_BENCH_ROUNDS:-3}" \
  --scale="${REDCORO_BENCH_SCALE:-0.25}"

echo
echo "== protocol: parsing a reply mix and building requests, next to hiredis =="
REDCORO_BENCH_MEGABYTES=${REDCORO_BENCH_MEGABYTES:-16} \
  "$build/bench/bench_proto" --rounds=3 --benchmark_min_time=0.2

echo
echo "== redcoro-bench: the load generator, compared with hiredis and redis-benchmark =="
"$build/bench/redcoro-bench" --compare --duration 2 --connections 50 --concurrency 1 \
  --pipeline 16 --no-live --html "$build/redcoro-bench.html" --json "$build/redcoro-bench.json"

echo
echo "== pub/sub: publish to receive, 1 and 100 subscribers, next to hiredis =="
"$build/bench/bench_pubsub" --rounds=1 --messages=50000

echo
echo "== cluster: the example and the load generator, each on a cluster started for it =="
"$build/with_server" --cluster "$build/examples/cluster_tour"
# 48 in flight over 3 primaries: 16 per socket, as on the standalone server it compares with.
"$build/bench/redcoro-bench" --cluster --compare --duration 2 --concurrency 48 --no-live

echo
echo "== cache: a described struct to JSON and back, next to Boost.JSON =="
"$build/bench/bench_cache" --rounds=3 --benchmark_min_time=0.2

echo
echo "== gateway: two WebSocket gateways on one Redis, 1,000 clients in 50 rooms =="
"$root/scripts/gateway-demo.sh" "$build"
