#!/usr/bin/env bash
# One command: set up, then run the test suite (small data, a minute or two).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet -r requirements-dev.txt  # mkdocs: tests/test_docs.py builds the docs site
export PATH="$PWD/.venv/bin:$PATH"  # stage commands run `python` from the venv
export DVC_NO_ANALYTICS=1
python -m pytest -q "$@"
