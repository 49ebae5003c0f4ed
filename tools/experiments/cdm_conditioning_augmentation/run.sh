#!/usr/bin/env bash
# CDM's conditioning augmentation (Ho et al. 2021, "Cascaded Diffusion Models": its ablations of
# conditioning augmentation and of truncated conditioning, in miniature), on a
# Fashion-MNIST cascade: a class-conditional 14x14 base model followed by a 14x14 -> 28x28 super-resolution
# (SR) stage, against a non-cascaded class-conditional 28x28 model.
#
# Trains (same data, each model from its config; the SR stages alike but for their augmentation):
#   base14     configs/fmnist_base_14.toml (class-conditional 14x14, classifier-free guidance)
#   sr_noaug   configs/fmnist_sr_14to28_aug.toml with augment.noise=false, model.aug_embedding=false:
#              the SR stage only ever sees clean (real) low-res inputs
#   sr_noise   the config as it is: Gaussian-noise conditioning augmentation, the low-res input noised to a
#              level s ~ U[0, 0.5] in training and s fed to a second embedding (model.aug_embedding)
#   sr_blur    blur augmentation only: augment.blur_prob=0.5, augment.blur_sigma=[0.4,0.6] (low-res pixels),
#              no noise augmentation
#   base28     configs/fmnist_base_14.toml at 28x28 (model.resolution=28, data.image_size=28, channel_mults
#              [1,2,2]: the 14x14 model's widths 32,64 one level deeper, attention at 7x7 as there); by
#              default trained for about the CPU time of base14 + one SR stage (a compute-matched
#              non-cascaded baseline)
# then samples the same labels with the same noise (iris sweep: --per-class K, --seed 0; every sample its
# own Philox stream) for every method:
#   base14 -> sr_noaug, base14 -> sr_blur         one point each
#   base14 -> sr_noise                            swept over the augmentation level s used at sampling time
#                                                 (--levels), non-truncated (the base stage runs to the end
#                                                 and its output is noised to level s) and truncated (the
#                                                 base stage stops at level s and the SR stage takes its
#                                                 noisy intermediate): how CDM picks s after training
#   base28                                        the 28x28 model alone
# Sampling: DPM-Solver++(2M) with --sample-steps (25) steps on the respaced training schedule for every stage
# (the SR config's own default is DDIM 50 on a fresh linear schedule; DPM-Solver++ at 25 keeps the 13
# sampled points affordable on a CPU; set in each model's config at training time), classifier-free
# guidance 2 (the base configs' own) for both base models.
# Scores, all on the same number of samples (10 classes x K) and by the same code (iris sweep's metrics):
#   FD        iris fd's statistic (Frechet distance in the features of one classifier trained once on the
#             real 28x28 training images, OUT/scores/feature_classifier.h5, passed to every sweep), against
#             the real 28x28 test set; lower is better
#   CAS       Classification Accuracy Score: a classifier trained on the samples only (their labels), top-1
#             on the real test set; higher is better
#   accuracy  the real-trained feature classifier's top-1 on the samples with their labels; higher is better
#   ms/img    sampling wall time per image
# and the real-data references of the same size (row "real data"): FD of the first 10 x K real training
# images (the floor), CAS of a classifier trained on them, the feature classifier's top-1 on the real test
# images.
#
# Reading it: OUT/results.md has one row per method. CDM's finding is that a cascade's SR stage trained on
# clean low-res images is hurt by the train/test mismatch (at sampling time it gets the base model's
# imperfect outputs), and that Gaussian-noise augmentation with a moderate sampling-time s, non-truncated
# or truncated, improves FD and CAS (CDM uses noise augmentation for its low-resolution stages and blur for
# its high-resolution ones; both are tried here at 14 -> 28). Rows "noise aug, best s" pick s by FD among
# the non-truncated and among the truncated points; every (s, truncated) point is listed below them (s = 0
# feeds the noise-augmented model the base model's clean output; truncated at s = 0 is the same point).
# Compare FD against the real-data floor and CAS/accuracy against the real row.
# With the default sizes the models are small and briefly trained: differences of a few hundredths in FD or
# a point or two in CAS are within the noise of 10 x K samples and one seed.
#
#   run.sh [--smoke] [--out DIR] [--base-steps N] [--sr-steps N] [--base28-steps N] [--per-class K]
#          [--levels "0,0.1,0.2,0.3,0.5"] [--sample-steps N] [--clf-steps N] [--train-seed S]
#     --train-seed S  train.seed of every model (initial weights, data order, noise; default 0): a second
#              training seed, in its own --out (the sampling seed stays 0, so the seeds' samples share labels
#              and noise)
#     --smoke  the whole pipeline on tiny settings (a 512-image data set, a few steps): what ctest runs
#     IRIS_BIN the iris program (default build/bin/iris); IRIS_FASHION_MNIST_DIR as for `iris shard`
# Resumes: a finished training run or scored sweep point is not redone when run.sh is run again with the
# same --out and options (iris train --resume auto; iris sweep skips finished points).
#
# Cost (full run, defaults), measured on the 2-core development CPU while it was ~3x oversubscribed by
# other jobs and divided by 3 (the README's idle figure for base14 at batch 64 is 0.27 s/step, 3.3x below
# what was measured here): base14 1500 steps ~7 min, each SR stage 500 steps (batch 32, ~0.5 s/step)
# ~4.5 min, base28 600 steps (batch 64, ~1.1 s/step) ~11 min; sampling 400 images ~105 s per non-truncated
# cascade point (~75 s truncated, ~80 s for base28), 13 points ~21 min; a CAS classifier per point (~30 s
# each at 28x28) and the feature classifier ~8 min: about 60 minutes in all on an idle CPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
iris=${IRIS_BIN:-$root/build/bin/iris}
smoke=0
out=""
base_steps=1500     # base14 training steps (batch 64)
sr_steps=500        # each SR stage's training steps (batch 32)
base28_steps=600    # base28 training steps (batch 64): about base14's + one SR stage's CPU time
per_class=40        # samples of every class for each method (10 classes)
levels="0,0.1,0.2,0.3,0.5"  # sampling-time augmentation levels s of the noise-augmented SR stage
sample_steps=25     # DPM-Solver++(2M) steps of every stage
clf_steps=400       # steps of the feature classifier and of each CAS classifier (batch 64, width 16)
train_seed=0        # train.seed of every model
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --out) out=$2; shift ;;
    --base-steps) base_steps=$2; shift ;;
    --sr-steps) sr_steps=$2; shift ;;
    --base28-steps) base28_steps=$2; shift ;;
    --per-class) per_class=$2; shift ;;
    --levels) levels=$2; shift ;;
    --sample-steps) sample_steps=$2; shift ;;
    --clf-steps) clf_steps=$2; shift ;;
    --train-seed) train_seed=$2; shift ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ "$smoke" = 1 ]; then
  base_steps=8; sr_steps=8; base28_steps=4; per_class=2; levels="0,0.3"; sample_steps=3; clf_steps=20
  out=${out:-$root/runs/experiments/cdm_conditioning_augmentation_smoke}
