"""Write the load test's request mix (``benchmarks/load/workload.py``) as a text file for ``mix.lua``.

wrk cannot read the bundle, so the ids come from here: the same mix as the harness (``benchmarks/service_load.py``) (80% reads,
10% of them for cold ids and 10% for users who wrote a listen earlier in the list; 20% listen writes of
catalog tracks), one request a line: ``GET <path>`` or ``POST <path> <json body>``.

    python benchmarks/wrk/requests.py --bundle /tmp/fullbundle --out /tmp/wrk-requests.txt
    wrk -t2 -c16 -d30s -s benchmarks/wrk/mix.lua http://127.0.0.1:8000 -- /tmp/wrk-requests.txt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.load.workload import Mix, make_workload  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402


def lines(bundle: ServingBundle, count: int, mix: Mix, seed: int) -> list[str]:
    workload = make_workload(bundle, count, mix, np.random.default_rng(seed))
    return [f"GET {path}" if body is None else f"POST {path} {body.decode()}"
            for path, body in zip(workload.paths, workload.bodies)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("/tmp/fullbundle"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/wrk-requests.txt"))
    parser.add_argument("--count", type=int, default=200_000, help="requests in the file (wrk cycles through it)")
    parser.add_argument("--write-share", type=float, default=0.2)
    parser.add_argument("--cold-share", type=float, default=0.1)
    parser.add_argument("--returning-share", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    mix = Mix(args.write_share, args.cold_share, args.returning_share, args.k)
    args.out.write_text("\n".join(lines(ServingBundle.open(args.bundle), args.count, mix, args.seed)) + "\n")
    print(f"{args.count:,} requests -> {args.out}")


if __name__ == "__main__":
    main()
