#!/usr/bin/env bash
# One command: set up, then build the whole pipeline on the default (synthetic) data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # stage commands run `python` from the venv
export DVC_NO_ANALYTICS=1
dvc repro "$@"
echo "Done. Headline: python -m src.recsys.headline; review report: bash scripts/report.sh [BASE]"
