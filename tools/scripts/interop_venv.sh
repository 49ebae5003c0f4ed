#!/usr/bin/env bash
# Creates BUILD/interop-venv: a Python virtual environment with the real clients the interop tests (ctest
# label `interop`) check Iris's files against: TensorBoard's event reader, safetensors, numpy. Versions are
# pinned so that a test failure means Iris changed, not a client. Without the environment (no python3-venv,
# no access to PyPI) the interop tests report themselves skipped, naming this script.
#   tools/scripts/interop_venv.sh [BUILD]     (default: build)
set -euo pipefail
build=${1:-build}
venv=$build/interop-venv
packages=(tensorboard==2.21.0 safetensors==0.8.0 numpy==2.4.6)
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import tensorboard, safetensors, numpy" 2>/dev/null; then
  echo "interop: $venv ready"
  exit 0
fi
rm -rf "$venv"
# A half-made environment would make the tests fail instead of skip: remove it on any failure.
trap 'rm -rf "$venv"; echo "interop: could not make $venv (python3-venv, PyPI?)" >&2' ERR
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
"$venv/bin/python" -c "import tensorboard, safetensors, numpy; print('interop: tensorboard', tensorboard.__version__, '| safetensors', safetensors.__version__, '| numpy', numpy.__version__)"
