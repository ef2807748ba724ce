"""Server CPU per request, by request kind: wrk drives one kind at a time, /proc counts the server's CPU.

Starts the real service (``benchmarks/load/server.py``, a fresh events database), then for each kind
runs wrk closed-loop for a few seconds and divides the server's CPU seconds (every thread and worker
process, ``cpu_seconds``) by the requests answered. The client's own CPU is not counted, so the number
holds on a shared machine better than a latency does (it still rises when the cores are contended).

    python benchmarks/wrk/cost.py --bundle /tmp/fullbundle [--workers 1] [--seconds 5]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.load.server import cpu_seconds, service_target  # noqa: E402
from benchmarks.load.workload import Mix  # noqa: E402
from benchmarks.wrk.requests import lines  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402

MIX_LUA = Path(__file__).with_name("mix.lua")
KINDS = {  # kind -> the mix that gives only that kind (health is a fixed path)
    "health": None,
    "recommendation (warm)": Mix(write_share=0.0, cold_share=0.0, returning_share=0.0),
    "recommendation (cold)": Mix(write_share=0.0, cold_share=1.0, returning_share=0.0),
    "listen write": Mix(write_share=1.0),
    "80/20 mix": Mix(),
}


def wrk(url: str, requests_file: Path, seconds: float, connections: int) -> int:
    """Run wrk; the number of requests it completed (non-2xx make it fail)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "-s", str(MIX_LUA), url, "--",
                          str(requests_file)], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    if not re.search(r"non-2xx: 0\b", out) or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return int(re.search(r"(\d+) requests in", out).group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("/tmp/fullbundle"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    bundle = ServingBundle.open(args.bundle)
    with tempfile.TemporaryDirectory(prefix="cost-") as scratch:
        workdir = Path(scratch)
        target = service_target(args.bundle, workdir, extra_env={"RECSYS_WORKERS": str(args.workers)})
        try:
            print("| request kind | µs of server CPU per request | requests |\n|---|---|---|")
            for kind, mix in KINDS.items():
                requests_file = workdir / "requests.txt"
                requests_file.write_text("GET /health\n" if mix is None else "\n".join(lines(bundle, 50_000, mix, 0)))
                before = cpu_seconds(target.pid)
                count = wrk(target.url, requests_file, args.seconds, args.connections)
                used = cpu_seconds(target.pid) - before
                print(f"| {kind} | {used / count * 1e6:,.0f} | {count:,} |", flush=True)
        finally:
            target.stop()


if __name__ == "__main__":
    main()
