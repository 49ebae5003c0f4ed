#!/usr/bin/env bash
# Installs the system packages Iris builds and runs with, on Debian 12 / Ubuntu 22.04 or newer.
# Nothing else is installed by hand. The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is optional and not
# installed here: when /usr/local/cuda (or nvcc on PATH) exists, the build uses it.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev            # CPU GEMM (loaded at run time; see framework/cpu/blas.h)
  libdnnl-dev                # oneDNN: CPU convolutions (framework/cpu/conv_onednn.h)
  libhdf5-dev                # shards, checkpoints
  libopenmpi-dev openmpi-bin # data parallelism across processes
  libpng-dev libjpeg-dev     # image codecs
  zlib1g-dev                 # gzip-compressed IDX files (Fashion-MNIST)
  libtomlplusplus-dev        # configs
  libcli11-dev               # the iris command line
  nlohmann-json3-dev         # metrics.jsonl, bench output
  libcpp-httplib-dev         # the `iris rate` study's web server (and the browser tests' WebDriver client)
  doctest-dev                # tests
  dataset-fashion-mnist      # the demo's data
  jq                         # tools/experiments/*/run.sh read the JSON results
  python3-venv               # the interop tests' clients (tools/scripts/interop_venv.sh)
)
# Installed where the distribution has them (Debian does), reported otherwise: the browser tests (label
# browser) drive the `iris rate` page in headless Chromium and report themselves skipped without it. Ubuntu
# ships Chromium as a snap (other package names, not installable by apt in a container).
optional=(chromium chromium-driver)
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ]; then
  echo "setup: all $((${#packages[@]} + ${#optional[@]})) packages already installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
available=()
for p in "${missing_optional[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then available+=("$p"); else
    echo "setup: this distribution has no package $p; the browser tests will report themselves skipped"
  fi
done
if [ ${#available[@]} -gt 0 ]; then
  echo "setup: installing ${available[*]}"
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${available[@]}"
fi
