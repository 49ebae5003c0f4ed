#!/usr/bin/env bash
# The photo demo: SR3 on real photographs. The nature photographs of Debian's mate-backgrounds package
# (third_party/README.md says why that one, and their licence) are split into training and held-out photos;
# the training photos are sharded (`iris shard images`: the largest centred square, area-resampled to
# 256x256, with a 64x64 antialiased bicubic low-res copy) and an SR3 of configs/photo_sr3_16to64.toml trains
# on random 64x64 patches of them with their 16x16 low-res regions (patch training, data.crop_size) for a set
# time. The stage then super-resolves the held-out photos whole, 64x64 -> 256x256 (any-size inference: the
# network never saw a 64x64 input), and `iris eval` scores SR3 and bicubic upsampling against the truth
# (PSNR, SSIM, consistency). Last, one held-out photo (Storm, 3:2) is super-resolved whole at its own aspect
# (`iris shard images --crop none`, `iris sample --native-size`) and scored the same way. tools/demo.sh stays
# the quick Fashion-MNIST job; this is the second one.
#
#   photo_demo.sh [--smoke] [--out DIR] [--photos DIR] [--minutes M] [--steps K] [--tile T]
#     --smoke    tiny sizes (32x32 photos, 16x16 patches), 4 training steps, 2 sampling steps: what ctest runs;
#                exits 77 (skipped) when the photographs are not installed
#     --photos   folder of photographs (default $IRIS_PHOTOS, else /usr/share/backgrounds/mate/nature; the full
#                run installs mate-backgrounds with apt when that is missing)
#     --minutes  training time (default 13); a second run resumes the training in --out
#     --steps    DDIM sampling steps (default 20)
#     --tile     sample on T x T windows of the output (default 0: whole images; for photos too large)
#     --native   the held-out photo also super-resolved whole at its own aspect (default: the first held-out
#                one, Storm.jpg, 3:2)
#     IRIS_BIN the iris program (default build/bin/iris); IRIS_DEVICE (default auto: a GPU if there is one)
#     IRIS_PHOTO_HELDOUT the held-out file names (default "GreenMeadow.jpg LadyBird.jpg Storm.jpg")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
iris=${IRIS_BIN:-$root/build/bin/iris}
device=${IRIS_DEVICE:-auto}
heldout=${IRIS_PHOTO_HELDOUT:-GreenMeadow.jpg LadyBird.jpg Storm.jpg}
smoke=0
out=""
photos=${IRIS_PHOTOS:-/usr/share/backgrounds/mate/nature}
minutes=13
steps=20
tile=0
native=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --photos) photos=$2; shift ;;
    --minutes) minutes=$2; shift ;;
    --steps) steps=$2; shift ;;
    --tile) tile=$2; shift ;;
    --native) native=$2; shift ;;
    *) echo "photo_demo.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$iris" ] || { echo "photo_demo.sh: no iris program at $iris (build it, or set IRIS_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "photo_demo.sh: needs jq (tools/setup.sh installs it)" >&2; exit 1; }

if [ ! -d "$photos" ]; then
  if [ "$smoke" = 1 ]; then
    # ctest reports the test skipped (SKIP_RETURN_CODE): the package is 46 MB, more than CI should fetch.
    echo "photo_demo.sh: no photographs in $photos (apt-get install mate-backgrounds); skipped" >&2
    exit 77
  fi
  echo "== installing mate-backgrounds (the photographs)"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends mate-backgrounds
fi

if [ "$smoke" = 1 ]; then
  out=${out:-$root/runs/photo_demo_smoke}
  rm -rf "$out"
  size=32; lowres=8; crop=16; minutes=0; steps=2
  train_opts=(--set train.steps=4 --set train.batch_size=2 --set train.log_every=2 --set train.checkpoint_every=4
              --set data.image_size=$size --set data.lowres_size=$lowres --set data.crop_size=$crop
              --set model.resolution=$crop --set model.base_channels=8 --set model.norm_groups=4)
else
  out=${out:-$root/runs/photo_demo}
  size=256; lowres=64; crop=64
  train_opts=(--time-limit "$minutes")
fi
mkdir -p "$out"
t_start=$(date +%s)

# The photographs as two image folders (one class each), as symbolic links: held out and for training.
rm -rf "$out/photos"
mkdir -p "$out/photos/train/photos" "$out/photos/heldout/photos"
n_train=0; n_heldout=0
for f in "$photos"/*; do
  case "${f,,}" in *.jpg|*.jpeg|*.png) ;; *) continue ;; esac
  name=$(basename "$f")
  if [[ " $heldout " == *" $name "* ]]; then
    ln -s "$(realpath "$f")" "$out/photos/heldout/photos/$name"; n_heldout=$((n_heldout + 1))
  else
    ln -s "$(realpath "$f")" "$out/photos/train/photos/$name"; n_train=$((n_train + 1))
  fi
done
[ "$n_heldout" -gt 0 ] && [ "$n_train" -gt 0 ] \
  || { echo "photo_demo.sh: $photos gives $n_train training and $n_heldout held-out photos ($heldout)" >&2; exit 1; }
echo "== shard $n_train training and $n_heldout held-out photos ($heldout) at ${size}x${size}, low-res ${lowres}"
for part in train heldout; do
  "$iris" shard images "$out/photos/$part" --out "$out/shards/$part" --size "$size" --lowres "$lowres" \
    --crop largest --val-fraction 0 --overwrite | tail -n 1
done

if [ "$smoke" = 1 ]; then echo "== train 4 steps"; else echo "== train for $minutes minutes (resumes)"; fi
nice -n 19 "$iris" train --config "$root/configs/photo_sr3_16to64.toml" --run "$out/run" --resume auto \
  --set "data.dir=$out/shards/train/train" --set "data.val_dir=$out/shards/heldout/train" --device "$device" \
  "${train_opts[@]}" > "$out/train.log" 2>&1 || { tail -n 20 "$out/train.log" >&2; exit 1; }
grep '^step' "$out/train.log" | tail -n 1
ckpt=$(ls -1 "$out/run/checkpoints"/step_*.h5 | sort | tail -n 1)

echo "== super-resolve the held-out photos whole (${lowres}x${lowres} -> ${size}x${size}), DDIM $steps steps"
tile_opts=()
[ "$tile" -gt 0 ] && tile_opts=(--tile "$tile" --tile-overlap $((tile / 4)))
t0=$(date +%s)
# --shard: the held-out low-res images at the stage's data.lowres_size, their truth stored beside the outputs.
nice -n 19 "$iris" sample --ckpt "$ckpt" --shard "$out/shards/heldout/train" --count -1 \
  --sampler ddim --steps "$steps" --schedule respaced --seed 0 --device "$device" --out "$out/eval" \
  --overwrite "${tile_opts[@]}" > "$out/sample.log" 2>&1 || { tail -n 20 "$out/sample.log" >&2; exit 1; }
sample_s=$(( $(date +%s) - t0 ))

echo "== evaluate SR3 and bicubic upsampling against the truth"
"$iris" eval --pred "$out/eval/samples.h5" --truth "$out/eval/samples.h5:truth" \
  --lowres "$out/eval/samples.h5:lowres" --json "$out/eval.json" --no-tensorboard
j=$out/eval.json
step=$(basename "$ckpt" .h5); step=$((10#${step#step_}))
fmt() { jq -r "$1" "$j" | xargs printf "%.${2}f"; }
{
  echo "| method | PSNR (dB) | SSIM | consistency (MSE) |"
  echo "|---|---|---|---|"
  echo "| bicubic | $(fmt .mean.bicubic_psnr 2) | $(fmt .mean.bicubic_ssim 3) | |"
  echo "| SR3 ($step training steps, DDIM $steps steps) | $(fmt .mean.psnr 2) | $(fmt .mean.ssim 3) | $(jq -r .mean.consistency "$j" | xargs printf '%.2e') |"
} > "$out/results.md"
cat "$out/results.md"
echo "sampling: $sample_s s for $n_heldout photos"

# One held-out photo at its own aspect (not square): `iris shard images --crop none` keeps the whole photo,
# ${size} pixels high, its width in proportion, with its low-res copy; the stage super-resolves that low-res
# image at its own size (--native-size: any-size inference on a non-square input) and iris eval scores it.
native_file=${native:-Storm.jpg}
if [ ! -e "$out/photos/heldout/photos/$native_file" ]; then
  [ -n "$native" ] && { echo "photo_demo.sh: --native $native is not a held-out photo ($heldout)" >&2; exit 1; }
  native_file=$(ls -1 "$out/photos/heldout/photos" | head -n 1)  # Storm.jpg not held out: the first one
fi
rm -rf "$out/photos/native"
mkdir -p "$out/photos/native/photos"
ln -s "$(realpath "$out/photos/heldout/photos/$native_file")" "$out/photos/native/photos/$native_file"
"$iris" shard images "$out/photos/native" --out "$out/shards/native" --size "$size" --lowres "$lowres" \
  --crop none --val-fraction 0 --overwrite | tail -n 1
t0=$(date +%s)
nice -n 19 "$iris" sample --ckpt "$ckpt" --input "$out/shards/native/train:lowres_$lowres" --native-size \
  --sampler ddim --steps "$steps" --schedule respaced --seed 0 --device "$device" --out "$out/eval_native" \
  --overwrite "${tile_opts[@]}" > "$out/sample_native.log" 2>&1 || { tail -n 20 "$out/sample_native.log" >&2; exit 1; }
native_s=$(( $(date +%s) - t0 ))
"$iris" eval --pred "$out/eval_native/samples.h5" --truth "$out/shards/native/train" \
  --lowres "$out/eval_native/samples.h5:lowres" --json "$out/eval_native.json" --no-tensorboard -q > /dev/null
jn=$out/eval_native.json
{
  echo
  echo "$native_file at its own aspect (whole photo, ${size} high), DDIM $steps steps:"
  echo "| method | PSNR (dB) | SSIM | consistency (MSE) |"
  echo "|---|---|---|---|"
  echo "| bicubic | $(j=$jn fmt .mean.bicubic_psnr 2) | $(j=$jn fmt .mean.bicubic_ssim 3) | |"
  echo "| SR3 | $(j=$jn fmt .mean.psnr 2) | $(j=$jn fmt .mean.ssim 3) | $(jq -r .mean.consistency "$jn" | xargs printf '%.2e') |"
} | tee -a "$out/results.md"
echo "sampling $native_file: $native_s s; wall time $(( $(date +%s) - t_start )) s"
echo "look at: $out/eval/grid.png (low-res | bicubic | SR3 | truth)"

if [ "$smoke" = 1 ]; then
  [ "$(jq -r .count "$j")" = "$n_heldout" ] \
    || { echo "smoke: scored $(jq -r .count "$j") photos, expected $n_heldout" >&2; exit 1; }
  for k in psnr ssim consistency bicubic_psnr bicubic_ssim; do
    jq -e ".mean.$k | type == \"number\" and . == . and . < 1e300" "$j" >/dev/null \
      || { echo "smoke: mean $k is not a finite number: $(jq -c ".mean.$k" "$j")" >&2; exit 1; }
  done
  [ -s "$out/eval/grid.png" ] || { echo "smoke: no grid $out/eval/grid.png" >&2; exit 1; }
  shape=$(jq -c '[.count, (.mean.psnr | type)]' "$jn")
  [ "$shape" = '[1,"number"]' ] || { echo "smoke: the native-aspect photo was not scored: $shape" >&2; exit 1; }
  echo "smoke: $n_heldout held-out photos super-resolved and scored"
fi