else
  out=${out:-$root/runs/experiments/cdm_conditioning_augmentation}
fi
[ -x "$iris" ] || { echo "run.sh: no iris program at $iris (build it, or set IRIS_BIN)" >&2; exit 1; }
command -v jq >/dev/null || { echo "run.sh: needs jq (tools/setup.sh installs it)" >&2; exit 1; }
# A smoke run starts afresh each time (it checks the pipeline of the program it is given).
if [ "$smoke" = 1 ]; then rm -rf "$out/runs" "$out/samples" "$out/scores"; fi
mkdir -p "$out"
log() { echo "== $*"; }
t_start=$(date +%s)
count=$(( 10 * per_class ))   # samples per method (Fashion-MNIST has 10 classes)

# ---- data ------------------------------------------------------------------------------------------------
data=$root/data-cache/fashion-mnist
limit=()
if [ "$smoke" = 1 ]; then data=$out/data; limit=(--limit 512); fi
"$iris" shard fashion-mnist --out "$data" --lowres 7,14 "${limit[@]}"

# ---- training ----------------------------------------------------------------------------------------------
# Every stage samples with DPM-Solver++(2M) at $sample_steps steps on its training schedule respaced
# (diffusion.sample_schedule=respaced: the SR config's own fresh linear schedule with beta 1e-4..0.1 is
# meant for 50-100 steps and stops far from pure noise at 25). The settings go into each checkpoint's config,
# which iris sweep takes its defaults from.
common=(--set "data.dir=$data/train" --set "data.val_dir=$data/test" --set train.keep_checkpoints=1
        --set diffusion.sampler=dpmpp2m --set diffusion.sample_schedule=respaced
        --set "diffusion.sample_steps=$sample_steps" --set "train.seed=$train_seed")
