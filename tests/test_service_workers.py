"""Several worker processes on one port (``RECSYS_WORKERS``), tested through the real server over HTTP.

Which worker answers a new connection is the kernel's choice; a test picks it by stopping the other one
(SIGSTOP: a stopped process accepts nothing, so the running one takes the connection), for well under
the supervisor's 5 s liveness ping.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.helpers.bundles import tiny_bundle
from tests.helpers.server_process import ServerProcess, worker_pids
from tests.helpers.service import kill_while_writing, service_process

pytestmark = pytest.mark.slow  # a real `python -m src.service` per test

WORKERS = {"RECSYS_WORKERS": "2"}


def workers(server: ServerProcess, count: int = 2, timeout: float = 30.0, other_than: tuple[int, ...] = ()) -> list[int]:
    """The server's ``count`` worker pids, once that many run (none of ``other_than``) and each answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(server.pid)
        if len(pids) == count and not set(pids) & set(other_than):
            for pid in pids:
                with only(pids, pid):
                    assert fresh(server, "GET", "/ready").status_code == 200
            return pids
        time.sleep(0.05)
    raise AssertionError(f"not {count} workers after {timeout} s: {worker_pids(server.pid)}\n{server.output()}")


@contextmanager
def only(pids: list[int], serving: int):
    """Stop every worker but ``serving`` for the block, so that new connections go to it."""
    stopped = [pid for pid in pids if pid != serving]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def fresh(server: ServerProcess, method: str, path: str, **kwargs) -> httpx.Response:
    """One request on a new connection (a kept-alive one stays with the worker that accepted it)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.request(method, path, **kwargs)


@pytest.fixture
def server(tmp_path, start_service) -> ServerProcess:
    tiny_bundle(tmp_path / "bundle")
    return start_service(tmp_path, WORKERS)


def test_a_listen_written_through_one_worker_is_read_at_once_through_the_other(server):
    first, second = workers(server)
    for n, (writer, reader) in enumerate([(first, second), (second, first)] * 3):
        with only([first, second], writer):
            written = fresh(server, "POST", "/users/3/listens", json={"track_id": 1 + n, "timestamp": 1_671_000_000 + n})
        assert written.status_code == 201, written.text
        with only([first, second], reader):
            latest = fresh(server, "GET", "/users/3/listens", params={"limit": 1}).json()["listens"]
            listed = fresh(server, "GET", "/users/3/recommendations", params={"k": 20}).json()["items"]
        assert [(item["track_id"], item["timestamp"]) for item in latest] == [(1 + n, written.json()["timestamp"])]
        assert 1 + n not in {item["track_id"] for item in listed}  # heard: never recommended


def test_acknowledged_listens_survive_kill_9_of_any_worker(server):
    acknowledged: list[dict] = []
    survivors = workers(server)
    for round_, victim in enumerate(list(survivors)):
        acknowledged += asyncio.run(kill_while_writing(server.url, lambda: os.kill(victim, signal.SIGKILL), user_id=7,
                                                       writes=200, kill_after=40, first_ts=1_671_000_000 + 1000 * round_))
        survivors = workers(server, other_than=(victim,))  # the supervisor started a new one
        assert server.process.poll() is None
    stored = {listen["timestamp"] for listen in
              fresh(server, "GET", "/users/7/listens", params={"limit": 1000}).json()["listens"]}
    assert len(acknowledged) >= 80 and {listen["timestamp"] for listen in acknowledged} <= stored
    assert fresh(server, "POST", "/users/7/listens", json={"track_id": 3}).status_code == 201


def test_metrics_count_the_requests_of_every_worker(server):
    pids = workers(server)
    before = health_count(fresh(server, "GET", "/metrics").text)
    for pid in pids:
        with only(pids, pid):
            for _ in range(5):
                assert fresh(server, "GET", "/health").status_code == 200
    for pid in pids:  # whichever worker answers /metrics sums them all
        with only(pids, pid):
            text = fresh(server, "GET", "/metrics").text
        assert health_count(text) == before + 10, text
        assert "_created" not in text and re.search(r'recsys_bundle_info\{version="\w+"\} 1\.0', text)


def health_count(metrics: str) -> int:
    found = re.search(r'recsys_http_requests_total\{method="GET",route="/health",status="200"\} (\d+)', metrics)
    return int(found[1]) if found else 0


def test_workers_stop_when_their_supervisor_is_killed(server):
    pids = workers(server)
    server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    orphans = [pid for pid in pids if alive(pid)]
    for pid in orphans:  # leave nothing behind when it fails
        os.kill(pid, signal.SIGKILL)
    assert not orphans, "orphaned workers still running"


def alive(pid: int) -> bool:
    """Running (not a zombie waiting for a parent that will never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_two_workers_on_a_fresh_file(base, bundle_dir) -> str:
    """Start two workers on a fresh SQLite file, wait until both answer, stop; the server's log."""
    base.mkdir(parents=True)
    server = service_process(base, {**WORKERS, "RECSYS_BUNDLE_DIR": str(bundle_dir)})
    with server:
        workers(server)
    return server.log.read_text(errors="replace")


def test_two_workers_start_cleanly_on_a_fresh_sqlite_file(tmp_path, tiny_bundle_dir):
    """Each worker used to switch a fresh file to WAL at once and one could fail ("database is locked",
    "Application startup failed", a respawn); ten starts in a row were run by hand (docs/replicas.md)."""
    for attempt in range(3):
        log = start_two_workers_on_a_fresh_file(tmp_path / f"start{attempt}", tiny_bundle_dir)
        assert "startup failed" not in log and "locked" not in log, log[-3000:]
