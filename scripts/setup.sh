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
quiet() {  # run a step silently; if it fails, show everything it printed and stop
  local log; log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}
quiet $PIP install -q --upgrade pip
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  quiet $PIP install -q "torch==2.14.1" "torchvision==0.29.1"
fi
plugins=()
for p in plugins/*/pyproject.toml; do [ -e "$p" ] && plugins+=("-e" "$(dirname "$p")"); done
quiet $PIP install -q -e ".[test]" "${plugins[@]}"

export MUJOCO_GL=egl
export PATH="$ROOT/.venv/bin:$PATH"
