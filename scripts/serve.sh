#!/usr/bin/env bash
# Start the recommendation service on 127.0.0.1:8000 (docs at /docs, metrics at /metrics).
# Needs `bash scripts/setup.sh` (the venv) and the bundle in models/serving: `bash scripts/pipeline.sh` builds it,
# `dvc pull` fetches a pushed one (docs/sharing.md);
# without the bundle the service says so and exits 2.
# Settings: params.yaml `service:`; override with RECSYS_BUNDLE_DIR, RECSYS_EVENTS_DB, RECSYS_EVENTS_URL
# (postgresql://user@host:port/db: replicas share it, docs/replicas.md), RECSYS_EVENTS_POOL_SIZE, RECSYS_HOST,
# RECSYS_PORT, RECSYS_WORKERS (processes on the port), RECSYS_WRITE_TOKEN, RECSYS_EVENTS_SYNCHRONOUS (NORMAL|FULL),
# RECSYS_PARAMS.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  echo "error: .venv is missing: run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
export PATH="$PWD/.venv/bin:$PATH"
exec python -m src.service  # checks settings and bundle first: exit 2 with a message
