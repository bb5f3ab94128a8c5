#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: MuJoCo GL libraries, a virtual environment in .venv,
# torch (CPU wheels on this machine's disk), wamzoo and every plugin under plugins/.
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! dpkg -s libegl1 libgl1-mesa-dri >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip 2>&1 | grep -v -i warning || true
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  $PIP install -q "torch==2.14.1" "torchvision==0.29.1" 2>&1 | grep -v -i warning || true
fi
plugins=()
for p in plugins/*/pyproject.toml; do [ -e "$p" ] && plugins+=("-e" "$(dirname "$p")"); done
$PIP install -q -e ".[test]" "${plugins[@]}" 2>&1 | grep -v -i warning || true

export MUJOCO_GL=egl
export PATH="$ROOT/.venv/bin:$PATH"
