#!/usr/bin/env bash
# One prepared GPU session: the gpu test suite, `iris bench` on the benchmark U-Net in f32, tf32 and bf16
# (training) and bf16 sampling at batch 32 and 1, and the PyTorch baseline of the same step measured on the
# same card in the same run. Prints a short table last. Logs go to $OUT (the device tool's output folder) or
# /tmp. Run from the repository root with a packed .device/ (../shared/device/pack.sh build/bin/iris
# build/tests/test_gpu).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp}
# shellcheck disable=SC1091
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
cfg=configs/sr3_bench_128.toml
results=$out/results.jsonl
: > "$results"

run() {  # run LABEL TIMEOUT COMMAND...: logs to $out/LABEL.log, appends the last JSON line to results
  local label=$1 limit=$2
  shift 2
  echo "=== $label: $*"
  timeout "$limit" "$@" > "$out/$label.log" 2>&1
  local rc=$?
  tail -n 4 "$out/$label.log"
  local json
  json=$(grep -a '^{' "$out/$label.log" | tail -1)
  if [ -n "$json" ]; then
    echo "{\"label\": \"$label\", \"rc\": $rc, \"result\": $json}" >> "$results"
  else
    echo "{\"label\": \"$label\", \"rc\": $rc}" >> "$results"
  fi
}

# cuDNN algorithms chosen by measurement (as PyTorch's cudnn.benchmark = True below), not by heuristics:
# train.conv_search = find for iris bench, and IRIS_CUDNN_FIND=1 for the gpu suite (every convolution of
# every case planned by Find; the suite has its own find-mode case too).
export IRIS_CUDNN_FIND=1

# 1. the headline: bf16 training, Iris then PyTorch (SR3_BENCH.md: batch 32, warm-up 5, median of 20)
run iris_train_bf16 45 iris bench --config $cfg --set train.conv_search=find --mode train --precision bf16 --batch 32 --steps 20 --warmup 5
run torch_train_bf16 70 python3 tools/scripts/bench_pytorch.py --mode train --precision bf16 --batch 32

# 2. correctness: every CUDA op against the CPU
start=$(date +%s)
timeout 120 test_gpu > "$out/test_gpu.log" 2>&1
echo "test_gpu exit $? in $(( $(date +%s) - start ))s"
grep -a -E '^\[doctest\] (test cases|assertions)' "$out/test_gpu.log"
grep -a -B3 -A8 'ERROR\|FATAL\|THREW' "$out/test_gpu.log" | head -80

# 3. the other precisions and sampling
run iris_train_tf32 40 iris bench --config $cfg --set train.conv_search=find --mode train --precision tf32 --batch 32 --steps 10 --warmup 3
run iris_train_bf16_heuristic 40 iris bench --config $cfg --mode train --precision bf16 --batch 32 --steps 10 --warmup 3
run iris_train_f32 50 iris bench --config $cfg --set train.conv_search=find --mode train --precision f32 --batch 32 --steps 10 --warmup 3
run iris_sample_bf16_b32 25 iris bench --config $cfg --set train.conv_search=find --mode sample --precision bf16 --batch 32 --steps 20 --warmup 5
run iris_sample_bf16_b1 25 iris bench --config $cfg --set train.conv_search=find --mode sample --precision bf16 --batch 1 --steps 20 --warmup 5
run torch_train_tf32 60 python3 tools/scripts/bench_pytorch.py --mode train --precision tf32 --batch 32 --steps 10 --warmup 3
run torch_sample_bf16_b32 45 python3 tools/scripts/bench_pytorch.py --mode sample --precision bf16 --batch 32

echo "=== summary ($(cat "$out/device.txt"))"
python3 - "$results" <<'PY'
import json, sys
print(f"{'run':24} {'rc':>3} {'ms/step':>9} {'img/s':>8} {'TFLOP/s':>8} {'peak GiB':>9}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    x = r.get("result", {})
    ms = x.get("step_ms"); ips = x.get("img_per_s"); tf = x.get("tflops"); pk = x.get("peak_bytes")
    f = lambda v, fmt: (fmt % v) if v is not None else "-"
    print(f"{r['label']:24} {r['rc']:>3} {f(ms,'%.2f'):>9} {f(ips,'%.1f'):>8} {f(tf,'%.1f'):>8} "
          f"{f(pk/2**30 if pk else None,'%.2f'):>9}")
PY
