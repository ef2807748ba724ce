#!/usr/bin/env bash
# One command: a markdown pull-request report of the workspace against BASE (default: main), with images.
# Writes reports/pr/report.md and reports/pr/*.png (git-ignored) and prints the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export DVC_NO_ANALYTICS=1
python -m src.recsys.report "$@"
