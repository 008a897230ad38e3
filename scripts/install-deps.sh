#!/usr/bin/env bash
# Installs, from Debian 12 packages only, everything redcoro needs to build, test and
# benchmark. Nothing is downloaded from anywhere else. Safe to run again: when every package
# is present it does nothing.
set -euo pipefail

packages=(
  # toolchains: g++ 12 is the main compiler; clang 14 builds the sanitizer and fuzz tests
  build-essential g++ clang-14 lld-14 libclang-rt-14-dev clang-format-14
  cmake ninja-build ccache pkg-config git
  # libraries
  libboost1.81-dev libboost-system1.81-dev libssl-dev libspdlog-dev libfmt-dev
  libsimdjson-dev
  # Asio's io_uring backend (REDCORO_IO_URING), which CI builds the connection's tests with
  liburing-dev
  # the cache codec benchmark's baseline (compiled in Debian's Boost 1.81)
  libboost-json1.81-dev
  # tests and benchmarks (python3 extracts the README snippets that the build compiles)
  catch2 libbenchmark-dev libhiredis-dev python3
  # the rate limiter tests skew a client's clock (LD_PRELOAD) to show it plays no part
  libfaketime
  # servers and tools for the tests, the demo and the benchmarks
  redis-server redis-tools redis-sentinel openssl procps
  # the exporter's tests: promtool checks /metrics, a real Prometheus scrapes it
  prometheus
  # the gateway's browser test: headless Chromium driven by Selenium
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The packaged redis-server starts a system instance on port 6379; redcoro never uses it
# (tests and benchmarks start their own servers on free ports), so leave it as the system
# has it. Debian's prometheus package does the same with a system Prometheus on port 9090 where
# systemd runs; the tests start their own on a free port.
