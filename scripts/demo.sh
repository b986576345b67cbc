#!/usr/bin/env bash
# Install what is missing, build ptb, run `ptb demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
build/runner/ptb demo "$@"
