#!/usr/bin/env bash
# The SR3 model's quality and speed over sampler x steps, on Fashion-MNIST 7x7 -> 28x28 (what users of SR3
# reimplementations ask: how does quality fall with fewer steps?).
#
# One `iris sweep` of the SR3 model trained by tools/experiments/sr3_vs_regression (its `sr3` run; --ckpt to
# give another): samplers DDPM (ancestral, SR3's), DDIM (eta 0) and DPM-Solver++(2M), each at 10, 25, 50 and
# 100 steps on the training levels respaced to that many steps, plus DDPM on SR3's own 100-step schedule
# (linear betas 1e-4 to 0.1, the config's), all on the same test images and noise (seed 0). Scores: PSNR,
# SSIM, consistency against the truth and the low-res inputs, FD in the features of a classifier trained on
# the real training images (iris fd's statistic, with its real-data floor), that classifier's top-1 on the
# outputs, and sampling time per image (ms; this machine's, with whatever else ran on it).
#
#   run.sh [--smoke] [--out DIR] [--ckpt CKPT] [--count N]
#     --smoke  a tiny SR3 (a few training steps on a 512-image data set) and 4 images: what ctest runs
#     IRIS_BIN the iris program (default build/bin/iris)
# Resumes: finished sweep points are not recomputed when run.sh is run again with the same --out.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
iris=${IRIS_BIN:-$root/build/bin/iris}
smoke=0
out=""
ckpt=""
count=300
steps_axis=10,25,50,100
clf_steps=600
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --ckpt) ckpt=$2; shift ;;
    --count) count=$2; shift ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$iris" ] || { echo "run.sh: no iris program at $iris (build it, or set IRIS_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run.sh: needs jq (tools/setup.sh installs it)" >&2; exit 1; }
data=$root/data-cache/fashion-mnist
if [ "$smoke" = 1 ]; then
  out=${out:-$root/runs/experiments/samplers_smoke}
  rm -rf "$out/run" "$out/sweep" "$out/sweep_sr3"
  count=4; steps_axis=2,4; clf_steps=20
  data=$out/data
  mkdir -p "$out"
  "$iris" shard fashion-mnist --out "$data" --lowres 7,14 --limit 512
  "$iris" train --config "$root/configs/fmnist_sr3_7to28.toml" --set "data.dir=$data/train" \
    --set "data.val_dir=$data/test" --set train.steps=4 --set train.batch_size=4 --set train.log_every=2 \
    --set train.sample_every=0 --set train.sample_count=2 --set diffusion.sample_steps=100 --device cpu --run "$out/run"
  ckpt=$(ls -1 "$out/run/checkpoints"/step_*.h5 | sort | tail -n 1)
else
  out=${out:-$root/runs/experiments/samplers}
  if [ -z "$ckpt" ]; then
    run=$root/runs/experiments/sr3_vs_regression/runs/sr3/checkpoints
    [ -d "$run" ] || { echo "run.sh: no SR3 model in $run: run tools/experiments/sr3_vs_regression/run.sh first, or give --ckpt" >&2; exit 1; }
    ckpt=$(ls -1 "$run"/step_*.h5 | sort | tail -n 1)
  fi
fi
mkdir -p "$out"
t_start=$(date +%s)
common=(--stage "$ckpt" --shard "$data/test" --count "$count" --seed 0 --batch 50 --device cpu
        --metrics psnr,ssim,consistency,fd,ms --fd-train "$data/train" --real "$data/test"
        --classifier-steps "$clf_steps" --classifier-width 16)
echo "== sweep: samplers x steps on the respaced training levels ($ckpt, $count test images)"
"$iris" sweep "${common[@]}" --vary sampler=ddpm,ddim,dpmpp2m --vary "steps=$steps_axis" --vary schedule=respaced \
  --out "$out/sweep"
echo "== sweep: DDPM on SR3's own schedule (the config's: linear betas 1e-4 to 0.1, 100 steps)"
"$iris" sweep "${common[@]}" --classifier "$out/sweep/feature_classifier.h5" --vary sampler=ddpm --vary steps=100 \
  --vary schedule=linear --out "$out/sweep_sr3"

# One table of both sweeps (sweep.json: every point's settings and scores).
{
  echo "| sampler | schedule | steps | PSNR (dB) | SSIM | consistency (x1e-5) | FD | top-1 | ms / image |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for s in "$out/sweep" "$out/sweep_sr3"; do
    jq -r '.points[] | [.stages[0].sampler, .stages[0].schedule, .stages[0].steps, .scores.psnr, .scores.ssim,
            .scores.consistency * 100000, .scores.fd, .scores.accuracy * 100, .scores.ms]
            | "| \(.[0]) | \(.[1]) | \(.[2]) | \(.[3] * 100 | round / 100) | \(.[4] * 10000 | round / 10000) | \(.[5] * 100 | round / 100) | \(.[6] * 10000 | round / 10000) | \(.[7] * 10 | round / 10)% | \(.[8] | round) |"' "$s/sweep.json"
  done
  jq -r '.references | "| real training images (floor) | | | | | | \(.fd_floor * 10000 | round / 10000) | \(.classifier_top1_real * 1000 | round / 10)% (real test images) | |"' "$out/sweep/sweep.json"
} > "$out/results.md"
cat "$out/results.md"
echo "wall time $(( $(date +%s) - t_start )) s; plots: $out/sweep/*.png; results in $out"

if [ "$smoke" = 1 ]; then
  n=$(jq '.points | length' "$out/sweep/sweep.json")
  [ "$n" = 6 ] || { echo "smoke: expected 6 sweep points, got $n" >&2; exit 1; }
  for key in psnr ssim consistency fd accuracy ms; do
    bad=$(jq "[.points[] | select(.scores.$key == null)] | length" "$out/sweep/sweep.json")
    [ "$bad" = 0 ] || { echo "smoke: $bad points have no $key" >&2; exit 1; }
  done
  echo "smoke: 7 points scored"
fi
