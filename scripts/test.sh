#!/usr/bin/env bash
# One command: set up (requirements.txt and requirements-dev.txt), then run the whole test suite (small data,
# a few minutes). Day to day, `bash scripts/test.sh -m "not slow"` leaves out the real-server and repro tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
export PATH="$PWD/.venv/bin:$PATH"  # stage commands run `python` from the venv
export DVC_NO_ANALYTICS=1
python -m pytest -q "$@"
