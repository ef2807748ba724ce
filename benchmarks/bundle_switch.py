"""Live bundle switch at full size: start the real server on a copy of one bundle, keep a bounded load
running, put another bundle in place the way the `serving` stage does (a folder renamed into place), and
measure how long until answers come from the new version, and whether any request failed.

    python benchmarks/full_size_bundle.py --out /tmp/fullbundle
    python benchmarks/full_size_bundle.py --out /tmp/fullbundle2 --seed 1
    python benchmarks/bundle_switch.py --bundle /tmp/fullbundle --other /tmp/fullbundle2 --workdir /tmp/switch

Loopback only; the load is ``--clients`` requests in flight for at most ``--limit`` seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.recsys.io import atomic_directory  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402
from tests.helpers.server_process import SERVICE_COMMAND, ServerProcess, free_port  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle served first")
    parser.add_argument("--other", type=Path, required=True, help="the bundle switched to (another version)")
    parser.add_argument("--workdir", type=Path, required=True, help="scratch folder (bundle copy, events, log)")
    parser.add_argument("--clients", type=int, default=4, help="requests in flight")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the switch")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of load after the first new answer")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds of load at most")
    return parser.parse_args(argv)


def put_in_place(source: Path, target: Path) -> None:
    """Copy ``source`` into a temp folder next to ``target`` and rename it into place (what the stage does)."""
    with atomic_directory(target) as tmp:
        for path in source.iterdir():
            shutil.copyfile(path, tmp / path.name)


async def drive(url: str, users: list[int], args: argparse.Namespace, switch) -> dict:
    latencies: dict[str, list[float]] = {"before": [], "switching": [], "after": []}
    versions, failures, stop, marks = [], [], asyncio.Event(), {}

    async def client(n: int, http: httpx.AsyncClient) -> None:
        for user in users[n::args.clients]:
            if stop.is_set():
                return
            began = time.perf_counter()
            try:
                response = await http.get(f"/users/{user}/recommendations", params={"k": 10})
            except httpx.HTTPError as error:
                failures.append(repr(error))
                continue
            phase = "before" if "landed" not in marks else "switching" if "switched" not in marks else "after"
            latencies[phase].append(time.perf_counter() - began)
            if response.status_code != 200:
                failures.append(response.status_code)
                continue
            versions.append(response.json()["bundle_version"])
            if "landed" in marks and "switched" not in marks and versions[-1] != versions[0]:
                marks["switched"] = time.perf_counter()

    async def schedule() -> None:
        began = time.perf_counter()
        await asyncio.sleep(args.before)
        await asyncio.to_thread(switch)
        marks["landed"] = time.perf_counter()
        while "switched" not in marks and time.perf_counter() - began < args.limit:
            await asyncio.sleep(0.01)
        await asyncio.sleep(args.after)
        stop.set()

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await asyncio.gather(schedule(), *(client(n, http) for n in range(args.clients)))
    return {
        "requests": len(versions) + len(failures), "failures": len(failures), "failure_examples": failures[:5],
        "versions": sorted(set(versions), key=versions.index),
        "switch_s": round(marks["switched"] - marks["landed"], 3) if "switched" in marks else None,
        "latency_ms": {phase: {"n": len(values), "p50": _ms(values, 50), "p99": _ms(values, 99), "max": _ms(values, 100)}
                       for phase, values in latencies.items()},
    }


def _ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 2) if values else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    served = args.workdir / "bundle"
    put_in_place(args.bundle, served)
    users = ServingBundle.open(args.bundle, verify=False).offline.keys
    users = np.random.default_rng(0).choice(users, size=400_000).tolist()
    port = free_port()
    server = ServerProcess(SERVICE_COMMAND, port, args.workdir / "server.log", {
        "RECSYS_BUNDLE_DIR": str(served), "RECSYS_EVENTS_DB": str(args.workdir / "events.sqlite"),
        "RECSYS_PORT": str(port)})
    with server:
        result = asyncio.run(drive(server.url, users, args, lambda: put_in_place(args.other, served)))
        health = httpx.get(f"{server.url}/health").json()
    switched = [line for line in server.output(20_000).splitlines() if "bundle switched" in line]
    print(json.dumps({"startup_s": round(server.startup_s, 2), **result, "health": health,
                      "server_log": switched}, indent=2))


if __name__ == "__main__":
    main()
