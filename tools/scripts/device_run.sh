#!/usr/bin/env bash
# One prepared GPU session: the gpu test suite, `iris bench` on the benchmark U-Net in f32, tf32 and bf16
# (training) and bf16 sampling at batch 32 and 1, and the PyTorch baseline of the same step measured on the
# same card in the same run. Prints a short table last. Logs go to $OUT (the device tool's output folder) or
# /tmp. Run from the repository root with a packed .device/ (tools/scripts/pack_binaries.sh build/bin/iris
# build/tests/test_gpu). Iris against torch.compile (default and with CUDA graphs) side by side is
# tools/scripts/device_compare.sh, a device call of its own (compiling the U-Net takes minutes).
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
  mark "$label"
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

# The card's clocks, power and clock-event reasons every 200 ms through the run (bf16 step times varied by
# 1.5x within one process on an H200; this tells whether the clocks moved with them). Older drivers name the
# reasons field clocks_throttle_reasons.
smi_fields=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu
for reasons in clocks_event_reasons.active clocks_throttle_reasons.active ""; do
  nvidia-smi --query-gpu=$smi_fields${reasons:+,$reasons} --format=csv,noheader > /dev/null 2>&1 && break
done
: > "$out/smi.csv"  # appended to by the sampler and by mark(), both with O_APPEND
nvidia-smi --query-gpu=$smi_fields${reasons:+,$reasons} --format=csv,noheader,nounits -lms 200 \
  >> "$out/smi.csv" 2> /dev/null &
smi_pid=$!
trap 'kill $smi_pid 2> /dev/null' EXIT
mark() { echo "$(date '+%Y/%m/%d %H:%M:%S'), mark, $1" >> "$out/smi.csv"; }

# cuDNN algorithms chosen by measurement (as PyTorch's cudnn.benchmark = True below), not by heuristics:
# train.conv_search = find for iris bench, and IRIS_CUDNN_FIND=1 for the gpu suite (every convolution of
# every case planned by Find; the suite has its own find-mode case too).
export IRIS_CUDNN_FIND=1

# 1. the headline: bf16 training, Iris then PyTorch (tools/bench/SR3_BENCH.md: batch 32, warm-up 5,
#    median of 20)
run iris_train_bf16 45 iris bench --config $cfg --set train.conv_search=find --mode train --precision bf16 --batch 32 --steps 20 --warmup 5
run torch_train_bf16 70 python3 tools/scripts/bench_pytorch.py --mode train --precision bf16 --batch 32

# 2. correctness: every CUDA op against the CPU
mark test_gpu
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
print(f"{'run':28} {'rc':>3} {'ms/step':>9} {'min-max':>13} {'host ms':>8} {'img/s':>8} {'TFLOP/s':>8} "
      f"{'peak GiB':>9}")
for line in open(sys.argv[1]):
    r = json.loads(line)
    x = r.get("result", {})
    ms = x.get("step_ms"); ips = x.get("img_per_s"); tf = x.get("tflops"); pk = x.get("peak_bytes")
    steps = x.get("steps_ms"); host = x.get("host_ms")
    f = lambda v, fmt: (fmt % v) if v is not None else "-"
    span = f"{min(steps):.1f}-{max(steps):.1f}" if steps else "-"
    print(f"{r['label']:28} {r['rc']:>3} {f(ms,'%.2f'):>9} {span:>13} {f(host,'%.2f'):>8} {f(ips,'%.1f'):>8} "
          f"{f(tf,'%.1f'):>8} {f(pk/2**30 if pk else None,'%.2f'):>9}")
PY
kill $smi_pid 2> /dev/null
# SM clock and power per run, from the samples between its mark and the next.
python3 - "$out/smi.csv" <<'PY'
import sys, statistics
runs, cur = {}, None
for line in open(sys.argv[1]):
    f = [x.strip() for x in line.split(",")]
    if len(f) >= 3 and f[1] == "mark":
        cur = f[2]; runs[cur] = []
    elif cur and len(f) >= 4:
        try: runs[cur].append((float(f[1]), float(f[3]), ",".join(f[5:]) if len(f) > 5 else ""))
        except ValueError: pass
print(f"{'run':28} {'SM MHz min/median/max':>22} {'W max':>6}  clock-event reasons seen")
for name, s in runs.items():
    if not s: continue
    sm = [x[0] for x in s]
    print(f"{name:28} {min(sm):6.0f}/{statistics.median(sm):6.0f}/{max(sm):6.0f} {max(x[1] for x in s):6.0f}  "
          f"{' '.join(sorted(set(x[2] for x in s)))}")
PY
