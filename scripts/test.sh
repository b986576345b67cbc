#!/usr/bin/env bash
# Install what is missing, build ptb twice (warnings as errors; ASan+UBSan), run every test in
# both builds: unit tests, integration tests, fuzz corpora. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== build (warnings as errors)"
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPTB_WERROR=ON -DPTB_FUZZ=OFF >/dev/null
cmake --build build-ci -j"$jobs"
echo "== tests"
(cd build-ci && ctest --output-on-failure -j"$jobs")

echo "== build (ASan + UBSan, clang, libFuzzer targets)"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPTB_WERROR=ON -DPTB_SANITIZE=ON \
  -DPTB_FUZZ=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs" -LE "bench|slow")
