#!/usr/bin/env bash
# One command: set up, build the whole pipeline on the default (synthetic) data, then store what it
# built in the default DVC remote (`dvc push`; docs/sharing.md). RECSYS_PUSH=0 skips the push.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"  # stage commands run `python` from the venv
export DVC_NO_ANALYTICS=1
# params that select Spark (engine.name or als.engine: spark, docs/spark.md) need pyspark and Java 17
if python -c 'import sys, yaml; p = yaml.safe_load(open("params.yaml")); sys.exit(0 if "spark" in (p["engine"]["name"], p["als"]["engine"]) else 1)'; then
  python -m pip install --quiet -r requirements-spark.txt
fi
dvc repro "$@"
if [ "${RECSYS_PUSH:-1}" != "0" ]; then
  remote="$(dvc remote default 2>/dev/null || true)"
  where="$(dvc remote list 2>/dev/null | awk -v r="$remote" '$1 == r { print $2 }')"
  if [ -z "$remote" ]; then
    echo "warning: no default DVC remote: outputs are only in this clone's cache (dvc remote add -d ...)" >&2
  elif dvc push; then
    echo "Pushed the outputs of dvc.lock to DVC remote '$remote' ($where): a clone gets them with 'dvc pull'."
  else  # never fails the pipeline: the outputs are built and in .dvc/cache either way
    echo "warning: 'dvc push' to '$remote' ($where) failed: outputs are only in this clone's cache; retry with 'dvc push'" >&2
  fi
fi
echo "Done. Headline: python -m src.recsys.headline; review report: bash scripts/report.sh [BASE]"
