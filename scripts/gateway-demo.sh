#!/usr/bin/env bash
# The gateway demo (examples/gateway): a redis-server and two gateways on free loopback ports,
# a load run across both (redcoro-gateway-load: every message to every member of its room,
# once and in order; end-to-end latency; the gateways' CPU per delivered message), then the
# page's address. Everything it starts is stopped when it ends, unless
# REDCORO_GATEWAY_KEEP=1, which keeps the gateways up until Ctrl-C so a person can open the page.
#
#   scripts/gateway-demo.sh BUILD_DIR [load flags...]    (default load: 1000 clients, 50 rooms, 10 s)
set -euo pipefail
build=$1
shift
load_flags=("$@")
if ((${#load_flags[@]} == 0)); then
  load_flags=(--clients 1000 --rooms 50 --rate 1 --duration 10)
fi

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# A free port below 32768 (outside the ephemeral range).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize no >"$dir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

ports=()
metrics=()
for id in gw1 gw2; do
  "$build/examples/gateway/redcoro-gateway" --redis "redis://127.0.0.1:$redis_port" --id "$id" \
    --port 0 --metrics-port 0 >"$dir/$id.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "listening on" "$dir/$id.log" && break
    sleep 0.1
  done
  read -r _ _ port _ metric < <(grep "listening on" "$dir/$id.log")
  ports+=("$port")
  metrics+=("$metric")
done

echo "redis-server on 127.0.0.1:$redis_port; gateways on ${ports[0]} and ${ports[1]}" \
  "(metrics on ${metrics[0]} and ${metrics[1]})"
"$build/examples/gateway/redcoro-gateway-load" --gateway "${ports[0]}" --gateway "${ports[1]}" \
  --metrics "${metrics[0]}" --metrics "${metrics[1]}" "${load_flags[@]}"

echo
echo "The page: http://127.0.0.1:${ports[0]}/?user=alice&room=lobby and" \
  "http://127.0.0.1:${ports[1]}/?user=bob&room=lobby (/metrics and /health on" \
  "http://127.0.0.1:${metrics[0]}/metrics)"
if [[ ${REDCORO_GATEWAY_KEEP:-0} == 1 ]]; then
  echo "Gateways running; Ctrl-C stops them."
  wait
else
  echo "(REDCORO_GATEWAY_KEEP=1 keeps them running after the load run, to open the page)"
fi
