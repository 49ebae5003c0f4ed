#!/usr/bin/env bash
# Tiled super-resolution against whole-image super-resolution: how far do the outputs stray, and are the
# seams visible? (What users of SR3 reimplementations ask for when they upscale images too large for memory.)
#
# The SR3 model 7x7 -> 28x28 trained by tools/experiments/sr3_vs_regression (its `sr3` run; --ckpt to give
# another) super-resolves Fashion-MNIST test images at their own 28x28 size (any-size inference,
# --native-size) by its factor 4, to 112x112: once whole, then on windows of several sizes and overlaps
# blended at every step (--tile, --tile-overlap), all with seed 0, i.e. the same noise at every pixel.
# Scores (iris eval --tile-coverage): the PSNR of each tiled output against the whole-image one, over all
# pixels, over the seams (pixels that two or more windows cover: the bands around inner window edges) and
# over the interior (one window); as the scale of "different", the PSNR between the whole-image outputs of
# seeds 0 and 1; and CPU seconds per image.
#
#   run.sh [--smoke] [--out DIR] [--ckpt CKPT] [--count N] [--steps K]
#     --smoke  a tiny SR3 (a few training steps on a 512-image data set), 2 images, 3 steps: what ctest runs
#     --count  test images (default 8); --steps DDPM steps on the respaced training levels (default 50)
#     IRIS_BIN the iris program (default build/bin/iris)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
iris=${IRIS_BIN:-$root/build/bin/iris}
smoke=0
out=""
ckpt=""
count=8
steps=50
tilings="56:16 32:16 32:8 28:4 28:0"  # window:overlap (multiples of the network's downsampling, 4)
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --ckpt) ckpt=$2; shift ;;
    --count) count=$2; shift ;;
    --steps) steps=$2; shift ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$iris" ] || { echo "run.sh: no iris program at $iris (build it, or set IRIS_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run.sh: needs jq (tools/setup.sh installs it)" >&2; exit 1; }
if [ "$smoke" = 1 ]; then
  out=${out:-$root/runs/experiments/tiled_sr_smoke}
  rm -rf "$out"
  count=2; steps=3; tilings="16:8 28:0"
  mkdir -p "$out"
  "$iris" shard fashion-mnist --out "$out/data" --lowres 7 --limit 512
  "$iris" train --config "$root/configs/fmnist_sr3_7to28.toml" --set "data.dir=$out/data/train" \
    --set "data.val_dir=$out/data/test" --set train.steps=4 --set train.batch_size=4 --set train.log_every=2 \
    --set train.sample_every=0 --set train.sample_count=2 --device cpu --run "$out/run"
  ckpt=$(ls -1 "$out/run/checkpoints"/step_*.h5 | sort | tail -n 1)
  # The first `count` test images as an HDF5 image set: iris sample writes them as the truth of a run.
  "$iris" sample --ckpt "$ckpt" --shard "$out/data/test" --count "$count" --steps 1 --schedule respaced \
    --device cpu --out "$out/inputs" >/dev/null
  images=$out/inputs/samples.h5:truth
else
  out=${out:-$root/runs/experiments/tiled_sr}
  if [ -z "$ckpt" ]; then
    run=$root/runs/experiments/sr3_vs_regression/runs/sr3/checkpoints
    [ -d "$run" ] || { echo "run.sh: no SR3 model in $run: run tools/experiments/sr3_vs_regression/run.sh first, or give --ckpt" >&2; exit 1; }
    ckpt=$(ls -1 "$run"/step_*.h5 | sort | tail -n 1)
  fi
  mkdir -p "$out"
  # The first `count` Fashion-MNIST test images (28x28) as the inputs.
  "$iris" shard fashion-mnist --out "$out/data" --lowres 7 --limit "$count"
  images=$out/data/test:images
fi
t_start=$(date +%s)
# One sampling run: NAME, then extra options. Records its CPU seconds (user + system, both threads) in
# NAME/cpu_seconds; a finished run (its samples.h5 there) is not run again.
sample() {
  local name=$1; shift
  [ -f "$out/$name/samples.h5" ] && return 0
  echo "== $name: $*"
  local t0 t1
  t0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  "$iris" sample --ckpt "$ckpt" --input "$images" --native-size --sampler ddpm --schedule respaced \
    --steps "$steps" --batch "$count" --device cpu --out "$out/$name" --overwrite "$@" >"$out/$name.log" 2>&1 \
    || { cat "$out/$name.log" >&2; exit 1; }
  t1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
  echo "scale=2; ($t1 - $t0) / $(getconf CLK_TCK)" | bc > "$out/$name/cpu_seconds"
  tail -n 1 "$out/$name.log"
}
sample whole --seed 0
sample whole_seed1 --seed 1
for t in $tilings; do
  sample "tile_${t%:*}_${t#*:}" --seed 0 --tile "${t%:*}" --tile-overlap "${t#*:}"
done

# PRED_RUN -> eval JSON against the whole-image run (with the window coverage when tiled), and SR3's
# consistency with the run's own inputs (no truth exists at 112x112: this is the fidelity score).
score() {
  local cov=() h5=$out/$1/samples.h5
  case "$1" in tile_*) cov=(--tile-coverage "$h5") ;; esac
  "$iris" eval --pred "$h5" --truth "$out/whole/samples.h5" --lowres "$h5:lowres" "${cov[@]}" \
    --json "$out/$1.eval.json" -q >/dev/null
}
consistency() { printf "%.1f" "$(jq '.mean.consistency * 100000' "$out/$1.eval.json")"; }
cpu_per_image() { printf "%.1f" "$(echo "scale=3; $(cat "$out/$1/cpu_seconds") / $count" | bc)"; }
fmt() {  # a JSON number (or null, "inf") on stdin -> two decimals, "-" or "inf"
  local v; v=$(cat)
  case "$v" in null) echo "-" ;; '"inf"') echo "inf" ;; *) printf "%.2f" "$v" ;; esac
}
{
  score whole
  echo "| windows | overlap | windows per image | PSNR vs whole (dB) | seams (dB) | interior (dB) | seam pixels | consistency (x1e-5) | CPU s / image |"
  echo "|---|---|---|---|---|---|---|---|---|"
  echo "| whole image (112x112) | | 1 | | | | | $(consistency whole) | $(cpu_per_image whole) |"
  for t in $tilings; do
    name="tile_${t%:*}_${t#*:}"
    score "$name"
    j=$out/$name.eval.json
    # Windows per axis: ceil((112 - w) / (w - o)) + 1 (diffusion/tiling.h).
    windows=$(jq -n --argjson s 112 --argjson w "${t%:*}" --argjson o "${t#*:}" \
      '((($s - $w) / ($w - $o)) | ceil) + 1 | . * .')
    share=$(jq '.tile_coverage.seam_share * 1000 | round / 10' "$j")
    echo "| ${t%:*}x${t%:*} | ${t#*:} | $windows | $(jq '.mean.psnr' "$j" | fmt) | $(jq '.mean.psnr_seams' "$j" | fmt) | $(jq '.mean.psnr_interior' "$j" | fmt) | ${share}% | $(consistency "$name") | $(cpu_per_image "$name") |"
  done
  score whole_seed1
  echo "| whole image, seed 1 (the scale of sampling noise) | | 1 | $(jq '.mean.psnr' "$out/whole_seed1.eval.json" | fmt) | | | | $(consistency whole_seed1) | $(cpu_per_image whole_seed1) |"
} > "$out/results.md"
cat "$out/results.md"
echo "wall time $(( $(date +%s) - t_start )) s; samples and grids in $out/*/; results in $out/results.md"

if [ "$smoke" = 1 ]; then
  for t in $tilings; do
    name="tile_${t%:*}_${t#*:}"
    shape=$(jq -r '.count' "$out/$name.eval.json")
    [ "$shape" = "$count" ] || { echo "smoke: $name scored $shape images, expected $count" >&2; exit 1; }
  done
  bad=$(jq -r '.mean.psnr_seams' "$out/tile_16_8.eval.json")
  [ "$bad" != null ] || { echo "smoke: no seam PSNR for the 16:8 tiling" >&2; exit 1; }
  echo "smoke: $(echo $tilings | wc -w) tilings scored against the whole image"
fi
