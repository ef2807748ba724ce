"""Where the server's CPU goes, per request kind: py-spy samples the real service while wrk drives one kind.

For each kind of ``cost.py`` it writes ``profiles/<kind>.<worker>.svg`` (flame graphs) and ``profiles/<kind>.txt``
(collapsed stacks), and prints the share of samples spent under each layer (``LAYERS``: the HTTP
server, the framework, the middleware, list building, the store, JSON). ``profiles/`` is git-ignored.

    python benchmarks/wrk/profile.py --bundle /tmp/fullbundle [--seconds 8] [--workers 1]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.load.server import process_tree, service_target  # noqa: E402
from benchmarks.wrk.cost import KINDS, wrk  # noqa: E402
from benchmarks.wrk.requests import lines  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402

PROFILES = ROOT / "profiles"
LAYERS = {  # layer -> a pattern of frame names; a sample counts for the innermost layer on its stack
    "list building (recsys/serving)": r"recsys/serving/",
    "event store (service/store.py, sqlite3)": r"service/store\.py",
    "JSON encoding (orjson, Response)": r"orjson|starlette/responses",
    "request body parsing (schemas.py, pydantic)": r"service/schemas\.py",
    "route handlers (service/routes.py)": r"service/routes\.py",
    "metrics (observability.py, prometheus_client)": r"observability\.py|prometheus_client",
    "FastAPI dependencies and validation": r"fastapi/dependencies|fastapi/_compat|pydantic",
    "Starlette/FastAPI routing and middleware stack": r"starlette/|fastapi/",
    "guards (service/guards.py)": r"service/guards\.py",
    "uvicorn HTTP protocol": r"uvicorn/protocols",
    "asyncio/uvloop (scheduling, sockets)": r"asyncio|uvloop",
}
OTHER = "other"


def layer_shares(collapsed: str) -> dict[str, float]:
    """Share of the sampled CPU time by layer: each sample goes to the innermost frame that names one."""
    totals, total = Counter(), 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        totals[next((layer for frame in reversed(stack.split(";")) for layer, pattern in LAYERS.items()
                     if re.search(pattern, frame)), OTHER)] += int(count)
    return {layer: totals[layer] / total for layer in (*LAYERS, OTHER)} if total else {}


def record(pids: list[int], seconds: float, stem: Path) -> str:
    """py-spy on each process (uvicorn workers are separate processes): a flame graph per process
    (``<stem>.<i>.svg``) and, from a second sampler running beside it, the collapsed stacks of all of them."""
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    base = [py_spy, "record", "-d", f"{seconds:.0f}", "-r", "200", "--nonblocking"]
    runs = [subprocess.Popen([*base, "-p", str(pid), "-f", form, "-o", str(stem.with_suffix(f".{i}.{ext}"))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i, pid in enumerate(pids) for form, ext in (("flamegraph", "svg"), ("raw", "txt"))]
    for run in runs:
        run.wait(seconds + 60)
    parts = sorted(stem.parent.glob(stem.name + ".*.txt"))
    collapsed = "".join(part.read_text() for part in parts)
    for part in parts:
        part.unlink()
    stem.with_suffix(".txt").write_text(collapsed)
    return collapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("/tmp/fullbundle"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    bundle = ServingBundle.open(args.bundle)
    PROFILES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as scratch:
        workdir = Path(scratch)
        target = service_target(args.bundle, workdir, extra_env={"RECSYS_WORKERS": str(args.workers)})
        try:
            pids = process_tree(target.pid)
            pids = pids[1:] if len(pids) > 1 else pids  # workers only: the supervisor just waits
            for kind, mix in KINDS.items():
                name = re.sub(r"\W+", "-", kind).strip("-")
                requests_file = workdir / "requests.txt"
                requests_file.write_text("GET /health\n" if mix is None else "\n".join(lines(bundle, 50_000, mix, 0)))
                load = threading.Thread(target=wrk, args=(target.url, requests_file, args.seconds + 2, args.connections))
                load.start()
                collapsed = record(pids, args.seconds, PROFILES / name)
                load.join()
                print(f"\n{kind} (profiles/{name}.*.svg)")
                for layer, share in layer_shares(collapsed).items():
                    print(f"  {share:6.1%}  {layer}")
        finally:
            target.stop()


if __name__ == "__main__":
    main()
