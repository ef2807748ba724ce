"""The service's settings as params.yaml gives them, and the real server process, for a test's workdir."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from src.service.process import REPO_ROOT, SERVICE_COMMAND, ServerProcess, free_port
from src.service.settings import Settings, settings_from

SERVICE_PARAMS = {"bundle_dir": "bundle", "events_db": "online/events.sqlite", "host": "127.0.0.1", "port": 8000}


def settings_for(base: Path, **overrides) -> Settings:
    """Settings as params.yaml would give them for a workdir ``base``, with ``RECSYS_*`` overrides."""
    return settings_from(SERVICE_PARAMS, base, {key: str(value) for key, value in overrides.items()})


def write_service_params(base: Path) -> Path:
    path = base / "params.yaml"
    path.write_text(yaml.safe_dump({"service": SERVICE_PARAMS}), encoding="utf-8")
    return path


def service_command(base: Path, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``python -m src.service`` to completion (for settings that must make it refuse to start)."""
    return subprocess.run(SERVICE_COMMAND, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RECSYS_PARAMS": str(write_service_params(base)), **(env or {})})


def service_process(base: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """``python -m src.service`` for a workdir ``base`` (params.yaml written there), on a free port; not started."""
    port = free_port()
    return ServerProcess(SERVICE_COMMAND, port, base / "server.log",
                         {"RECSYS_PARAMS": str(write_service_params(base)), "RECSYS_PORT": str(port), **(env or {})})
