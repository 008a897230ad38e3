#!/usr/bin/env bash
# Every test: install what is missing, then
#  1. g++ build with warnings as errors: all tests and examples run, every benchmark and every
#     README snippet built (test/snippets; benchmarks are not run);
#  2. the connection, pub/sub, cluster and handle tests again, g++ with Asio's io_uring
#     backend (REDCORO_IO_URING);
#  3. clang build with warnings as errors under ASan+UBSan: the unit and integration tests, the
#     examples, the README snippets, and the fuzzers for a bounded time;
#  4. cmake --install of the g++ build, then a project outside the tree that uses
#     find_package(redcoro), built with g++ and with clang++ and run;
#  5. clang-format over every source file.
# Stops at the first failure. REDCORO_FUZZ_SECONDS sets the fuzzing time (default 60).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"

jobs=$(nproc)
out=${REDCORO_BUILD_DIR:-$root/build}
# Each step says how long the run has taken so far (HACKING.md has the figures).
step() { printf '\n== %s (%d:%02d) ==\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

step "g++: build (warnings are errors) and test"
# -g1: line tables and function names, enough for backtraces, perf and callgrind. Full debug
# information (-g) makes g++ 12 take 40 % longer on this code, for variables nobody inspects
# in CI; the generated code is the same. Configure a tree of your own with -g for gdb.
gcc_config=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_CXX_COMPILER=g++ -DREDCORO_WERROR=ON)
cmake -S "$root" -B "$out/gcc" "${gcc_config[@]}"
cmake --build "$out/gcc"
ctest --test-dir "$out/gcc" --output-on-failure -j "$jobs"

step "g++ with Asio's io_uring backend (REDCORO_IO_URING): the I/O tests"
cmake -S "$root" -B "$out/uring" "${gcc_config[@]}" -DREDCORO_IO_URING=ON
uring_tests=(test_client test_pubsub test_cluster test_pubsub_cluster test_connect)
cmake --build "$out/uring" --target "${uring_tests[@]}"
ctest --test-dir "$out/uring" --output-on-failure -j "$jobs" \
  -R "^($(IFS='|'; echo "${uring_tests[*]}")):"

step "clang: ASan+UBSan build (warnings are errors), tests and fuzzing"
cmake -S "$root" -B "$out/asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_COMPILER=clang++-14 -DREDCORO_WERROR=ON -DREDCORO_SANITIZE=address,undefined \
  -DREDCORO_FUZZ=ON -DREDCORO_BUILD_BENCH=OFF \
  -DREDCORO_FUZZ_SECONDS="${REDCORO_FUZZ_SECONDS:-60}"
cmake --build "$out/asan"
ctest --test-dir "$out/asan" --output-on-failure -j "$jobs"

step "install the g++ build; a project that uses find_package(redcoro), with g++ and clang++"
prefix="$out/install-prefix"
rm -rf "$prefix" "$out/consumer" "$out/consumer-gcc" "$out/consumer-clang"
cmake --install "$out/gcc" --prefix "$prefix"
for compiler in gcc:g++ clang:clang++-14; do
  consumer="$out/consumer-${compiler%%:*}"
  cmake -S "$root/test/install" -B "$consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_CXX_COMPILER="${compiler#*:}"
  cmake --build "$consumer"
  "$consumer/consumer"
done

step "clang-format"
cd "$root"
git ls-files '*.hpp' '*.cpp' '*.ipp' | xargs clang-format-14 --dry-run --Werror

step "all tests passed"
