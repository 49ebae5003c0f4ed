#!/usr/bin/env bash
# Runs every gpu test case in its own process (so that one crash cannot hide the others), lists the
# failures with their messages, takes a host backtrace of the first crash with cuda-gdb, and times one strict
# f32 training step. For a GPU session after a failing tools/scripts/device_run.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp}
# shellcheck disable=SC1091
source .device/env.sh
test_gpu --list-test-cases 2> /dev/null | grep -av '^\[doctest\]' | grep -av '^=*$' > "$out/cases.txt"
pass=0 fail=0 crashed=""
: > "$out/fails.txt"
while IFS= read -r name; do
  [ -z "$name" ] && continue
  timeout 30 test_gpu --test-case="$name" > "$out/case.log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL (exit $rc): $name"
    { echo "=== $name (exit $rc)"; grep -a -A7 'ERROR\|FATAL\|THREW' "$out/case.log" | head -24; } >> "$out/fails.txt"
    [ $rc -ge 128 ] && [ -z "$crashed" ] && crashed=$name
  fi
done < "$out/cases.txt"
echo "gpu cases: $pass passed, $fail failed"
if [ -n "$crashed" ] && command -v cuda-gdb > /dev/null; then
  echo "=== backtrace of: $crashed"
  timeout 60 cuda-gdb -q -batch -ex run -ex bt --args "$(command -v test_gpu)" --test-case="$crashed" 2>&1 |
    grep -a -E '^#[0-9]+|signal|SIG' | head -30
fi
echo "=== strict f32 training step"
timeout 40 iris bench --config configs/sr3_bench_128.toml --mode train --precision f32 --batch 32 --steps 3 \
  --warmup 1 2>&1 | grep -a -E 'ms/step|img/s|^\{'
echo "=== failures"
head -c 6000 "$out/fails.txt"
