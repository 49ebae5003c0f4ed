#!/usr/bin/env bash
# Installs what Iris needs, builds it and runs every test through ctest (labels cpu, gpu, mpi, experiment; gpu tests
# report themselves skipped on a machine without a GPU). Usage: tools/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 1200 "$@"