if [ "$smoke" = 1 ]; then
  common+=(--set train.log_every=4 --set train.sample_every=0 --set train.batch_size=8)
else
  common+=(--set train.log_every=50 --set train.sample_every=0)
fi
base_cfg=$root/configs/fmnist_base_14.toml
sr_cfg=$root/configs/fmnist_sr_14to28_aug.toml
# model -> "config steps key=value ..."
declare -A model_spec=(
  [base14]="$base_cfg $base_steps"
  [sr_noaug]="$sr_cfg $sr_steps augment.noise=false model.aug_embedding=false"
  [sr_noise]="$sr_cfg $sr_steps augment.noise=true model.aug_embedding=true"
  [sr_blur]="$sr_cfg $sr_steps augment.noise=false model.aug_embedding=false augment.blur_prob=0.5 augment.blur_sigma=[0.4,0.6]"
  [base28]="$base_cfg $base28_steps model.resolution=28 data.image_size=28 model.channel_mults=[1,2,2] model.attention_resolutions=[7]"
)
models=(base14 sr_noaug sr_noise sr_blur base28)
train_seconds=()
for m in "${models[@]}"; do
  read -r cfg k rest <<<"${model_spec[$m]}"
  sets=(--set "train.steps=$k" --set "train.checkpoint_every=$k")
  for s in $rest; do sets+=(--set "$s"); done
  t0=$(date +%s)
  log "train $m ($k steps)"
  "$iris" train --config "$cfg" "${common[@]}" "${sets[@]}" --device cpu --run "$out/runs/$m" --resume auto
  train_seconds+=("$m=$(( $(date +%s) - t0 ))")
done
ckpt_of() { ls -1 "$out/runs/$1/checkpoints"/step_*.h5 | sort | tail -n 1; }

# ---- real-data references and the feature classifier -------------------------------------------------------
scores=$out/scores
mkdir -p "$scores"
clf=$scores/feature_classifier.h5
clf_opts=(--steps "$clf_steps" --batch 64 --width 16 --seed 0 --device cpu)
if [ ! -f "$scores/real.fd.json" ] || [ ! -f "$clf" ]; then
  log "feature classifier (real 28x28 training images) and the FD of $count real training images"
  # --generated: the first COUNT real training images, scored like a method (their FD is the floor)
  "$iris" fd --train "$data/train" --generated "$data/train" --limit "$count" --real "$data/test" \
    "${clf_opts[@]}" --save-classifier "$clf" --json "$scores/real.fd.json" >/dev/null
fi
if [ ! -f "$scores/real.cas.json" ]; then
  log "CAS of $count real training images"
  "$iris" cas --generated "$data/train" --limit "$count" --real "$data/test" "${clf_opts[@]}" \
    --json "$scores/real.cas.json" >/dev/null
