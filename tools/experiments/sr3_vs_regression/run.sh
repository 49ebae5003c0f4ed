#!/usr/bin/env bash
# SR3 against a regression model of the same architecture (SR3 Tables 1-3), on Fashion-MNIST 7x7 -> 28x28.
#
# Trains three models with the same U-Net, data, batch, learning rate and number of steps:
#   sr3        configs/fmnist_sr3_7to28.toml with model.zero_init = false (every layer initialised alike)
#   sr3_zero   the same with model.zero_init = true (ADM/DDPM: residual branches, attention projections
#              and the head start at zero; the shipped configs' choice since this experiment)
#   regression model.task = regression (the upsampled low-res image in, the high-res image out; L1, one
#              forward pass), with model.zero_init = true
# then super-resolves the first N test images with each (SR3 with DDPM at the config's 100 steps and with
# DPM-Solver++(2M) at 25 steps; fixed seed) and scores every method, bicubic upsampling included:
#   PSNR, SSIM, consistency           iris eval against the truth and the low-res inputs
#   FD, classifier accuracy           iris fd: a classifier trained on the real 28x28 training images gives the
#                                     features (FD against the real test set) and is run on each method's
#                                     outputs with their inputs' labels (SR3 Table 3's analogue)
# and prints one table (also OUT/results.md and OUT/results.json).
#
#   run.sh [--smoke] [--out DIR] [--steps K] [--count N] [--seeds "0 1"] [--train-seed S]
#     --smoke  the whole pipeline on tiny settings (a 512-image data set, a few steps): what ctest runs
#     --train-seed S  train.seed of all three models (initial weights, data order, noise; default 0): a
#              second training seed goes to its own --out folder
#     IRIS_BIN the iris program (default build/bin/iris); IRIS_FASHION_MNIST_DIR as for `iris shard`
# Resumes: a finished training run or score is not redone when run.sh is run again with the same --out.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
iris=${IRIS_BIN:-$root/build/bin/iris}
smoke=0
out=""
steps=1500       # training steps of each model (batch 32)
count=1000       # test images super-resolved by each method
seeds="0"        # sampling seeds of the SR3 models (the regression model draws nothing)
train_seed=0     # train.seed of every model
clf_steps=600    # iris fd's feature classifier
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --steps) steps=$2; shift ;;
    --count) count=$2; shift ;;
    --seeds) seeds=$2; shift ;;
    --train-seed) train_seed=$2; shift ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  steps=12; count=16; clf_steps=20
  out=${out:-$root/runs/experiments/sr3_vs_regression_smoke}
else
  out=${out:-$root/runs/experiments/sr3_vs_regression}
fi
[ -x "$iris" ] || { echo "run.sh: no iris program at $iris (build it, or set IRIS_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run.sh: needs jq (tools/setup.sh installs it)" >&2; exit 1; }
# A smoke run starts afresh each time (it checks the pipeline of the program it is given).
if [ "$smoke" = 1 ]; then rm -rf "$out/runs" "$out/samples" "$out/scores"; fi
mkdir -p "$out"
log() { echo "== $*"; }
t_start=$(date +%s)

# ---- data ------------------------------------------------------------------------------------------------
data=$root/data-cache/fashion-mnist
limit=()
if [ "$smoke" = 1 ]; then data=$out/data; limit=(--limit 512); fi
"$iris" shard fashion-mnist --out "$data" --lowres 7,14 "${limit[@]}"

# ---- training ----------------------------------------------------------------------------------------------
common=(--config "$root/configs/fmnist_sr3_7to28.toml" --set "data.dir=$data/train" --set "data.val_dir=$data/test"
        --set "train.steps=$steps" --set "train.checkpoint_every=$steps" --set train.keep_checkpoints=1
        --set "train.seed=$train_seed")
if [ "$smoke" = 1 ]; then
  common+=(--set train.log_every=4 --set train.sample_every=0 --set diffusion.sample_steps=4 --set train.batch_size=8
           --set diffusion.sample_schedule=respaced)
else
  common+=(--set train.log_every=50 --set train.sample_every=250)
