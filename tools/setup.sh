#!/usr/bin/env bash
# Installs the system packages Iris builds and runs with, on Debian 12 / Ubuntu 22.04 or newer.
# Nothing else is installed by hand. The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is optional and not
# installed here: when /usr/local/cuda (or nvcc on PATH) exists, the build uses it.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev            # CPU GEMM (loaded at run time; see framework/cpu/blas.h)
  libhdf5-dev                # shards, checkpoints
  libopenmpi-dev openmpi-bin # data parallelism across processes
  libpng-dev libjpeg-dev     # image codecs
  zlib1g-dev                 # gzip-compressed IDX files (Fashion-MNIST)
  libtomlplusplus-dev        # configs
  libcli11-dev               # the iris command line
  nlohmann-json3-dev         # metrics.jsonl, bench output
  doctest-dev                # tests
  dataset-fashion-mnist      # the demo's data
  jq                         # tools/experiments/*/run.sh read the JSON results
  python3-venv               # the interop tests' clients (tools/scripts/interop_venv.sh)
)
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
