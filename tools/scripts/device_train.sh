#!/usr/bin/env bash
# `iris train`, `sample`, `eval` and `ckpt diff` on the GPU machine, from a packed .device/
# (tools/scripts/device_pack.sh): the paths the benchmark and the gpu tests do not cover (the loader feeding a
# GPU, EMA and checkpoints of GPU tensors, resume, sampling and evaluation). Prints a short table last; logs,
# checkpoints' metrics and PNG grids go to $OUT (the device tool's output folder) or /tmp/iris-device-train.
#   1. the demo's SR3 (configs/fmnist_sr3_7to28.toml) for IRIS_TRAIN_MINUTES (default 1.5) on 4,096 images,
#      then 64 test images sampled (100 DDPM steps) and scored against bicubic upsampling;
#   2. exact resume on the GPU: 40 steps straight vs 20 + 20 in two processes, compared by `iris ckpt diff`
#      (GPU kernels with atomics may make this differ in the last bits; the diff says by how much);
#   3. bf16 autocast training of the same model for 200 steps (loss must stay finite);
#   4. the benchmark U-Net's bf16 training step with and without activation checkpointing (time and peak
#      memory: the cost and the saving of model.checkpoint_res_blocks on this card);
#   5. iris cas (the classifier of the Classification Accuracy Score) on the GPU.
# IRIS_DEVICE (default cuda) lets the script itself be tried on a CPU machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/iris-device-train}
mkdir -p "$out"
# shellcheck disable=SC1091
[ -f .device/env.sh ] && source .device/env.sh
iris=$(command -v iris || echo build/bin/iris)
device=${IRIS_DEVICE:-cuda}
data=${IRIS_DEVICE_DATA:-.device/data/fmnist}
cfg=configs/fmnist_sr3_7to28.toml
common=(--config "$cfg" --device "$device" --set "data.dir=$data/train" --set "data.val_dir=$data/test")
summary=$out/summary.txt
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

step() {  # step LABEL TIMEOUT COMMAND...: runs, logs to $out/LABEL.log, prints its last lines
  local label=$1 limit=$2
  shift 2
  echo "=== $label: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$label.log" 2>&1
  local rc=$?
  tail -n 3 "$out/$label.log"
  note "$(printf '%-14s rc %3d  %4ds' "$label" "$rc" $((SECONDS - t0)))"
  return $rc
}

rm -rf "$out/demo" "$out/straight" "$out/split" "$out/bf16"
# 1. the demo, shortened
step demo_train 120 "$iris" train "${common[@]}" --run "$out/demo" --time-limit "${IRIS_TRAIN_MINUTES:-1.5}" \
  --set train.sample_every=200
grep -a -E '^step [0-9]' "$out/demo_train.log" | tail -n 2 | tee -a "$summary"
ckpt=$(ls -1 "$out"/demo/checkpoints/step_*.h5 2> /dev/null | sort | tail -n 1)
if [ -n "$ckpt" ]; then
  step demo_sample 60 "$iris" sample --ckpt "$ckpt" --shard "$data/test" --count 64 --device "$device" \
    --out "$out/demo/eval"
  step demo_eval 20 "$iris" eval --pred "$out/demo/eval/samples.h5" --truth "$out/demo/eval/samples.h5:truth" \
    --lowres "$out/demo/eval/samples.h5:lowres" -q
  grep -a -E '^(image|mean)' "$out/demo_eval.log" | tee -a "$summary"
fi

# 2. exact resume
short=(--set train.steps=40 --set train.checkpoint_every=20 --set train.sample_every=0 --set train.log_every=10)
step straight 45 "$iris" train "${common[@]}" "${short[@]}" --run "$out/straight"
step split_1 45 "$iris" train "${common[@]}" "${short[@]}" --run "$out/split" --stop-after 20
step split_2 45 "$iris" train "${common[@]}" "${short[@]}" --run "$out/split" --resume auto
step resume_diff 20 "$iris" ckpt diff "$out/straight/checkpoints/step_000000040.h5" \
  "$out/split/checkpoints/step_000000040.h5"
grep -a -E '^  (counters|model|ema|optimizer)|^identical|error' "$out/resume_diff.log" | tee -a "$summary"

# 3. bf16 autocast
step bf16_train 60 "$iris" train "${common[@]}" --run "$out/bf16" --set train.precision=bf16 \
  --set train.steps=200 --set train.sample_every=0 --set train.log_every=50
grep -a -E '^step [0-9]' "$out/bf16_train.log" | tail -n 2 | tee -a "$summary"

# 4. activation checkpointing on the benchmark U-Net (tools/bench/SR3_BENCH.md step), same run
for c in false true; do
  step "bench_ckpt_$c" 45 "$iris" bench --config configs/sr3_bench_128.toml --mode train --precision bf16 \
    --set train.conv_search=find \
    --batch 32 --steps 10 --warmup 3 --set "model.checkpoint_res_blocks=$c"
  grep -a '^{' "$out/bench_ckpt_$c.log" | tail -n 1 | tee -a "$summary"
done

# 5. the Classification Accuracy Score's classifier on the GPU (the real reference: train shards -> test shards)
step cas_gpu 60 "$iris" cas --generated "$data/train" --real "$data/test" --steps 300 --batch 64 --device "$device"
grep -a -E '^CAS|^fit' "$out/cas_gpu.log" | tee -a "$summary"

# Keep what is worth looking at, drop the checkpoints (large, and not needed back).
find "$out" -name 'step_*.h5' -delete
echo "=== summary ($(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1))"
cat "$summary"
