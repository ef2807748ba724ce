"""The service is numpy only: it opens the bundle with ``bundle_reader`` and never loads pandas or pyarrow."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT
from tests.helpers.bundles import tiny_bundle
from tests.helpers.service import write_service_params

STARTS_AND_SERVES = """
import sys
from fastapi.testclient import TestClient
import src.service.__main__, src.service.worker
from src.service.app import create_app
from src.service.settings import load_settings

with TestClient(create_app(load_settings(), bundle_poll_s=None)) as client:  # startup maps the bundle
    response = client.get("/users/100/recommendations", params={"k": 3})
    assert response.status_code == 200 and len(response.json()["items"]) == 3, response.text
loaded = sorted(name for name in ("pandas", "pyarrow", "catboost") if name in sys.modules)
print("loaded:", loaded)
"""


def test_the_service_starts_and_serves_without_pandas_or_pyarrow(tmp_path):
    tiny_bundle(tmp_path / "bundle")  # built here, with pandas; the child process only opens it
    env = {**os.environ, "RECSYS_PARAMS": str(write_service_params(tmp_path))}
    done = subprocess.run([sys.executable, "-c", STARTS_AND_SERVES], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "loaded: []"
