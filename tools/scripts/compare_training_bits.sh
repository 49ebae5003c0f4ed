#!/usr/bin/env bash
# Trains the demo's SR3 (configs/fmnist_sr3_7to28.toml) for a few steps with two `iris` binaries and compares
# the final checkpoints bit for bit (`iris ckpt diff`) and the logs (timings stripped): the check that a change
# to the training step left its results alone. The run clips every step (train.grad_clip 0.05), has a spike
# guard that fires (train.spike_zscore 0.3 after 2 norms) and a NaN gradient injected at step 7, so the
# clipping, the skip decisions, the skipped updates and their warnings are all compared.
#
#   tools/scripts/compare_training_bits.sh OLD_IRIS NEW_IRIS SHARDS [DEVICE]
#
# SHARDS: a Fashion-MNIST shard folder with train/ and test/ (iris shard fashion-mnist --out SHARDS --limit 512
# --lowres 7). DEVICE: cpu (default) or cuda. Exit 0 when checkpoints and logs are identical.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,12p "$0"; exit 2; }
old=$1 new=$2 shards=$3 device=${4:-cpu}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
train() {  # train BINARY RUN
  IRIS_TEST_NAN_GRAD_AT_STEP=7 "$1" train --config "$root/configs/fmnist_sr3_7to28.toml" --device "$device" \
    --threads 2 --set "data.dir=$shards/train" --set "data.val_dir=$shards/test" --set train.steps=14 \
    --set train.batch_size=8 --set train.log_every=5 --set train.sample_every=0 --set train.checkpoint_every=0 \
    --set train.spike_zscore=0.3 --set train.spike_warmup=2 --set train.grad_clip=0.05 --run "$work/$2" 2>&1 |
    sed -e 's/ *[0-9.]* img\/s.*//' -e "s|$work/$2|RUN|g" > "$work/$2.log"
}
train "$old" old
train "$new" new
rc=0
"$new" ckpt diff "$work/old/checkpoints/step_000000014.h5" "$work/new/checkpoints/step_000000014.h5" || rc=1
if diff "$work/old.log" "$work/new.log"; then echo "logs identical (timings stripped)"; else rc=1; fi
grep -c "update skipped" "$work/new.log" | sed 's/^/updates skipped (warnings): /'
exit $rc
