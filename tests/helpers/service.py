"""The service's settings as params.yaml gives them, and the real server process, for a test's workdir."""
from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Callable

import httpx
import yaml

from src.service.settings import Settings, settings_from
from tests.helpers import REPO_ROOT
from tests.helpers.server_process import SERVICE_COMMAND, ServerProcess, free_port

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


async def kill_while_writing(url: str, kill: Callable[[], None], user_id: int, writes: int, kill_after: int,
                             first_ts: int = 1_671_000_000) -> list[dict]:
    """Fire ``writes`` concurrent listens, ``kill()`` (a kill -9) once ``kill_after`` are acknowledged; return those."""
    acknowledged: list[dict] = []
    enough = asyncio.Event()

    async def write(client: httpx.AsyncClient, n: int) -> None:
        try:
            response = await client.post(f"/users/{user_id}/listens", json={"track_id": 10, "timestamp": first_ts + n})
        except httpx.TransportError:
            return
        if response.status_code == 201:
            acknowledged.append(response.json())
            if len(acknowledged) >= kill_after:
                enough.set()

    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        tasks = [asyncio.create_task(write(client, n)) for n in range(writes)]
        await asyncio.wait_for(enough.wait(), timeout=30)
        kill()
        await asyncio.gather(*tasks)
    return list(acknowledged)