fi
declare -A model_sets=(
  [sr3]="model.zero_init=false"
  [sr3_zero]="model.zero_init=true"
  [regression]="model.task=regression model.in_channels=1 model.zero_init=true"
)
models=(sr3 sr3_zero regression)
train_seconds=()
for m in "${models[@]}"; do
  run=$out/runs/$m
  sets=()
  for s in ${model_sets[$m]}; do sets+=(--set "$s"); done
  t0=$(date +%s)
  log "train $m ($steps steps)"
  "$iris" train "${common[@]}" "${sets[@]}" --device cpu --run "$run" --resume auto
  train_seconds+=("$m=$(( $(date +%s) - t0 ))")
done
ckpt_of() { ls -1 "$out/runs/$1/checkpoints"/step_*.h5 | sort | tail -n 1; }

# ---- sampling ----------------------------------------------------------------------------------------------
ddpm_steps=100
dpm_steps=25
if [ "$smoke" = 1 ]; then ddpm_steps=4; dpm_steps=3; fi
# method name -> "model sampler steps seed" (the regression model: one forward pass). DDPM walks the config's
# sampling schedule (SR3's: linear betas 1e-4 to 0.1 over 100 steps); DPM-Solver++ walks the training levels
# respaced to its steps (a fresh linear schedule of 25 steps with that beta range would start at gamma 0.28,
# far from pure noise, and iris refuses it).
methods=()
declare -A method_spec
for seed in $seeds; do
  for m in sr3 sr3_zero; do
    method_spec[${m}_ddpm${ddpm_steps}_s$seed]="$m ddpm $ddpm_steps $seed"
    method_spec[${m}_dpmpp${dpm_steps}_s$seed]="$m dpmpp2m $dpm_steps $seed"
    methods+=("${m}_ddpm${ddpm_steps}_s$seed" "${m}_dpmpp${dpm_steps}_s$seed")
  done
done
method_spec[regression]="regression - 1 0"
methods+=(regression)
for name in "${methods[@]}"; do
  read -r m sampler k seed <<<"${method_spec[$name]}"
  dir=$out/samples/$name
  if [ -f "$dir/samples.h5" ]; then continue; fi
  args=(--ckpt "$(ckpt_of "$m")" --shard "$data/test" --count "$count" --batch 50 --seed "$seed"
        --device cpu --out "$dir" --overwrite)
  [ "$sampler" != "-" ] && args+=(--sampler "$sampler" --steps "$k")
  [ "$sampler" = dpmpp2m ] && args+=(--schedule respaced)
  log "sample $name"
  t0=$(date +%s.%N)
  "$iris" sample "${args[@]}"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", b - a }' > "$dir/seconds"
done

# ---- scores ------------------------------------------------------------------------------------------------
first=$out/samples/${methods[0]}/samples.h5
scores=$out/scores
mkdir -p "$scores"
if [ ! -f "$scores/bicubic.h5" ]; then
  "$iris" eval --pred "$first" --truth "$first:truth" --lowres "$first:lowres" -q --save-bicubic "$scores/bicubic.h5" >/dev/null
fi
all=(bicubic "${methods[@]}")
file_of() { if [ "$1" = bicubic ]; then echo "$scores/bicubic.h5"; else echo "$out/samples/$1/samples.h5"; fi; }
clf=$scores/feature_classifier.h5
fd_opts=(--real "$data/test" --train "$data/train" --steps "$clf_steps" --width 16 --batch 64 --seed 0 --device cpu)
for name in "${all[@]}"; do
  f=$(file_of "$name")
  [ -f "$scores/$name.eval.json" ] || \
    "$iris" eval --pred "$f" --truth "$first:truth" --lowres "$first:lowres" -q --json "$scores/$name.eval.json" >/dev/null
  if [ ! -f "$scores/$name.fd.json" ]; then
    if [ -f "$clf" ]; then
      "$iris" fd --generated "$f" "${fd_opts[@]}" --classifier "$clf" --json "$scores/$name.fd.json" >/dev/null
    else
      "$iris" fd --generated "$f" "${fd_opts[@]}" --save-classifier "$clf" --json "$scores/$name.fd.json" >/dev/null
    fi
  fi
done

