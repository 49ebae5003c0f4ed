#!/usr/bin/env bash
# Iris against PyTorch eager and torch.compile on one card in one run, side by side (issue 15): the
# benchmark U-Net (tools/bench/SR3_BENCH.md) in bf16, the sampling step at batch 32 and batch 1 and the
# training step at batch 32, each by `iris bench` (sampling also with --graphs) and by tools/scripts/bench_pytorch.py eager, compiled
# ("default") and compiled with CUDA graphs ("reduce-overhead"). Medians of timed steps; compilation happens in
# PyTorch's untimed warm-up (its wall time is the compile_s column). Prints a table last; logs and the JSON
# lines go to $OUT (the device tool's output folder) or /tmp. Run from the repository root with a packed
# .device/ (tools/scripts/device_pack.sh), in one device call per phase if one call cannot hold them all:
#
#   tools/scripts/device_compare.sh [sample32] [sample1] [train]     (no argument: all three)
#
# Compiling the 97.8M-parameter U-Net takes minutes (the training step's forward and backward most), so each
# PyTorch run has a generous limit and the phases fit one 10-minute device call each; a run that overruns
# shows as rc 124 with no figures. The whole call keeps to IRIS_COMPARE_BUDGET_S seconds (default 570): each
# run's limit is cut to what is left, and a run with under 20 s left is not started (rc "skip"), so the table
# always prints. Each run's full log stays in /tmp/iris-compare (the device tool brings back 8 files at most);
# $OUT gets compare.jsonl, device.txt and compare.log (every run's last 30 lines). The inductor cache (TORCHINDUCTOR_CACHE_DIR, default under /tmp) is shared
# by the runs of one machine, so "reduce-overhead" reuses what "default" compiled.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
out=${OUT:-/tmp}
# shellcheck disable=SC1091
[ -f .device/env.sh ] && source .device/env.sh
iris=$(command -v iris || echo build/bin/iris)
python=${IRIS_PYTHON:-python3}
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/iris-inductor-cache}
export IRIS_CUDNN_FIND=1  # cuDNN algorithms by measurement on both sides (PyTorch: cudnn.benchmark)
cfg=configs/sr3_bench_128.toml
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(sample32 sample1 train)
results=$out/compare.jsonl
logs=/tmp/iris-compare
mkdir -p "$logs"
: > "$results"
: > "$out/compare.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null | tee "$out/device.txt"

budget=${IRIS_COMPARE_BUDGET_S:-570}

run() {  # run CASE IMPL TIMEOUT COMMAND...: logs to $logs/CASE-IMPL.log, appends its last JSON line
  local case=$1 impl=$2 limit=$3
  shift 3
  local left=$((budget - SECONDS - 10))
  if [ "$left" -lt 20 ]; then
    echo "=== $case $impl: not run, $left s of the budget left"
    echo "{\"case\": \"$case\", \"impl\": \"$impl\", \"rc\": \"skip\", \"result\": null}" >> "$results"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $case $impl (limit $limit s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" > "$logs/$case-$impl.log" 2>&1
  local rc=$?
  { echo "=== $case $impl: rc $rc"; tail -n 30 "$logs/$case-$impl.log"; } >> "$out/compare.log"
  local json
  json=$(grep -a '^{' "$logs/$case-$impl.log" | tail -1)
  echo "    rc $rc in $((SECONDS - start)) s"
  echo "{\"case\": \"$case\", \"impl\": \"$impl\", \"rc\": $rc, \"wall_s\": $((SECONDS - start)), \"result\": ${json:-null}}" \
    >> "$results"
}

compare() {  # compare CASE MODE BATCH IRIS_TIMEOUT EAGER_TIMEOUT COMPILE_TIMEOUT
  local case=$1 mode=$2 batch=$3
  run "$case" iris "$4" "$iris" bench --config $cfg --set train.conv_search=find --mode "$mode" --precision bf16 \
    --batch "$batch" --steps 20 --warmup 5
  # Sampling also through a captured CUDA graph (iris bench --graphs; never run on a GPU before issue 15's
  # first GPU session: a failed capture shows in its log and as "failed" in the JSON).
  [ "$mode" = sample ] && run "$case" iris-graphs "$4" "$iris" bench --config $cfg --set train.conv_search=find \
    --mode sample --precision bf16 --batch "$batch" --steps 20 --warmup 5 --graphs
  local torch=("$python" tools/scripts/bench_pytorch.py --mode "$mode" --precision bf16 --batch "$batch" --steps 20)
  run "$case" eager "$5" "${torch[@]}" --warmup 5
  run "$case" compiled "$6" "${torch[@]}" --warmup 5 --compile default
  run "$case" graphs "$6" "${torch[@]}" --warmup 5 --compile reduce-overhead
}

for phase in "${phases[@]}"; do
  case $phase in
    sample32) compare sample32 sample 32 40 60 220 ;;
    sample1) compare sample1 sample 1 40 60 200 ;;
    train) compare train32 train 32 60 90 330 ;;
    *) echo "device_compare.sh: unknown phase '$phase' (sample32, sample1, train)" >&2; exit 2 ;;
  esac
done

echo "=== Iris vs PyTorch eager vs torch.compile ($(cat "$out/device.txt" 2> /dev/null)); bf16, medians"
"$python" - "$results" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault(r["case"], {})[r["impl"]] = r
impls = [("iris", "Iris"), ("iris-graphs", "Iris+graphs"), ("eager", "eager"), ("compiled", "compile"), ("graphs", "compile+graphs")]
print(f"{'case':9} {'impl':15} {'rc':>3} {'ms/step':>9} {'img/s':>9} {'peak GiB':>9} {'compile_s':>9} {'Iris speed':>10}")
for case, by in rows.items():
    iris = (by.get("iris") or {}).get("result") or {}
    for key, name in impls:
        r = by.get(key)
        if r is None:
            continue
        x = r.get("result") or {}
        ms, ips, pk, cs = x.get("step_ms"), x.get("img_per_s"), x.get("peak_bytes"), x.get("compile_s")
        f = lambda v, fmt: (fmt % v) if v is not None else "-"
        # Iris's speed relative to this implementation: its ms / Iris's ms (above 1: Iris is faster).
        speed = ms / iris["step_ms"] if ms and iris.get("step_ms") and key != "iris" else None
        if key == "iris-graphs" and ms and iris.get("step_ms"):
            speed = iris["step_ms"] / ms  # the graphs' speed-up over Iris eager
        print(f"{case:9} {name:15} {r['rc']:>3} {f(ms, '%.2f'):>9} {f(ips, '%.1f'):>9} "
              f"{f(pk / 2**30 if pk else None, '%.2f'):>9} {f(cs, '%.1f'):>9} {f(speed, '%.2fx'):>10}")
PY
