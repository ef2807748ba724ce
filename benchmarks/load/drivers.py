"""The senders: one lean HTTP client (``http_client.py``) driving a workload open-loop (a constant rate, whatever the answers
do) or closed-loop (each connection sends its next request when the last one answered).

In open loop a latency counts from the request's *scheduled* send time, so a server that falls behind
shows it as latency (no coordinated omission).
"""
from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass

import numpy as np

from .http_client import ERRORS, HttpClient
from .server import cpu_seconds, machine_busy_seconds
from .workload import Workload

# status codes for requests without an HTTP answer; all but NOT_SENT count as errors
EXCEPTION, DROPPED, UNFINISHED, NOT_SENT = -1, -2, -3, -4
JSON_HEADERS = {"Content-Type": "application/json"}
MIN_SLEEP_S = 0.001


@dataclass(frozen=True)
class Phase:
    """How one phase sends: open loop at ``rate`` per second, or closed loop on ``closed_connections``."""

    duration: float
    rate: float = 1000.0
    closed_connections: int | None = None
    connections: int = 64  # keep-alive pool in open loop
    timeout: float = 5.0  # per request
    drain: float = 10.0  # seconds to wait for answers after the last send
    max_inflight: int = 5_000  # outstanding requests; past it a request is dropped (an error)
    write_token: str | None = None


@dataclass
class PhaseResult:
    """Per request: latency (s, from scheduled or send time) and status; with the phase's wall and CPU."""

    kinds: np.ndarray
    latency: np.ndarray
    status: np.ndarray
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float | None
    machine_cpu_s: float


class Driver:
    """One client; sends one request and records its latency and status by index."""

    def __init__(self, client: HttpClient, workload: Workload, write_headers: dict[str, str]):
        self.client = client
        self.workload = workload
        self.write_headers = write_headers
        self.latency = np.full(len(workload), np.nan)
        self.status = np.full(len(workload), NOT_SENT, dtype=np.int16)

    async def send(self, index: int, since: float) -> None:
        """One request; latency counts from ``since`` (its scheduled time in open loop)."""
        body = self.workload.bodies[index]
        self.status[index] = UNFINISHED  # until answered: cancelled at the end of the drain, it stays so
        if body is None:
            raw = self.client.format("GET", self.workload.paths[index])
        else:
            raw = self.client.format("POST", self.workload.paths[index], body, self.write_headers)
        try:
            self.status[index] = await self.client.request(raw)
        except ERRORS:
            self.status[index] = EXCEPTION
        self.latency[index] = time.perf_counter() - since


async def open_loop(driver: Driver, rate: float, duration: float, drain: float, max_inflight: int) -> float:
    """Send request ``i`` at ``start + i / rate`` whatever the answers do; returns the wall seconds."""
    count = min(len(driver.workload), int(rate * duration))
    start = time.perf_counter()
    schedule = start + np.arange(count) / rate
    pending: set[asyncio.Task] = set()
    sent = 0
    while sent < count:
        due = int(np.searchsorted(schedule, time.perf_counter(), side="right"))
        for index in range(sent, due):
            if len(pending) >= max_inflight:
                driver.status[index] = DROPPED
                continue
            task = asyncio.create_task(driver.send(index, schedule[index]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        sent = max(sent, due)
        if sent < count:
            # at least 1 ms: shorter sleeps made the loop spin (a whole core at 2,000/s, taken from the server);
            # a request sent up to 1 ms late counts that against the server, never for it
            await asyncio.sleep(max(MIN_SLEEP_S, schedule[sent] - time.perf_counter()))
    await finish(pending, drain)
    return time.perf_counter() - start


async def closed_loop(driver: Driver, connections: int, duration: float, drain: float) -> float:
    """``connections`` workers each send their next request as soon as the last one answered."""
    start = time.perf_counter()
    deadline = start + duration
    next_index = iter(range(len(driver.workload)))

    async def worker() -> None:
        for index in next_index:
            if time.perf_counter() >= deadline:
                return
            await driver.send(index, time.perf_counter())

    workers = {asyncio.create_task(worker()) for _ in range(connections)}
    await finish(workers, drain + duration)
    return time.perf_counter() - start


async def finish(tasks: set[asyncio.Task], drain: float) -> None:
    """Wait up to ``drain`` seconds for outstanding requests, then cancel them (counted as unfinished)."""
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=drain)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def run_phase(url: str, workload: Workload, phase: Phase, server_pid: int | None) -> PhaseResult:
    """One measured phase, with the client's and the server's CPU over it."""
    write_headers = dict(JSON_HEADERS)
    if phase.write_token:
        write_headers["Authorization"] = f"Bearer {phase.write_token}"
    client = HttpClient(url, phase.closed_connections or phase.connections, phase.timeout)
    try:
        driver = Driver(client, workload, write_headers)
        client_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        server_before = cpu_seconds(server_pid) if server_pid else None
        machine_before = machine_busy_seconds()
        if phase.closed_connections:
            wall = await closed_loop(driver, phase.closed_connections, phase.duration, phase.drain)
        else:
            wall = await open_loop(driver, phase.rate, phase.duration, phase.drain, phase.max_inflight)
        client_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - client_before
        server_cpu = cpu_seconds(server_pid) - server_before if server_pid else None
        machine_cpu = machine_busy_seconds() - machine_before
    finally:
        client.close()
    attempted = driver.status != NOT_SENT
    return PhaseResult(workload.kinds[attempted], driver.latency[attempted], driver.status[attempted], wall,
                       client_cpu, server_cpu, machine_cpu)
