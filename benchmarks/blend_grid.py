"""Replay grid over blending settings: how the served list scores after m revealed online listens.

Runs the `replay` stage's evaluation (the very ``recommend`` the service calls) for every combination of
strategy, online weight and number of recent listens, and prints a markdown table sorted by NDCG@k at
the chosen ``m``. This is how the default in params.yaml (``service.blend``) was picked.

    python benchmarks/blend_grid.py [--bundle models/serving] [--reveal 3] [--max-users 5000]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.recsys.serving.blend import BlendConfig  # noqa: E402
from src.recsys.serving.bundle import ServingBundle  # noqa: E402
from src.recsys.serving.replay import replay, replay_users, listening_sequences  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="models/serving")
    parser.add_argument("--test", default="data/split/test.parquet")
    parser.add_argument("--reveal", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-users", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--strategies", nargs="+", default=["interleave", "rrf"])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--recent", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--decay", type=float, nargs="+", default=[0.5])
    parser.add_argument("--cold", action="store_true", help="replay test users without train history instead")
    args = parser.parse_args()

    bundle = ServingBundle.open(args.bundle)
    sequences = listening_sequences(pd.read_parquet(args.test, columns=["user_id", "track_id", "track_seq", "started_at"]))
    rows = []
    for reveal in args.reveal:
        users = replay_users(sequences, bundle, reveal, args.max_users, args.seed, cold=args.cold)
        baseline = None
        for strategy, weight, recent, decay in itertools.product(args.strategies, args.weights, args.recent, args.decay):
            config = BlendConfig(recent_listens=recent, recency_decay=decay, strategy=strategy, online_weight=weight,
                                 cold_online_weight=weight)  # only the weight of the replayed kind of user applies
            began = time.perf_counter()
            scores = replay(bundle, sequences, users, reveal, args.k, config)
            if baseline is None:
                baseline = scores["offline"][f"ndcg_at_{args.k}"]
            rows.append({"m": reveal, "users": len(users), "strategy": strategy, "online_weight": weight,
                         "recent_listens": recent, "recency_decay": decay,
                         **{f"blended_{metric}": value for metric, value in scores["blended"].items()},
                         "offline_ndcg": baseline, "online_ndcg": scores["online"][f"ndcg_at_{args.k}"],
                         "seconds": round(time.perf_counter() - began, 1)})
            print(rows[-1], file=sys.stderr, flush=True)
    table = pd.DataFrame(rows).sort_values(["m", f"blended_ndcg_at_{args.k}"], ascending=[True, False])
    print(table.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
