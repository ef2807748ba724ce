"""Load test of the recommendation service against the course pattern, on loopback, bounded.

Starts the real server (``python -m src.service`` with ``RECSYS_*`` overrides: the given bundle, a fresh
events database in a temporary folder, a free loopback port) or targets ``--url``; records the startup
time (process start -> ``/ready`` answers 200) and the server's resident memory; then drives an
open-loop constant-rate load with one lean HTTP client (``load/http_client.py``): ~80% recommendation reads (a share of them for
cold users, ids the bundle does not hold, and a share for users who wrote a listen earlier in the run,
so the online path is exercised) and ~20% listen writes (known tracks, bundle users). Each latency is
measured from the request's *scheduled* send time, so a server that falls behind shows it as latency
(no coordinated omission). Then, in the same run, the course-pattern app
(`benchmarks/course_pattern_app.py`, pandas filtering per request) gets the same mix, closed-loop with
a few connections and a shorter duration, since it is orders of magnitude slower.

The parts live in ``benchmarks/load/`` (workload, server, drivers, report); this script puts them together.

Bounded: every phase stops after its duration plus ``--drain`` seconds, requests are capped by
``--max-requests`` and ``--max-inflight``, and only loopback URLs are accepted. Not a test:

    python benchmarks/full_size_bundle.py --out /tmp/fullbundle
    python benchmarks/service_load.py --bundle /tmp/fullbundle --json /tmp/load.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load.drivers import Phase, run_phase  # noqa: E402
from benchmarks.load.report import markdown, summarise  # noqa: E402
from benchmarks.load.server import Target, check_loopback, course_target, memory_kib, service_target  # noqa: E402
from benchmarks.load.workload import Mix, make_workload  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402

DEFAULT_SERVICE_COMMAND = "-m src.service"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("/tmp/fullbundle"),
                        help="serving bundle: the server's data and the source of user and track ids")
    parser.add_argument("--url", help="target an already running service (loopback only) instead of starting one")
    parser.add_argument("--service-command", default=DEFAULT_SERVICE_COMMAND,
                        help="python arguments that start the service (a wrapping script: compare a variant)")
    parser.add_argument("--port", type=int, default=0, help="port for the started servers (0: a free one)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (RECSYS_WORKERS)")
    parser.add_argument("--rate", type=float, default=2000.0, help="offered requests per second (open loop)")
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


async def measure(target: Target, bundle: ServingBundle, args: argparse.Namespace, rng: np.random.Generator, *,
                  closed_connections: int | None, duration: float) -> dict:
    """Warm up, then the measured phase; memory is read again at its end."""
    if closed_connections:
        size, mode = args.max_requests, f"closed loop, {closed_connections} conn, {duration:.0f}s"
    else:
        size, mode = int(args.rate * duration), f"open loop {args.rate:.0f}/s, {duration:.0f}s"
    if size > args.max_requests:
        raise SystemExit(f"{size:,} requests exceed --max-requests {args.max_requests:,}")
    mix = Mix(args.write_share, args.cold_share, args.returning_share, args.k)
    phase = Phase(duration, args.rate, closed_connections, args.connections, args.timeout, args.drain,
                  args.max_inflight, args.write_token)
    warmup_size = args.max_requests if closed_connections else min(args.max_requests, int(args.rate * args.warmup))
    if args.warmup > 0:
        print(f"{target.name}: warm-up {args.warmup:.0f}s", flush=True)
        await run_phase(target.url, make_workload(bundle, warmup_size, mix, rng),
                        replace(phase, duration=args.warmup), target.pid)
    print(f"{target.name}: measuring, {mode}", flush=True)
    result = await run_phase(target.url, make_workload(bundle, size, mix, rng), phase, target.pid)
    memory_end = memory_kib(target.pid) if target.pid else {}
    return summarise(target, result, memory_end, mode)


def run_async(coroutine):
    """Run on uvloop: the client shares the 2 cores with the server, so its event loop should be cheap."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def run_against(target: Target, bundle: ServingBundle, args: argparse.Namespace, rng: np.random.Generator,
                **phase) -> dict:
    """Measure a started server, stop it whatever happens."""
    print(f"{target.name}: ready in {target.startup_s:.2f}s, RSS {target.memory_ready['VmRSS'] / 1024:.0f} MiB",
          flush=True)
    try:
        return run_async(measure(target, bundle, args, rng, **phase))
    finally:
        target.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bundle = ServingBundle.open(args.bundle)
    rng = np.random.default_rng(args.seed)
    summaries = []
    with tempfile.TemporaryDirectory(prefix="service-load-") as scratch:
        workdir = Path(scratch)
        if args.service and args.url:
            check_loopback(args.url)
            target = Target("service", args.url.rstrip("/"))
            summaries.append(run_async(measure(target, bundle, args, rng, closed_connections=None,
                                               duration=args.duration)))
        elif args.service:
            custom = None if args.service_command == DEFAULT_SERVICE_COMMAND else args.service_command
            target = service_target(args.bundle, workdir, port=args.port, service_args=custom,
                                    write_token=args.write_token, timeout=args.startup_timeout,
                                    extra_env={"RECSYS_WORKERS": str(args.workers)})
            summaries.append(run_against(target, bundle, args, rng, closed_connections=None, duration=args.duration))
        if args.course:
            target = course_target(args.bundle, workdir, port=args.port + 1 if args.port else 0,
                                   timeout=args.startup_timeout)
            summaries.append(run_against(target, bundle, args, rng, closed_connections=args.course_connections,
                                         duration=args.course_duration))
    table = markdown(summaries)
    print(f"\nbundle {bundle.version}: {len(bundle.offline):,} users, {bundle.history.n_entries:,} history listens\n")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "bundle": bundle.manifest["counts"], "results": summaries}, indent=2))


if __name__ == "__main__":
    main()
