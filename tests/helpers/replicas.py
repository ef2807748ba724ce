"""Service replicas for tests: real ``python -m src.service`` processes on one bundle and one PostgreSQL,
and ``Traffic``, clients writing and reading through all of them while the test breaks things.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers.server_process import ServerProcess
from tests.helpers.service import service_process

MAX_WRITES_PER_CLIENT = 1000  # GET /users/{id}/listens returns at most 1000: every write stays checkable


def start_replicas(base: Path, bundle: Path, events_url: str, count: int = 2, workers: int = 1) -> list[ServerProcess]:
    """``count`` started replicas, each in its own folder (params, log) under ``base``, on free ports."""
    replicas = []
    for index in range(count):
        folder = base / f"replica{index}"
        folder.mkdir(parents=True, exist_ok=True)
        replicas.append(service_process(folder, {"RECSYS_BUNDLE_DIR": str(bundle), "RECSYS_EVENTS_URL": events_url,
                                                 "RECSYS_WORKERS": str(workers)}))
    try:
        for replica in replicas:
            replica.start()
    except BaseException:
        stop_all(replicas)
        raise
    return replicas


def stop_all(replicas: list[ServerProcess]) -> None:
    for replica in replicas:
        replica.stop()


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    replica: int
    kind: str  # "write" or "read" (blended recommendations)
    status: int | str  # the HTTP status, or "transport" (no answer: connection refused or cut)
    degraded: bool = False


class Traffic:
    """``clients`` clients, each writing listens of its own user through the replicas in turn (and reading a
    recommendation list every ``read_every`` writes), on a thread of its own until ``stop``.

    ``acknowledged`` holds (user_id, timestamp) of every 201; ``answers`` every answer, for the test to judge.
    """

    def __init__(self, urls: list[str], clients: int = 16, read_every: int = 4, first_user: int = 50_000):
        self.urls = urls
        self.clients = clients
        self.read_every = read_every
        self.first_user = first_user
        self.acknowledged: list[tuple[int, str]] = []
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="traffic", daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def between(self, start: float, end: float, kind: str, replica: int | None = None) -> list[Answer]:
        return [answer for answer in list(self.answers) if start <= answer.at <= end and answer.kind == kind
                and (replica is None or answer.replica == replica)]

    def users(self) -> range:
        return range(self.first_user, self.first_user + self.clients)

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.clients * 2)
        clients = [httpx.AsyncClient(base_url=url, timeout=10, limits=limits) for url in self.urls]
        try:
            await asyncio.gather(*(self._client(clients, number) for number in range(self.clients)))
        finally:
            for client in clients:
                await client.aclose()

    async def _client(self, clients: list[httpx.AsyncClient], number: int) -> None:
        user = self.first_user + number
        for n in range(MAX_WRITES_PER_CLIENT):
            if self._stop.is_set():
                return
            replica = (n + number) % len(clients)
            statuses = [await self._request(clients, replica, "write", "POST", f"/users/{user}/listens",
                                            json={"track_id": 1 + n % 12, "timestamp": 1_671_000_000 + n})]
            if n % self.read_every == 0:  # read through the other replica
                statuses.append(await self._request(clients, (replica + 1) % len(clients), "read", "GET",
                                                    f"/users/{user}/recommendations"))
            if "transport" in statuses:
                await asyncio.sleep(0.05)  # a dead replica refuses at once: do not spin on it

    async def _request(self, clients, replica: int, kind: str, method: str, path: str, **kwargs) -> int | str:
        try:
            response = await clients[replica].request(method, path, **kwargs)
        except httpx.TransportError:
            self.answers.append(Answer(time.monotonic(), replica, kind, "transport"))
            return "transport"
        if kind == "write" and response.status_code == 201:
            listen = response.json()
            self.acknowledged.append((listen["user_id"], listen["timestamp"]))
        degraded = kind == "read" and response.status_code == 200 and "degraded" in response.json()
        self.answers.append(Answer(time.monotonic(), replica, kind, response.status_code, degraded))
        return response.status_code


def stored_listens(url: str, users: range) -> set[tuple[int, str]]:
    """(user_id, timestamp) of every stored listen of ``users``, read through one replica."""
    found = set()
    with httpx.Client(base_url=url, timeout=10) as client:
        for user in users:
            response = client.get(f"/users/{user}/listens", params={"limit": 1000})
            assert response.status_code == 200, response.text
            found |= {(user, listen["timestamp"]) for listen in response.json()["listens"]}
    return found


def wait_until_writes_succeed(url: str, timeout: float = 15.0) -> float:
    """Seconds until a listen written through ``url`` is acknowledged again (recovery), or raise."""
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() - started < timeout:
            if client.post("/users/1/listens", json={"track_id": 5}).status_code == 201:
                return time.monotonic() - started
            time.sleep(0.1)
    raise AssertionError(f"{url} still refuses writes {timeout} s after the database came back")
