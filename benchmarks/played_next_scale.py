"""Time and memory of the played-next table on random listening sequences at a chosen scale.

Users get Poisson-many listens, cut into days of geometric length, tracks drawn with zipf-like popularity
(weight 1 / rank ** exponent). Reports generation and build times and the peak RSS of the process (run
under ``/usr/bin/time -v`` for the OS's view too):

    /usr/bin/time -v python benchmarks/played_next_scale.py --listens 50000000 --users 500000 --tracks 1000000
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.recsys.columns import STARTED_AT, TRACK, TRACK_SEQ, USER  # noqa: E402
from src.recsys.sequential_rules import played_next  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def random_train(listens: int, users: int, tracks: int, day_length: float, exponent: float, seed: int) -> pd.DataFrame:
    """Listens sorted by (user, day, track_seq) like the train split; one new day every ~day_length listens."""
    rng = np.random.default_rng(seed)
    per_user = rng.poisson(listens / users, users).clip(1, 30_000)
    user_ids = np.repeat(np.arange(users, dtype=np.int32), per_user)
    first = np.r_[0, np.cumsum(per_user)[:-1]]
    seq = (np.arange(len(user_ids)) - np.repeat(first, per_user) + 1).astype(np.int16)
    new_day = (rng.random(len(user_ids)) < 1 / day_length) | (seq == 1)
    day = np.cumsum(new_day) - np.repeat(np.cumsum(new_day)[first], per_user)  # 0-based day within the user
    popularity = 1 / np.arange(1, tracks + 1) ** exponent
    cumulative = np.cumsum(popularity / popularity.sum())
    track_ids = np.searchsorted(cumulative, rng.random(len(user_ids))).clip(0, tracks - 1).astype(np.int32)
    started = np.datetime64("2022-01-01", "ns") + day.astype("timedelta64[D]")
    return pd.DataFrame({USER: user_ids, TRACK: rng.permutation(tracks).astype(np.int32)[track_ids],
                         TRACK_SEQ: seq, STARTED_AT: started})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=int, default=50_000_000)
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--day-length", type=float, default=20.0, help="mean listens per user-day")
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity exponent of the track draw")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--batch-listens", type=int, default=20_000_000)
    parser.add_argument("--shuffle", action="store_true", help="unsorted input: time the sort too")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    began = time.perf_counter()
    train = random_train(args.listens, args.users, args.tracks, args.day_length, args.zipf, args.seed)
    if args.shuffle:
        train = train.sample(frac=1.0, random_state=args.seed).reset_index(drop=True)
    print(f"generated {len(train):,} listens, {train[TRACK].nunique():,} tracks in {time.perf_counter() - began:.1f}s,"
          f" peak RSS {peak_rss_gib():.2f} GiB", flush=True)
    began = time.perf_counter()
    frame = played_next(train, window=args.window, distance_decay=0.5, popularity_exponent=0.5, min_support=1.0,
                        n=20, batch_listens=args.batch_listens)
    print(f"played_next: {len(frame):,} rows for {frame[TRACK].nunique():,} tracks in"
          f" {time.perf_counter() - began:.1f}s, peak RSS {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
