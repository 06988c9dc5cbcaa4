#!/usr/bin/env bash
# The GPU benchmark, prepared to run in under 5 minutes on one H100/H200:
#   paper-256 decode frames/s at batch 1, 8, 32 in bf16, with and without torch.compile;
#   a training step's samples/s at batch 16 with AMP (bf16 autocast); peak memory; the device named.
#
# Usage (from anywhere; runs against this checkout's src/):
#   benchmarks/gpu.sh [--out FILE]            # default FILE: benchmarks/results/speed_gpu.json
#   benchmarks/gpu.sh --dry-run [--out FILE]  # tiny-64 on CPU, eager compile backend: checks the script runs
# Environment: PYTHON (default: .venv/bin/python if present, else python3), BUDGET_S (default 270):
# measurements that would start after BUDGET_S seconds are skipped and listed in the JSON.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dry_run=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --out) out="${2:?--out needs a file}"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
if [ "$dry_run" = 1 ]; then
  out="${out:-$root/benchmarks/results/speed_gpu_dryrun.json}"
  exec "$PYTHON" "$root/benchmarks/gpu_bench.py" --dry-run --json "$out"
fi
out="${out:-$root/benchmarks/results/speed_gpu.json}"
"$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu.sh: no CUDA device visible to torch")'
# a hard stop a little under 5 minutes; the JSON holds whatever finished before it
exec timeout 295 "$PYTHON" "$root/benchmarks/gpu_bench.py" --json "$out" --budget-s "${BUDGET_S:-270}"
