"""Load test of the recommendation service against the course pattern, on loopback, bounded.

Starts the real server (``python -m src.service`` with ``RECSYS_*`` overrides: the given bundle, a fresh
events database in a temporary folder, a free loopback port) or targets ``--url``; records the startup
time (process start -> ``/ready`` answers 200) and the server's resident memory; then drives an
open-loop constant-rate load with one aiohttp session: ~80% recommendation reads (a share of them for
cold users, ids the bundle does not hold, and a share for users who wrote a listen earlier in the run,
so the online path is exercised) and ~20% listen writes (known tracks, bundle users). Each latency is
measured from the request's *scheduled* send time, so a server that falls behind shows it as latency
(no coordinated omission). Then, in the same run, the course-pattern app
(`benchmarks/course_pattern_app.py`, pandas filtering per request) gets the same mix, closed-loop with
a few connections and a shorter duration, since it is orders of magnitude slower.

Bounded: every phase stops after its duration plus ``--drain`` seconds, requests are capped by
``--max-requests`` and ``--max-inflight``, and only loopback URLs are accepted. Not a test:

    python benchmarks/full_size_bundle.py --out /tmp/fullbundle
    python benchmarks/service_load.py --bundle /tmp/fullbundle --json /tmp/load.json
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import orjson
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.recsys.serving.bundle import ServingBundle  # noqa: E402

KINDS = ("recs_warm", "recs_cold", "recs_returning", "listen")  # request kinds, indexed by code
RECS_WARM, RECS_COLD, RECS_RETURNING, LISTEN = range(len(KINDS))
# status codes for requests without an HTTP answer; all but NOT_SENT count as errors
EXCEPTION, DROPPED, UNFINISHED, NOT_SENT = -1, -2, -3, -4
JSON_HEADERS = {"Content-Type": "application/json"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_SERVICE_COMMAND = "-m src.service"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("/tmp/fullbundle"),
                        help="serving bundle: the server's data and the source of user and track ids")
    parser.add_argument("--url", help="target an already running service (loopback only) instead of starting one")
    parser.add_argument("--service-command", default=DEFAULT_SERVICE_COMMAND,
                        help="python arguments that start the service (a wrapping script: compare a variant)")
    parser.add_argument("--port", type=int, default=0, help="port for the started servers (0: a free one)")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered requests per second (open loop)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (not counted)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connection pool size")
    parser.add_argument("--write-share", type=float, default=0.2, help="share of requests that are listen writes")
    parser.add_argument("--cold-share", type=float, default=0.1, help="share of reads for users not in the bundle")
    parser.add_argument("--returning-share", type=float, default=0.1,
                        help="share of reads for users who wrote a listen earlier in the run (online path)")
    parser.add_argument("--k", type=int, default=10, help="recommendations per read")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for answers after the last send")
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard cap on requests per phase")
    parser.add_argument("--max-inflight", type=int, default=5_000,
                        help="requests outstanding at once; past it a request is dropped and counted as an error")
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds for a server to become ready")
    parser.add_argument("--write-token", default=None, help="sent as `Authorization: Bearer` on writes")
    parser.add_argument("--course", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the course-pattern app (benchmarks/course_pattern_app.py)")
    parser.add_argument("--course-duration", type=float, default=15.0, help="measured seconds for the course app")
    parser.add_argument("--course-connections", type=int, default=4, help="closed-loop connections for the course app")
    parser.add_argument("--service", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the real service (--no-service: only the course app)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    return parser.parse_args(argv)


# --- the request mix ---------------------------------------------------------------------------------

@dataclass
class Workload:
    """Pre-built requests (paths, bodies, kind codes), so the send loop does no per-request work."""

    paths: list[str]
    bodies: list[bytes | None]
    kinds: np.ndarray  # int8 codes into KINDS

    def __len__(self) -> int:
        return len(self.paths)


def cold_user_ids(known: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Ids the bundle has no recommendations for: gaps in its id range and ids beyond its largest."""
    candidates = rng.integers(0, int(known[-1]) * 11 // 10 + count + 1, 4 * count + 16)
    position = np.searchsorted(known, candidates).clip(0, len(known) - 1)
    unknown = candidates[known[position] != candidates]
    return rng.choice(unknown, count)


def make_workload(bundle: ServingBundle, count: int, args: argparse.Namespace, rng: np.random.Generator) -> Workload:
    """``count`` requests of the mix, drawn with numpy; returning readers pick an earlier writer's id."""
    users = np.asarray(bundle.offline.keys)
    writes = rng.random(count) < args.write_share
    kinds = np.where(writes, LISTEN, RECS_WARM).astype(np.int8)
    user_ids = rng.choice(users, count).astype(np.int64)
    draw = rng.random(count)
    cold = ~writes & (draw < args.cold_share)
    kinds[cold] = RECS_COLD
    user_ids[cold] = cold_user_ids(users, int(cold.sum()), rng)
    writes_before = np.cumsum(writes) - writes  # writes scheduled before each request
    returning = ~writes & ~cold & (draw < args.cold_share + args.returning_share) & (writes_before > 0)
    kinds[returning] = RECS_RETURNING
    writer_ids = user_ids[writes]
    user_ids[returning] = writer_ids[(rng.random(int(returning.sum())) * writes_before[returning]).astype(np.int64)]
    tracks = rng.choice(np.asarray(bundle.catalog.track_ids), count)
    paths = [f"/users/{user}/listens" if write else f"/users/{user}/recommendations?k={args.k}"
             for user, write in zip(user_ids.tolist(), writes.tolist())]
    bodies = [orjson.dumps({"track_id": track}) if write else None
              for track, write in zip(tracks.tolist(), writes.tolist())]
    return Workload(paths, bodies, kinds)


# --- the server process --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_loopback(url: str) -> None:
    """Load goes to this machine only."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"{url}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn may run workers as children)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            for task in Path(f"/proc/{pids[index]}/task").iterdir():
                pids.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            pass
        index += 1
    return pids


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
    """User + system CPU seconds of the process tree so far."""
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (/proc/stat): shows load from other processes on the machine."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


@dataclass
class Server:
    """A started server process: its base URL, pid, startup seconds and memory after startup."""

    name: str
    url: str
    process: subprocess.Popen | None
    startup_s: float | None = None
    memory_ready: dict[str, int] = field(default_factory=dict)
    log: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Poll ``/ready`` until it answers 200; the seconds since ``process`` was started."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"server not ready after {timeout:.0f}s")


def start_server(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path,
                 timeout: float) -> Server:
    """Start ``command`` from the repository root, wait until ready and read its memory."""
    log = workdir / (re.sub(r"\W+", "_", name).strip("_") + ".log")
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT)
    server = Server(name, url, process, log=log)
    try:
        wait_ready(url, process, timeout)
        server.startup_s = time.perf_counter() - started
        time.sleep(0.5)  # let a lazy startup settle before reading memory
        server.memory_ready = memory_kib(process.pid)
    except BaseException:
        server.stop()
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    return server


def service_server(args: argparse.Namespace, workdir: Path) -> Server:
    port = args.port or free_port()
    env = {"RECSYS_BUNDLE_DIR": str(args.bundle), "RECSYS_EVENTS_DB": str(workdir / "events.sqlite"),
           "RECSYS_HOST": "127.0.0.1", "RECSYS_PORT": str(port)}
    if args.write_token:
        env["RECSYS_WRITE_TOKEN"] = args.write_token
    command = [sys.executable, *args.service_command.split()]
    name = "service" if args.service_command == DEFAULT_SERVICE_COMMAND else f"service ({args.service_command})"
    return start_server(name, command, env, port, workdir, args.startup_timeout)


def course_server(args: argparse.Namespace, workdir: Path) -> Server:
    port = free_port() if not args.port else args.port + 1
    command = [sys.executable, str(ROOT / "benchmarks" / "course_pattern_app.py"), "--bundle", str(args.bundle),
               "--port", str(port)]
    return start_server("course pattern", command, {}, port, workdir, args.startup_timeout)


# --- the load ----------------------------------------------------------------------------------------

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
    """One aiohttp session; sends one request and records its latency and status by index."""

    def __init__(self, session: aiohttp.ClientSession, workload: Workload, write_headers: dict[str, str]):
        self.session = session
        self.workload = workload
        self.write_headers = write_headers
        self.latency = np.full(len(workload), np.nan)
        self.status = np.full(len(workload), NOT_SENT, dtype=np.int16)

    async def send(self, index: int, since: float) -> None:
        """One request; latency counts from ``since`` (its scheduled time in open loop)."""
        body = self.workload.bodies[index]
        self.status[index] = UNFINISHED  # until answered: cancelled at the end of the drain, it stays so
        try:
            if body is None:
                response = await self.session.get(self.workload.paths[index])
            else:
                response = await self.session.post(self.workload.paths[index], data=body, headers=self.write_headers)
            async with response:
                await response.read()
            self.status[index] = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            self.status[index] = EXCEPTION
        self.latency[index] = time.perf_counter() - since


def new_session(url: str, connections: int, timeout: float) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, enable_cleanup_closed=False,
                                     ttl_dns_cache=None)
    return aiohttp.ClientSession(base_url=url, connector=connector, timeout=aiohttp.ClientTimeout(total=timeout),
                                 skip_auto_headers=("User-Agent",))


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
            await asyncio.sleep(max(0.0, schedule[sent] - time.perf_counter()))
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


async def run_phase(url: str, workload: Workload, args: argparse.Namespace, server_pid: int | None, *,
                    closed_connections: int | None, duration: float) -> PhaseResult:
    """One measured phase, with the client's and the server's CPU over it."""
    write_headers = dict(JSON_HEADERS)
    if args.write_token:
        write_headers["Authorization"] = f"Bearer {args.write_token}"
    connections = closed_connections or args.connections
    async with new_session(url, connections, args.timeout) as session:
        driver = Driver(session, workload, write_headers)
        client_before = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        server_before = cpu_seconds(server_pid) if server_pid else None
        machine_before = machine_busy_seconds()
        if closed_connections:
            wall = await closed_loop(driver, closed_connections, duration, args.drain)
        else:
            wall = await open_loop(driver, args.rate, duration, args.drain, args.max_inflight)
        client_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - client_before
        server_cpu = cpu_seconds(server_pid) - server_before if server_pid else None
        machine_cpu = machine_busy_seconds() - machine_before
    attempted = driver.status != NOT_SENT
    return PhaseResult(workload.kinds[attempted], driver.latency[attempted], driver.status[attempted], wall,
                       client_cpu, server_cpu, machine_cpu)


# --- the report ----------------------------------------------------------------------------------------

def latency_stats(result: PhaseResult, mask: np.ndarray) -> dict[str, float]:
    """Requests, errors, answered per second and latency percentiles (ms) of the selected requests."""
    status = result.status[mask]
    ok = (status >= 200) & (status < 300)
    answered = result.latency[mask][ok] * 1000
    stats = {"requests": int(mask.sum()), "errors": int((~ok).sum()),
             "rps": float(ok.sum() / result.wall_s) if result.wall_s else 0.0}
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        stats[name] = float(np.percentile(answered, q)) if len(answered) else float("nan")
    stats["error_statuses"] = {str(code): int(n) for code, n in zip(*np.unique(status[~ok], return_counts=True))}
    return stats


def summarise(server: Server, result: PhaseResult, memory_end: dict[str, int], mode: str) -> dict:
    overall = latency_stats(result, np.ones(len(result.status), dtype=bool))
    by_kind = {kind: latency_stats(result, result.kinds == code) for code, kind in enumerate(KINDS)
               if (result.kinds == code).any()}
    return {
        "server": server.name, "url": server.url, "mode": mode, "wall_s": result.wall_s,
        "startup_s": server.startup_s,
        "rss_ready_mib": server.memory_ready.get("VmRSS", 0) / 1024 if server.memory_ready else None,
        "rss_end_mib": memory_end.get("VmRSS", 0) / 1024 if memory_end else None,
        "anon_end_mib": memory_end.get("RssAnon", 0) / 1024 if memory_end else None,
        "memory_ready_kib": server.memory_ready, "memory_end_kib": memory_end,
        "client_cpu_share": result.client_cpu_s / result.wall_s,
        "server_cpu_share": result.server_cpu_s / result.wall_s if result.server_cpu_s is not None else None,
        "machine_cpu_share": result.machine_cpu_s / result.wall_s,
        "overall": overall, "by_kind": by_kind,
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


TARGETS = (  # the targets for the service on this 2-core machine with a full-size bundle
    ("startup < 10 s", lambda s: s["startup_s"] is not None and s["startup_s"] < 10),
    ("RSS after startup < 1.5 GiB", lambda s: s["rss_ready_mib"] is not None and s["rss_ready_mib"] < 1536),
    (">= 1,000 req/s", lambda s: s["overall"]["rps"] >= 1000 * 0.99),  # 1% slack: the last send is at ~duration
    ("p99 < 20 ms", lambda s: s["overall"]["p99"] < 20),
    ("zero errors", lambda s: s["overall"]["errors"] == 0),
)


def verdicts(summary: dict) -> str:
    """Which targets an open-loop run met (the throughput target only means something at --rate >= 1000)."""
    return "; ".join(f"{name}: {'met' if check(summary) else 'MISSED'}" for name, check in TARGETS)


def percent(share: float | None) -> str:
    """A CPU share as percent of one core (2 cores: up to 200%)."""
    return "-" if share is None else f"{100 * share:.0f}%"


def markdown(summaries: list[dict]) -> str:
    """The comparison table, then one latency table per server by request kind."""
    lines = ["CPU in % of one core (2 cores: 200%); machine CPU above server + client is other processes' load. "
             "RSS counts the mapped bundle pages a server touched (page cache, reclaimable); anon is its own heap.", "",
             "| server | load | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | startup s | RSS ready MiB "
             "| RSS end MiB (anon) | server CPU | client CPU | machine CPU |", "|" + " --- |" * 14]
    for s in summaries:
        o = s["overall"]
        cells = [s["server"], s["mode"], fmt(o["rps"]), *(fmt(o[q], 2) for q in ("p50", "p95", "p99")),
                 fmt(o["max"]), f"{o['errors']} / {o['requests']:,}", fmt(s["startup_s"], 2),
                 fmt(s["rss_ready_mib"], 0), f"{fmt(s['rss_end_mib'], 0)} ({fmt(s['anon_end_mib'], 0)})",
                 percent(s["server_cpu_share"]), percent(s["client_cpu_share"]), percent(s["machine_cpu_share"])]
        lines.append("| " + " | ".join(cells) + " |")
    for s in summaries:
        if s["mode"].startswith("open loop"):
            lines += ["", f"{s['server']} targets: {verdicts(s)}"]
    for s in summaries:
        lines += ["", f"{s['server']} ({s['mode']}), by request kind:", "",
                  "| kind | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |", "|" + " --- |" * 8]
        for kind, k in s["by_kind"].items():
            lines.append(f"| {kind} | {k['requests']:,} | {fmt(k['rps'])} | {fmt(k['p50'], 2)} | {fmt(k['p95'], 2)} "
                         f"| {fmt(k['p99'], 2)} | {fmt(k['max'], 1)} | {k['errors']} {k['error_statuses'] or ''} |")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------------

async def measure(server: Server, bundle: ServingBundle, args: argparse.Namespace, rng: np.random.Generator, *,
                  closed_connections: int | None, duration: float) -> dict:
    """Warm up, then the measured phase; memory is read again at its end."""
    if closed_connections:
        size, mode = args.max_requests, f"closed loop, {closed_connections} conn, {duration:.0f}s"
    else:
        size, mode = int(args.rate * duration), f"open loop {args.rate:.0f}/s, {duration:.0f}s"
    if size > args.max_requests:
        raise SystemExit(f"{size:,} requests exceed --max-requests {args.max_requests:,}")
    warmup_size = args.max_requests if closed_connections else min(args.max_requests, int(args.rate * args.warmup))
    if args.warmup > 0:
        print(f"{server.name}: warm-up {args.warmup:.0f}s", flush=True)
        await run_phase(server.url, make_workload(bundle, warmup_size, args, rng), args, server.pid,
                        closed_connections=closed_connections, duration=args.warmup)
    print(f"{server.name}: measuring, {mode}", flush=True)
    result = await run_phase(server.url, make_workload(bundle, size, args, rng), args, server.pid,
                             closed_connections=closed_connections, duration=duration)
    memory_end = memory_kib(server.pid) if server.pid else {}
    return summarise(server, result, memory_end, mode)


def run_async(coroutine):
    """Run on uvloop: the client shares the 2 cores with the server, so its event loop should be cheap."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def run_against(start, bundle: ServingBundle, args: argparse.Namespace, rng: np.random.Generator, workdir: Path,
                **phase) -> dict:
    """Start a server with ``start``, measure it, stop it whatever happens."""
    server = start(args, workdir)
    print(f"{server.name}: ready in {server.startup_s:.2f}s, RSS {server.memory_ready['VmRSS'] / 1024:.0f} MiB",
          flush=True)
    try:
        return run_async(measure(server, bundle, args, rng, **phase))
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bundle = ServingBundle.open(args.bundle)
    rng = np.random.default_rng(args.seed)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="service-load-") as scratch:
        workdir = Path(scratch)
        if args.service and args.url:
            check_loopback(args.url)
            target = Server("service", args.url.rstrip("/"), None)
            summaries.append(run_async(measure(target, bundle, args, rng, closed_connections=None,
                                               duration=args.duration)))
        elif args.service:
            summaries.append(run_against(service_server, bundle, args, rng, workdir, closed_connections=None,
                                         duration=args.duration))
        if args.course:
            summaries.append(run_against(course_server, bundle, args, rng, workdir,
                                         closed_connections=args.course_connections, duration=args.course_duration))
    table = markdown(summaries)
    print(f"\nbundle {bundle.version}: {len(bundle.offline):,} users, {bundle.history.n_entries:,} history listens\n")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "bundle": bundle.manifest["counts"], "results": summaries}, indent=2))


if __name__ == "__main__":
    main()