fi

# ---- sampling and scoring (iris sweep) ---------------------------------------------------------------------
# Every method is an iris sweep with the same labels, seed, sampler, feature classifier and CAS options, so
# that the scores differ only by the models. The points' samples and records are OUT/samples/<method>/.
# shellcheck disable=SC2054  # fd,cas,ms is one argument
sweep_common=(--per-class "$per_class" --seed 0 --batch 50 --device cpu
              --vary sampler=dpmpp2m --vary "steps=$sample_steps"
              --metrics fd,cas,ms --real "$data/test" --classifier "$clf"
              --classifier-steps "$clf_steps" --classifier-batch 64 --classifier-width 16)
# method -> "stages|extra axes"
declare -A method_spec=(
  [cascade_noaug]="base14 sr_noaug|"
  [cascade_noise]="base14 sr_noise|--vary 1:aug_level=$levels --vary 1:truncated=0,1"
  [cascade_blur]="base14 sr_blur|"
  [base28]="base28|"
)
methods=(cascade_noaug cascade_noise cascade_blur base28)
for name in "${methods[@]}"; do
  IFS='|' read -r stages extra <<<"${method_spec[$name]}"
  args=()
  for m in $stages; do args+=(--stage "$(ckpt_of "$m")"); done
  log "sweep $name"
  t0=$(date +%s)
  # shellcheck disable=SC2086  # extra: the method's own --vary axes
  "$iris" sweep "${args[@]}" "${sweep_common[@]}" $extra --out "$out/samples/$name"
  # the wall time of the sweep that did the work (a re-run that skips every point keeps it)
  [ -f "$out/samples/$name/seconds" ] || echo "$(( $(date +%s) - t0 ))" > "$out/samples/$name/seconds"
done

# ---- the table ---------------------------------------------------------------------------------------------
sw() { echo "$out/samples/$1/sweep.json"; }
# One row of numbers per point of a sweep (optionally filtered): s, truncated, FD, CAS, accuracy, ms/image.
rows() {
  jq -r "[.points[] | select($2)] | ${3:-.[]} | [(.values[\"1:aug_level\"] // \"-\"),
          (.values[\"1:truncated\"] // \"-\"), .scores.fd, .scores.cas, .scores.accuracy, .ms_per_image]
          | map(tostring) | @tsv" "$(sw "$1")"
}
# the best point by FD (lower) of those selected
best() { rows "$1" "$2" 'min_by(.scores.fd)'; }
row() {  # label, then the tsv fields
  local label=$1; shift
  IFS=$'\t' read -r s tr fd cas acc ms <<<"$1"
  awk -v l="$label" -v s="$s" -v t="$tr" -v fd="$fd" -v cas="$cas" -v acc="$acc" -v ms="$ms" 'BEGIN {
    tr = (t == "-") ? "-" : (t == "1" ? "yes" : "no")
    printf "| %s | %s | %s | %.4f | %.1f%% | %.1f%% | %.1f |\n", l, s, tr, fd, 100 * cas, 100 * acc, ms }'
}
{
  echo "| method | s | truncated | FD | CAS top-1 | accuracy | ms / image |"
  echo "|---|---|---|---|---|---|---|"
  row "base14 -> SR, no augmentation" "$(rows cascade_noaug true)"
  row "base14 -> SR, noise aug, best s (non-truncated)" "$(best cascade_noise '.values["1:truncated"] == "0"')"
  row "base14 -> SR, noise aug, best s (truncated)" "$(best cascade_noise '.values["1:truncated"] == "1"')"
  row "base14 -> SR, blur augmentation" "$(rows cascade_blur true)"
  row "28x28 base alone" "$(rows base28 true)"
  rf=$scores/real.fd.json; rc=$scores/real.cas.json
  awk -v fd="$(jq -r .fd "$rf")" -v cas="$(jq -r .top1 "$rc")" -v acc="$(jq -r .classifier_top1 "$rf")" \
      -v n="$count" 'BEGIN {
    printf "| real data (%d training images; accuracy: the test set) | | | %.4f | %.1f%% | %.1f%% | |\n",
           n, fd, 100 * cas, 100 * acc }'
  echo
  echo "Noise augmentation, every sampling-time level s (base14 -> SR trained with s ~ U[0, 0.5]):"
  echo
  echo "| method | s | truncated | FD | CAS top-1 | accuracy | ms / image |"
  echo "|---|---|---|---|---|---|---|"
  while IFS= read -r line; do row "base14 -> SR, noise aug" "$line"; done < <(rows cascade_noise true)
} > "$out/results.md"
jq -n --slurpfile rf "$scores/real.fd.json" --slurpfile rc "$scores/real.cas.json" \
  --slurpfile a "$(sw cascade_noaug)" --slurpfile b "$(sw cascade_noise)" --slurpfile c "$(sw cascade_blur)" \
  --slurpfile d "$(sw base28)" --argjson count "$count" '
  def pts(x): [x.points[] | {values, scores, ms_per_image}];
  {samples: $count,
   cascade_noaug: pts($a[0]), cascade_noise: pts($b[0]), cascade_blur: pts($c[0]), base28: pts($d[0]),
   real: {fd: $rf[0].fd, cas: $rc[0].top1, accuracy: $rf[0].classifier_top1}}' > "$out/results.json"

