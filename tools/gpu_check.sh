#!/usr/bin/env bash
# Runs the GPU test suite (test_gpu) on the GPU machine from a packed .device/ folder and prints a one-line
# summary last.
#
# On the build machine (CUDA toolkit, no GPU):
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
#   ninja -C build test_gpu && tools/scripts/pack_binaries.sh build/tests/test_gpu
# On the GPU machine, in the repository root (with .device/ carried along):
#   tools/gpu_check.sh [doctest options, e.g. -tc="gpu bmm*"]
# The full log goes to $OUT/gpu_check.log when OUT is set (the device tool's output folder), else
# /tmp/gpu_check.log. If the suite fails, every test case is run again alone with IRIS_SYNC_DEBUG=1, so that an
# asynchronous CUDA error (which poisons the rest of a process) is pinned to the case that caused it.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .device/env.sh ]; then
  echo "gpu_check: FAIL | no .device/env.sh here: pack test_gpu first (see the top of this script)"
  exit 2
fi
# shellcheck disable=SC1091
source .device/env.sh
if ! command -v test_gpu > /dev/null; then
  echo "gpu_check: FAIL | test_gpu is not in .device/bin"
  exit 2
fi
log_dir=${OUT:-/tmp}
log=$log_dir/gpu_check.log
device=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | head -1)
echo "device: ${device:-nvidia-smi unavailable}" | tee "$log"
start=$(date +%s)
timeout 480 test_gpu "$@" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
secs=$(($(date +%s) - start))
cases=$(grep -a '^\[doctest\] test cases:' "$log" | tail -1 | sed 's/^\[doctest\] //')
asserts=$(grep -a '^\[doctest\] assertions:' "$log" | tail -1 | sed 's/^\[doctest\] //')
skipped=$(grep -ac 'skipped: no CUDA device' "$log")
if [ "$rc" -ne 0 ]; then
  echo "=== each test case alone, IRIS_SYNC_DEBUG=1 (output in ${log}.cases) ===" | tee -a "$log"
  test_gpu --list-test-cases "$@" 2> /dev/null | grep -av '^\[doctest\]' | grep -av '^=*$' |
    while IFS= read -r name; do
      [ -z "$name" ] && continue
      echo "--- $name" >> "$log.cases"
      if IRIS_SYNC_DEBUG=1 timeout 120 test_gpu --test-case="$name" >> "$log.cases" 2>&1; then
        echo "  PASS  $name"
      else
        echo "  FAIL  $name"
      fi
    done | tee -a "$log"
fi
status=PASS
[ "$rc" -ne 0 ] && status="FAIL (exit $rc)"
[ "$skipped" -gt 0 ] && status="NO DEVICE ($skipped cases skipped)"
echo "gpu_check: $status | ${cases:-no doctest summary} | ${asserts:-} | ${secs}s | ${device:-unknown device}"
exit "$rc"
