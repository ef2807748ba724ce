"""The measured servers: started through ``tests.helpers.server_process`` (as the tests start theirs), with their
memory and CPU read from /proc; or an already running one at a loopback URL."""
from __future__ import annotations

import ipaddress
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.helpers import REPO_ROOT
from tests.helpers.server_process import SERVICE_COMMAND, ServerProcess, free_port, process_tree

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COURSE_APP = REPO_ROOT / "benchmarks" / "course_pattern_app.py"


def check_loopback(url: str) -> None:
    """Load goes to this machine only."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"{url}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile (mapped bundle pages) of the process tree, in KiB."""
    totals = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in totals:
                    totals[name] += int(value.split()[0])
        except OSError:
            pass
    return totals


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of the process tree: every thread of every process, plus the
    workers that ended and were reaped (the root's cutime/cstime)."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if member == pid else 0)
        except (OSError, IndexError):
            pass
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat): shows load from other processes on the machine."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


@dataclass
class Target:
    """What a phase measures: a base URL and, when this run started it, the server process."""

    name: str
    url: str
    server: ServerProcess | None = None
    memory_ready: dict[str, int] = field(default_factory=dict)  # after startup

    @property
    def pid(self) -> int | None:
        return self.server.pid if self.server else None

    @property
    def startup_s(self) -> float | None:
        """Process start -> ``/ready`` answers 200."""
        return self.server.startup_s if self.server else None

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGKILL after 15 s."""
        if self.server is not None:
            self.server.stop(signal.SIGINT)


def start_target(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path,
                 timeout: float) -> Target:
    """Start ``command`` from the repository root, wait until ready and read its memory."""
    server = ServerProcess(command, port, workdir / (re.sub(r"\W+", "_", name).strip("_") + ".log"), env)
    try:
        server.start(timeout)
        time.sleep(0.5)  # let a lazy startup settle before reading memory
        return Target(name, server.url, server, memory_kib(server.pid))
    except BaseException:
        server.stop(signal.SIGINT)
        print(server.output(), file=sys.stderr)
        raise


def service_target(bundle: Path, workdir: Path, *, port: int = 0, service_args: str | None = None,
                   write_token: str | None = None, timeout: float = 120.0,
                   extra_env: dict[str, str] | None = None) -> Target:
    """The real service (or a wrapping script, ``service_args``) on ``bundle`` with a fresh events database;
    ``extra_env`` adds settings (``RECSYS_WORKERS``)."""
    port = port or free_port()
    env = {"RECSYS_BUNDLE_DIR": str(bundle), "RECSYS_EVENTS_DB": str(workdir / "events.sqlite"),
           "RECSYS_HOST": "127.0.0.1", "RECSYS_PORT": str(port)}
    if write_token:
        env["RECSYS_WRITE_TOKEN"] = write_token
    env.update(extra_env or {})
    command = [sys.executable, *service_args.split()] if service_args else list(SERVICE_COMMAND)
    name = f"service ({service_args})" if service_args else "service"
    return start_target(name, command, env, port, workdir, timeout)


def course_target(bundle: Path, workdir: Path, *, port: int = 0, timeout: float = 120.0) -> Target:
    """The course-pattern app (``benchmarks/course_pattern_app.py``) on the same bundle."""
    port = port or free_port()
    command = [sys.executable, str(COURSE_APP), "--bundle", str(bundle), "--port", str(port)]
    return start_target("course pattern", command, {}, port, workdir, timeout)
