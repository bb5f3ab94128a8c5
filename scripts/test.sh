#!/usr/bin/env bash
# Set up (see setup.sh), then run the whole test suite, slow tests included.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
python -m pytest -q "$@"
