#!/usr/bin/env bash
# Set up (see setup.sh), then the main job on the embedded benchmark: a short Meta-World
# train-then-evaluate run with a results table (outputs/demo/results.json) and one video per episode.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
wamzoo train mw-tiny --out outputs/demo/runs
wamzoo eval outputs/demo/runs/mw-tiny --suite mw-easy --episodes 5 \
  --json outputs/demo/results.json --video outputs/demo/videos
