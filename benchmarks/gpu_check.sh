#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): device tests, bfloat16 latency at the papers' sizes, a bfloat16
# training with its peak memory -> results/gpu_check.md. `--device cpu` runs the same code at tiny sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || source scripts/setup.sh >/dev/null
export MUJOCO_GL=egl
exec .venv/bin/python benchmarks/gpu_check.py "$@"
