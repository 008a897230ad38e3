#!/usr/bin/env bash
# The main job: install what is missing, build in release mode and run the protocol
# benchmark (a short run; set REDCORO_BENCH_MEGABYTES for a longer one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

build=${REDCORO_BUILD_DIR:-$root/build/release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREDCORO_BUILD_TESTS=OFF
cmake --build "$build" --target bench_proto

echo
echo "== protocol: parsing a reply mix and building requests, next to hiredis =="
REDCORO_BENCH_MEGABYTES=${REDCORO_BENCH_MEGABYTES:-16} \
  "$build/bench/bench_proto" --rounds=3 --benchmark_min_time=0.2
