#!/usr/bin/env bash
# One command: set up, then run the test suite (small data, a minute or two).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # stage commands run `python` from the venv
export DVC_NO_ANALYTICS=1
python -m pytest -q "$@"
