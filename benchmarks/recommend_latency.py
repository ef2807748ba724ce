"""Microseconds per ``blend_for_user`` call (the list the service builds per request), by kind of request.

Times the library call alone, in one process, on a bundle: a warm user without online listens, a warm
user after 3 online listens (and, when the bundle has one, its re-ranker alone: features and trees on
the candidate lists), a cold user after 3 online listens. The online listens are tracks another
bundle user heard (so they have played-next and similar rows, like real listens). Not a test:

    python benchmarks/recommend_latency.py [--bundle models/serving] [--requests 3000]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.recsys.serving.blend import candidate_lists, learned_order, blend_for_user  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle  # noqa: E402

ONLINE_LISTENS = 3


def sample_cases(bundle: ServingBundle, requests: int, seed: int) -> dict[str, list[tuple[int, np.ndarray]]]:
    """(user id, online listens most recent first) per kind of request."""
    rng = np.random.default_rng(seed)
    warm = rng.choice(np.asarray(bundle.offline.keys), requests)
    listeners = rng.choice(np.asarray(bundle.history.keys), requests)
    listens = [rng.choice(bundle.history.row(int(user))[0], ONLINE_LISTENS) for user in listeners]
    cold = np.asarray(bundle.offline.keys).max() + 1 + np.arange(requests)
    empty = np.empty(0, dtype=np.int32)
    return {
        "warm, no online listens": [(int(user), empty) for user in warm],
        f"warm, {ONLINE_LISTENS} online listens": [(int(user), played) for user, played in zip(warm, listens)],
        f"cold, {ONLINE_LISTENS} online listens": [(int(user), played) for user, played in zip(cold, listens)],
    }


def time_calls(bundle: ServingBundle, cases: list[tuple[int, np.ndarray]], k: int) -> np.ndarray:
    """Wall microseconds of each call (after one untimed pass that pages the rows in)."""
    for user, listens in cases:
        blend_for_user(bundle, user, listens, k, bundle.blend)
    spent = np.empty(len(cases))
    for i, (user, listens) in enumerate(cases):
        began = time.perf_counter_ns()
        blend_for_user(bundle, user, listens, k, bundle.blend)
        spent[i] = (time.perf_counter_ns() - began) / 1000
    return spent


def time_reranker(bundle: ServingBundle, cases: list[tuple[int, np.ndarray]], k: int) -> np.ndarray:
    """Wall microseconds of the re-ranker alone (features and trees) on each request's candidate lists."""
    found = [candidate_lists(bundle, user, listens, k, bundle.blend) for user, listens in cases]
    found = [lists for lists in found if len(lists.online)]
    spent = np.empty(len(found))
    for i, lists in enumerate(found):
        began = time.perf_counter_ns()
        learned_order(bundle, lists)
        spent[i] = (time.perf_counter_ns() - began) / 1000
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="models/serving")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bundle = ServingBundle.open(args.bundle)
    print(f"bundle {args.bundle} ({bundle.version}), {args.requests} calls per kind, k = {args.k}\n")
    print("| request | median µs | p90 µs | p99 µs |\n|---|---|---|---|")
    for kind, cases in sample_cases(bundle, args.requests, args.seed).items():
        spent = time_calls(bundle, cases, args.k)
        print(f"| {kind} | {np.median(spent):.0f} | {np.quantile(spent, 0.9):.0f} | {np.quantile(spent, 0.99):.0f} |")
        if len(bundle.reranker) and kind.startswith("warm") and len(cases[0][1]):
            spent = time_reranker(bundle, cases, args.k)
            print(f"| of which the re-ranker ({len(bundle.reranker)} trees) | {np.median(spent):.0f} | "
                  f"{np.quantile(spent, 0.9):.0f} | {np.quantile(spent, 0.99):.0f} |")


if __name__ == "__main__":
    main()
