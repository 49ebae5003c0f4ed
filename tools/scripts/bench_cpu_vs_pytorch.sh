#!/usr/bin/env bash
# Iris against PyTorch eager on the CPU, side by side: the same models and steps (tools/bench/SR3_BENCH.md),
# each run alternated between the two N times, then the medians and Iris's speed relative to PyTorch.
# Alternating in one sitting is what makes the ratio mean something on a shared machine.
#
#   tools/scripts/bench_cpu_vs_pytorch.sh [--runs N] [--threads T] [--iris PATH] [--python PATH] [--rows LIST]
#                                         [--iris-args "ARGS"] [--compile none|default|reduce-overhead]
#
# --python: a Python with PyTorch (e.g. a throwaway virtual environment: python3 -m venv /tmp/tv &&
# /tmp/tv/bin/pip install torch numpy). PyTorch is never a dependency of Iris. --rows: a comma-separated
# subset of train32,sample32,fmnist (default: all three). --iris-args: more `iris bench` options, e.g.
# "--cpu-conv im2col" to time Iris without oneDNN. --compile: PyTorch's side through torch.compile with that
# mode (bench_pytorch.py --compile; its untimed warm-up then includes the compilation, minutes on two cores,
# and at least 3 warm-up steps are run), default none (eager).
set -euo pipefail
runs=5 threads=2 iris=build/bin/iris python=python3 rows=train32,sample32,fmnist iris_args="" compile=none
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --iris) iris=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --iris-args) iris_args=$2; shift 2 ;;
    --compile) compile=$2; shift 2 ;;
    *) echo "bench_cpu_vs_pytorch.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[[ -x $iris ]] || { echo "bench_cpu_vs_pytorch.sh: no iris binary at '$iris' (--iris PATH)" >&2; exit 2; }
"$python" -c "import torch" 2>/dev/null || {
  echo "bench_cpu_vs_pytorch.sh: '$python' has no torch (--python PATH)" >&2; exit 2; }
case $compile in none | default | reduce-overhead) ;; *)
  echo "bench_cpu_vs_pytorch.sh: --compile takes none, default or reduce-overhead, not '$compile'" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "bench_cpu_vs_pytorch.sh: needs jq" >&2; exit 2; }

# row -> "config model batch mode steps warmup"
declare -A spec=(
  [train32]="sr3_cpu_bench_32 sr3_cpu_bench_32 8 train 10 3"
  [sample32]="sr3_cpu_bench_32 sr3_cpu_bench_32 8 sample 20 3"
  [fmnist]="fmnist_sr3_7to28 fmnist_sr3_7to28 32 train 6 2"
)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-10s %-6s %10s %10s %8s %12s %12s %10s\n' row batch iris_ms torch_ms speed iris_peak_MiB torch_peak_MiB iris_GF/s
IFS=, read -ra wanted <<<"$rows"
for row in "${wanted[@]}"; do
  [[ -n ${spec[$row]:-} ]] || { echo "bench_cpu_vs_pytorch.sh: unknown row '$row'" >&2; exit 2; }
  read -r config model batch mode steps warmup <<<"${spec[$row]}"
  iris_ms=() torch_ms=() iris_mem=() torch_mem=() iris_gf=()
  torch_warmup=$warmup
  [[ $compile != none && $warmup -lt 3 ]] && torch_warmup=3  # bench_pytorch.py's floor when compiling
  for ((r = 0; r < runs; ++r)); do
    j=$("$iris" bench --config "$root/configs/$config.toml" --device cpu --threads "$threads" --batch "$batch" \
          --mode "$mode" --steps "$steps" --warmup "$warmup" $iris_args 2>/dev/null | tail -n 1)
    iris_ms+=("$(jq -r .step_ms <<<"$j")")
    # The process's peak resident memory, as PyTorch's is measured (minus what it held at start).
    iris_mem+=("$(jq -r '(.peak_rss_bytes // .peak_bytes) / 1048576' <<<"$j")")
    iris_gf+=("$(jq -r '.tflops * 1000' <<<"$j")")
    j=$("$python" "$here/bench_pytorch.py" --device cpu --model "$model" --threads "$threads" --precision f32 \
          --batch "$batch" --mode "$mode" --steps "$steps" --warmup "$torch_warmup" --compile "$compile" | tail -n 1)
    torch_ms+=("$(jq -r .step_ms <<<"$j")")
    torch_mem+=("$(jq -r '.peak_bytes / 1048576' <<<"$j")")
  done
  im=$(printf '%s\n' "${iris_ms[@]}" | median)
  tm=$(printf '%s\n' "${torch_ms[@]}" | median)
  printf '%-10s %-6s %10.1f %10.1f %7.2fx %12.0f %12.0f %10.0f\n' "$row" "$batch" "$im" "$tm" \
    "$(awk -v a="$im" -v b="$tm" 'BEGIN {print b / a}')" \
    "$(printf '%s\n' "${iris_mem[@]}" | median)" "$(printf '%s\n' "${torch_mem[@]}" | median)" \
    "$(printf '%s\n' "${iris_gf[@]}" | median)"
done
torch_kind="PyTorch eager"
[[ $compile != none ]] && torch_kind="PyTorch torch.compile (mode $compile)"
echo "(torch = $torch_kind; speed = PyTorch ms / Iris ms: above 1, Iris is faster; medians of $runs alternated runs, $threads threads)"
