"""CPU seconds so far of named process trees and of the whole machine, as one line of JSON.

``benchmarks/wrk/replicas.sh`` takes one snapshot before and one after the measured wrk run and prints the
difference per request: every thread and process of each replica, of PostgreSQL (the postmaster's tree:
its backends, writer and WAL processes) and of wrk, beside the machine's busy CPU (which also shows load
from anything else on the box).

    python benchmarks/wrk/cpu_snapshot.py replica_a=PID replica_b=PID postgres=PID wrk=PID
    python benchmarks/wrk/cpu_snapshot.py --per-request REQUESTS BEFORE_JSON AFTER_JSON
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.load.server import cpu_seconds, machine_busy_seconds  # noqa: E402


def snapshot(named_pids: dict[str, int]) -> dict[str, float]:
    counts = {name: cpu_seconds(pid) for name, pid in named_pids.items()}
    counts["machine"] = machine_busy_seconds()
    return counts


def per_request(requests: int, before: dict[str, float], after: dict[str, float]) -> str:
    """One line: each group's CPU seconds over the run and microseconds per request."""
    parts = [f"{name} {after[name] - before[name]:.1f} s ({(after[name] - before[name]) / requests * 1e6:.0f} us/req)"
             for name in after]
    return f"CPU over {requests:,} requests: " + ", ".join(parts)


if __name__ == "__main__":
    if sys.argv[1] == "--per-request":
        print(per_request(int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])))
    else:
        print(json.dumps(snapshot({name: int(pid) for name, pid in (arg.split("=") for arg in sys.argv[1:])})))
