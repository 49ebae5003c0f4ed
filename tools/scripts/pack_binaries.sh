#!/usr/bin/env bash
# Gathers programs built here, with the shared libraries they load, into .device/ (ignored by git) so that
# they run on another machine of the same distribution family, e.g. a GPU machine lent for a session.
#
#   tools/scripts/pack_binaries.sh PROGRAM... [FOLDER...]
#     .device/bin/   the programs
#     .device/lib/   every library ldd lists for them, except the C runtime and the CUDA libraries (the GPU
#                    machine brings its own driver and CUDA runtime of the same major version)
#     .device/data/  the folders given (e.g. a small shard set)
#     .device/env.sh source it there: puts .device/lib first on the loader path, then the machine's CUDA
#                    libraries (/usr/local/cuda/lib64 and pip's nvidia-* packages when present)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM_OR_FOLDER..." >&2; exit 2; }
top=$(git rev-parse --show-toplevel)
dest=$top/.device
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/data"
grep -qx '/.device/' "$top/.git/info/exclude" 2> /dev/null || echo '/.device/' >> "$top/.git/info/exclude"
# Libraries every Linux machine has, and the CUDA ones the GPU machine must provide itself.
system_libs='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libgcc_s|libstdc\+\+|libresolv)'
cuda_libs='^lib(cuda|cudart|cublas|cublasLt|cudnn|nccl|nvrtc|curand|cufft|cusolver|cusparse|nvJitLink|nvToolsExt)'
for item in "$@"; do
  if [ -d "$item" ]; then
    cp -r "$item" "$dest/data/"
    continue
  fi
  [ -f "$item" ] || { echo "pack_binaries: '$item' is neither a file nor a folder" >&2; exit 2; }
  cp "$item" "$dest/bin/"
  while read -r lib path; do
    if [[ $lib =~ $system_libs || $lib =~ $cuda_libs ]]; then continue; fi
    [ -f "$path" ] && cp -Ln "$path" "$dest/lib/"
  done < <(ldd "$item" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
done
cat > "$dest/env.sh" <<'ENV'
# Sourced on the machine that runs the packed programs.
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_pip_cuda=$(ls -d /usr/lib/python3*/site-packages/nvidia/*/lib /usr/local/lib/python3*/*-packages/nvidia/*/lib \
            2> /dev/null | paste -sd: -)
export LD_LIBRARY_PATH="$_here/lib${_pip_cuda:+:$_pip_cuda}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$_here/bin:$PATH"
ENV
du -sh "$dest" | awk '{print "packed", $1, "into .device/"}'
