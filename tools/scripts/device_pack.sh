#!/usr/bin/env bash
# Builds Iris with CUDA on this machine (no GPU needed) and packs what one GPU session needs into
# .device.tar.xz (ignored by git): iris, test_gpu, the shared libraries they load (OpenBLAS, which Iris
# opens with dlopen, included) and a 4,096-image Fashion-MNIST shard set for the training run. The raw
# folder is over the device tool's 64 MiB carry limit; compressed it is ~20 MB.
#
#   tools/scripts/device_pack.sh            # then, with the device tool:
#   run  carry [".device.tar.xz"]  command "tar xJf .device.tar.xz && bash tools/scripts/device_run.sh"
#   run  carry [".device.tar.xz"]  command "tar xJf .device.tar.xz && bash tools/scripts/device_train.sh"
#   run  carry [".device.tar.xz"]  command "tar xJf .device.tar.xz && bash tools/scripts/device_compare.sh sample32 sample1"
#   run  carry [".device.tar.xz"]  command "tar xJf .device.tar.xz && bash tools/scripts/device_compare.sh train"
#
#   IRIS_CUDA_BUILD  build folder (default build-cuda); IRIS_CUDA_ARCH  CUDA architectures (default 90)
#   IRIS_PACK        the packing script (default tools/scripts/pack_binaries.sh)
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
build=${IRIS_CUDA_BUILD:-build-cuda}
pack=${IRIS_PACK:-tools/scripts/pack_binaries.sh}
[ -x "$pack" ] || { echo "device_pack: no pack script at $pack (set IRIS_PACK)" >&2; exit 2; }

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${IRIS_CUDA_ARCH:-90}"
fi
grep -q '^IRIS_CUDA:BOOL=ON' "$build/CMakeCache.txt" || { echo "device_pack: $build is not a CUDA build" >&2; exit 2; }
ninja -C "$build" -j "$(nproc)" iris test_gpu

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"$build/bin/iris" shard fashion-mnist --out "$data/fmnist" --limit 4096 --lowres 7 > /dev/null

"$pack" "$build/bin/iris" "$build/tests/test_gpu" "$data/fmnist"
strip --strip-unneeded .device/bin/iris .device/bin/test_gpu
# OpenBLAS is opened with dlopen (framework/cpu/blas.cpp), so ldd does not list it.
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  [ -n "$path" ] && cp -L "$path" .device/lib/
done
grep -qx '/.device.tar.xz' .git/info/exclude 2> /dev/null || echo '/.device.tar.xz' >> .git/info/exclude
tar -cf - .device | xz -T"$(nproc)" -6 > .device.tar.xz
rm -rf .device
ls -l .device.tar.xz | awk '{printf "packed .device.tar.xz: %.1f MB\n", $5 / 1e6}'
