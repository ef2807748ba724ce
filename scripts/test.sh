#!/usr/bin/env bash
# One command: set up, then run the test suite (small data, a minute or two).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DVC_NO_ANALYTICS=1
.venv/bin/python -m pytest -q "$@"