# ---- the table ---------------------------------------------------------------------------------------------
fmt() { jq -r "$1" "$2"; }
{
  echo "| method | PSNR (dB) | SSIM | consistency (x1e-5) | FD | classifier top-1 | sampling s / image |"
  echo "|---|---|---|---|---|---|---|"
  for name in "${all[@]}"; do
    e=$scores/$name.eval.json; d=$scores/$name.fd.json
    secs="-"
    if [ -f "$out/samples/$name/seconds" ]; then
      secs=$(awk -v s="$(cat "$out/samples/$name/seconds")" -v n="$count" 'BEGIN { printf "%.4f", s / n }')
    fi
    printf "| %s | %.2f | %.4f | %.2f | %.4f | %.1f%% | %s |\n" "$name" \
      "$(fmt .mean.psnr "$e")" "$(fmt .mean.ssim "$e")" "$(fmt '.mean.consistency * 100000' "$e")" \
      "$(fmt .fd "$d")" "$(fmt '.generated_top1 * 100' "$d")" "$secs"
  done
  d=$scores/bicubic.fd.json
  printf "| real test images | | | | %.4f (floor: %s real training images) | %.1f%% | |\n" \
    "$(fmt .reference_fd "$d")" "$(fmt .reference_count "$d")" "$(fmt '.classifier_top1 * 100' "$d")"
  echo
  # Training curves: the mean loss of the logging window ending at each step, and the EMA model's PSNR on
  # the 8-image validation batch (train.sample_every) where it was measured.
  echo "| step | $(printf '%s loss | ' "${models[@]}")$(printf '%s val PSNR | ' "${models[@]}")"
  echo "|---$(printf '|---%.0s' "${models[@]}" "${models[@]}")|"
  for k in $(jq -r 'select(.loss != null) | .step' "$out/runs/sr3/metrics.jsonl" | sort -n | uniq); do
    if [ $(( k % (steps / 6 > 0 ? steps / 6 : 1) )) -ne 0 ] && [ "$k" -ne "$steps" ]; then continue; fi
    row="| $k |"
    for m in "${models[@]}"; do
      row+=" $(jq -r "select(.step == $k and .loss != null) | .loss * 10000 | round / 10000" "$out/runs/$m/metrics.jsonl" | tail -n 1) |"
    done
    for m in "${models[@]}"; do
      row+=" $(jq -r "select(.step == $k and .val_psnr != null) | .val_psnr * 100 | round / 100" "$out/runs/$m/metrics.jsonl" | tail -n 1) |"
    done
    echo "$row"
  done
} > "$out/results.md"
for name in "${all[@]}"; do
  jq -n --arg name "$name" --slurpfile e "$scores/$name.eval.json" --slurpfile d "$scores/$name.fd.json" \
    '{($name): {eval: $e[0].mean, fd: $d[0].fd, generated_top1: $d[0].generated_top1}}'
done | jq -s add > "$out/results.json"

echo
echo "SR3 vs regression, Fashion-MNIST 7x7 -> 28x28: $count test images, $steps training steps per model"
echo "training seconds: ${train_seconds[*]}"
cat "$out/results.md"
echo "(consistency: MSE in [0, 1] between the downsampled output and the low-res input, x1e-5 as in SR3;"
echo " FD: iris fd's statistic in the features of a classifier trained on the real training images; top-1:"
echo " that classifier run on each method's outputs with the inputs' labels; the real row is its accuracy"
echo " on the real test images)"
echo "wall time $(( $(date +%s) - t_start )) s; results in $out"

if [ "$smoke" = 1 ]; then
  # The smoke run checks that the pipeline produced every score, not what the scores are.
  for name in "${all[@]}"; do
    for key in .mean.psnr .mean.ssim .mean.consistency; do
      v=$(jq -r "$key" "$scores/$name.eval.json")
      [ "$v" != null ] || { echo "smoke: $name has no $key" >&2; exit 1; }
    done
    for key in .fd .generated_top1; do
      v=$(jq -r "$key" "$scores/$name.fd.json")
      [ "$v" != null ] || { echo "smoke: $name has no FD score $key" >&2; exit 1; }
    done
  done
  echo "smoke: ${#all[@]} methods scored"
fi