echo
echo "CDM conditioning augmentation, Fashion-MNIST 14x14 base -> 28x28 SR: $count samples per method" \
     "($per_class per class), training steps base14 $base_steps, SR $sr_steps each, base28 $base28_steps," \
     "training seed $train_seed"
echo "training seconds: ${train_seconds[*]}"
echo "sweep seconds: $(for n in "${methods[@]}"; do printf '%s=%s ' "$n" "$(cat "$out/samples/$n/seconds")"; done)"
cat "$out/results.md"
echo "(FD: iris fd's statistic in the features of a classifier trained on the real 28x28 training images,"
echo " against the real test set, lower is better; CAS: top-1 on the real test set of a classifier trained"
echo " on the samples; accuracy: the real-trained feature classifier's top-1 on the samples with their"
echo " labels; s: the sampling-time augmentation level of the noise-augmented SR stage; truncated: the base"
echo " stage stopped at level s. Sampling: DPM-Solver++(2M), $sample_steps steps, guidance 2 on the base models)"
echo "wall time $(( $(date +%s) - t_start )) s; results in $out"

if [ "$smoke" = 1 ]; then
  # The smoke run checks that the pipeline produced every score, not what the scores are.
  n_levels=$(tr ',' '\n' <<<"$levels" | wc -l)
  for name in "${methods[@]}"; do
    f=$(sw "$name")
    [ -f "$f" ] || { echo "smoke: $name has no sweep.json" >&2; exit 1; }
    want=1
    [ "$name" = cascade_noise ] && want=$(( 2 * n_levels ))
    got=$(jq '.points | length' "$f")
    [ "$got" = "$want" ] || { echo "smoke: $name has $got points, expected $want" >&2; exit 1; }
    for key in fd cas accuracy; do
      bad=$(jq "[.points[] | select((.scores.$key | type) != \"number\")] | length" "$f")
      [ "$bad" = 0 ] || { echo "smoke: $name has $bad points without a number for $key" >&2; exit 1; }
    done
  done
  for key in .fd .classifier_top1; do
    [ "$(jq -r "$key | type" "$scores/real.fd.json")" = number ] || { echo "smoke: real data has no $key" >&2; exit 1; }
  done
  [ "$(jq -r '.top1 | type' "$scores/real.cas.json")" = number ] || { echo "smoke: real data has no CAS" >&2; exit 1; }
  echo "smoke: ${#methods[@]} methods ($(( 3 + 2 * n_levels )) points) and the real data scored"
fi
