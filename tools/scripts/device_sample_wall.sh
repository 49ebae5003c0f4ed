#!/usr/bin/env bash
# The wall time of one whole 100-step SR3 sample at batch 1 with `iris sample` (issue 15's goal: <= 0.25 s on
# an H100/H200), with CUDA graphs off and on. The benchmark U-Net (configs/sr3_bench_128.toml, 16 -> 128) has
# no trained weights, so the script makes a checkpoint of its own: 4 synthetic 128x128 photos (colour
# gradients, written with Python's standard library), `iris shard images`, one training step. The speed of a
# sampling step does not depend on the weights. Each setting runs twice (the second without the first-use
# costs of the file system); the table gives each run's process wall time and the sampling time `iris sample`
# reports. Run from the repository root on the GPU machine after tools/scripts/device_pack.sh:
#
#   tools/scripts/device_sample_wall.sh            (IRIS_BIN: the program; WORK: scratch folder)
#   IRIS_TRAIN_SETS="--set model.base_channels=16 --set model.channel_mults=1,2" \
#     tools/scripts/device_sample_wall.sh           (a small model, to try the script on a CPU)
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 2
# shellcheck disable=SC1091
[ -f .device/env.sh ] && source .device/env.sh
iris=${IRIS_BIN:-$(command -v iris || echo build/bin/iris)}
work=${WORK:-/tmp/iris-sample-wall}
read -r -a train_sets <<< "${IRIS_TRAIN_SETS:-}"
out=${OUT:-$work}
rm -rf "$work"
mkdir -p "$work/photos/all" "$out"

python3 - "$work/photos/all" <<'PY'
import struct, sys, zlib
def png(path, w, h, pixel):
    raw = b"".join(b"\0" + bytes(c for x in range(w) for c in pixel(x, y)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for i in range(4):
    png(f"{sys.argv[1]}/synthetic{i}.png", 128, 128,
        lambda x, y: ((x * 2 + 40 * i) % 256, (y * 2 + 60 * i) % 256, ((x + y) + 90 * i) % 256))
PY
"$iris" shard images "$work/photos" --out "$work/shards" --size 128 --lowres 16 --val-fraction 0.5 \
  > "$work/shard.log" 2>&1
"$iris" train --config configs/sr3_bench_128.toml "${train_sets[@]}" --run "$work/run" \
  --set data.dir="$work/shards/train" --set train.batch_size=1 --stop-after 1 > "$work/train.log" 2>&1
ckpt=$(ls "$work"/run/checkpoints/step_*.h5 | tail -1)

printf '%-8s %-4s %10s   %s\n' graphs run "wall s" "what iris sample said of its time"
for graphs in 0 1; do
  for rep in 1 2; do
    log=$work/sample-graphs$graphs-$rep.log
    start=$(date +%s.%N)
    rc=0
    IRIS_CUDA_GRAPHS=$graphs "$iris" sample --ckpt "$ckpt" --shard "$work/shards/val" --count 1 --batch 1 \
      --steps 100 --sampler ddim --out "$work/out-$graphs-$rep" --overwrite > "$log" 2>&1 || rc=$?
    end=$(date +%s.%N)
    said=$(grep -aE "sampl.* in [0-9.]+ ?s|CUDA graphs" "$log" | tr '\n' ' ' | cut -c1-160)
    [ "$rc" -ne 0 ] && said="rc $rc: $(tail -n 2 "$log" | tr '\n' ' ' | cut -c1-160)"
    printf '%-8s %-4s %10.2f   %s\n' "$graphs" "$rep" "$(awk "BEGIN { print $end - $start }")" "$said"
    cp "$log" "$out/" 2> /dev/null || true
  done
done
