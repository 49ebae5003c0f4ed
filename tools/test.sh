#!/usr/bin/env bash
# Installs what Iris needs, builds it and runs every test through ctest (labels cpu, gpu, mpi, experiment,
# interop; gpu tests report themselves skipped on a machine without a GPU, interop tests without their Python
# clients). Usage: tools/test.sh [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
# The interop tests' Python clients (TensorBoard, safetensors); they skip, saying why, if this fails.
tools/scripts/interop_venv.sh build || echo "test.sh: no interop environment; the interop tests will be skipped"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 1200 "$@"
