"""A server as a child process on a loopback port, started and waited for until ``/ready`` answers 200.

The tests (a real ``python -m src.service`` for kill -9 durability) and the load benchmarks (the service
and the course-pattern app) start servers the same way. It is test and benchmark tooling, not part of the
shipped service: the benchmarks import it from here (``tests.helpers.server_process``).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import REPO_ROOT

SERVICE_COMMAND = (sys.executable, "-m", "src.service")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):  # HTTPError (a 503) is a URLError
        return False


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn workers are children), found by each process's parent id.

    ``/proc/<pid>/task/<tid>/children`` would be shorter, but kernels without CONFIG_PROC_CHILDREN lack
    it (this machine's), and reading it there silently found the supervisor alone.
    """
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    pids, index = [pid], 0
    while index < len(pids):
        pids.extend(parents.get(pids[index], ()))
        index += 1
    return pids


def worker_pids(pid: int) -> list[int]:
    """The uvicorn worker processes of a supervisor (spawned children; not multiprocessing's resource tracker)."""
    workers = []
    for child in process_tree(pid)[1:]:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            pass
    return workers


class ServerProcess:
    """``command`` run from the repository root with ``env`` added, serving on 127.0.0.1:``port``.

    ``start`` returns once ``/ready`` answers 200 (``startup_s`` says after how long) or raises with the
    end of the server's output; as a context manager it is stopped (SIGTERM, then SIGKILL) on exit.
    """

    def __init__(self, command: list[str] | tuple[str, ...], port: int, log: Path, env: dict[str, str] | None = None):
        self.command = list(command)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        with self.log.open("ab") as sink:
            started = time.perf_counter()
            self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=self.env, stdout=sink,
                                            stderr=subprocess.STDOUT)
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before it was ready:\n{self.output()}")
            if answers_ready(self.url):
                self.startup_s = time.perf_counter() - started
                return self
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Send ``sig`` (SIGTERM: uvicorn's graceful stop) and wait; SIGKILL if it is still running after ``grace``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def output(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
