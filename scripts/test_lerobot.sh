#!/usr/bin/env bash
# The LeRobot integration's tests (integrations/lerobot) in LeRobot's own Python 3.12 environment, made when
# missing at $LEROBOT_CI_VENV (default: ../lerobot-ci-venv beside the repository) with LeRobot pinned, wamzoo,
# its plugins and lerobot_policy_wamzoo installed editable. The core's environment (.venv) never sees LeRobot.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LEROBOT="lerobot[fastwam,metaworld,training]==0.6.1"
VENV="${LEROBOT_CI_VENV:-$ROOT/../lerobot-ci-venv}"
quiet() {  # run a step silently; if it fails, show everything it printed and stop
  local log; log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}
if ! dpkg -s libegl1 libgl1-mesa-dri >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libegl1 libgl1-mesa-dri >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
  PY="$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 || true)"
  PY="${PY:-$(command -v python3.12 || true)}"
  [ -n "$PY" ] || { echo "test_lerobot.sh: LeRobot 0.6.1 needs Python 3.12; install it (pyenv install 3.12)" >&2; exit 1; }
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
PINS="$ROOT/integrations/lerobot/constraints.txt"  # the whole environment pinned: no resolver backtracking
quiet $PIP install -q -c "$PINS" --upgrade pip
plugins=()
for p in plugins/*/pyproject.toml; do [ -e "$p" ] && plugins+=("-e" "$(dirname "$p")"); done
quiet $PIP install -q -c "$PINS" "$LEROBOT" -e . "${plugins[@]}" -e "integrations/lerobot[test]"
export MUJOCO_GL=egl
export PATH="$VENV/bin:$PATH"
cd integrations/lerobot
"$VENV/bin/python" -m pytest -q "$@"
