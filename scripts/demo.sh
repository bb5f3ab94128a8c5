#!/usr/bin/env bash
# Set up (see setup.sh), then the main job on the embedded benchmark: evaluate the pretrained
# Fast-WAM policy that ships with its plugin (no training, nothing downloaded) on Meta-World mw-easy,
# with a per-task results table (outputs/demo/results.json) and one video per episode.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
wamzoo eval fast-wam.mw-easy-small --suite mw-easy --episodes 5 \
  --json outputs/demo/results.json --video outputs/demo/videos
