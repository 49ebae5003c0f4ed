#!/usr/bin/env bash
# The main job: install what Iris needs, build it, shard Fashion-MNIST, train the small SR3 of
# configs/fmnist_sr3_7to28.toml (7x7 -> 28x28) for a few minutes on whatever device is there (a GPU if
# there is one), sample the test set's first images, and print PSNR/SSIM of SR3 and of bicubic upsampling
# against the truth, with the path of a PNG grid to look at.
#
#   IRIS_DEMO_MINUTES  training time in minutes (default 5); run again to train further (it resumes)
#   IRIS_DEMO_RUN      run folder (default runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${IRIS_DEMO_MINUTES:-5}
run=${IRIS_DEMO_RUN:-runs/demo}

tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > build-configure.log || { cat build-configure.log; exit 1; }
grep '^-- Iris:' build-configure.log || true
cmake --build build -j "$(nproc)" --target iris
iris=build/bin/iris
"$iris" version

echo "== shard Fashion-MNIST"
"$iris" shard fashion-mnist --out data-cache/fashion-mnist --lowres 7,14

echo "== train for ${minutes} minutes (resumes if $run has checkpoints)"
"$iris" train --config configs/fmnist_sr3_7to28.toml --run "$run" --resume auto --time-limit "$minutes"

ckpt=$(ls -1 "$run"/checkpoints/step_*.h5 | sort | tail -n 1)
echo "== sample 64 test images with $ckpt"
"$iris" sample --ckpt "$ckpt" --shard data-cache/fashion-mnist/test --count 64 --out "$run/eval" --overwrite

echo "== evaluate: SR3 and bicubic upsampling against the truth"
"$iris" eval --pred "$run/eval/samples.h5" --truth "$run/eval/samples.h5:truth" --lowres "$run/eval/samples.h5:lowres" -q
echo "look at: $run/eval/grid.png (low-res | bicubic | SR3 | truth); training grids in $run/samples/"
