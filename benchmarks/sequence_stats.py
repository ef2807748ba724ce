"""Time of the `eda` sequence statistics on large random events (peak memory: run it under /usr/bin/time -v).

    /usr/bin/time -v python -m benchmarks.sequence_stats --events 50000000 --tracks 1000000
    /usr/bin/time -v python -m benchmarks.sequence_stats --events 50000000 --shuffle   # the sorting fallback

Events are int32 columns in (user, day, track_seq) order, as in the default data; --shuffle permutes
the rows so the statistics have to sort first. Albums hold 10 consecutive track ids, artists 5 albums;
every 50th track has neither. About 30% of listens play the track id after the previous listen's, so the
album statistics are not all zero. Prints the seconds taken, the memory added and the statistics.
"""
from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
import pyarrow as pa

from src.recsys.sequences import sequence_stats


def random_events(n_events: int, n_users: int, n_tracks: int, seed: int) -> tuple[np.ndarray, ...]:
    """Sorted users and days, track_seq 1..n per user, tracks drawn uniformly but
    30% play the id after the previous listen's: int32/int16 as in the files."""
    rng = np.random.default_rng(seed)
    user_day = np.sort(rng.integers(0, n_users, n_events) * 365 + rng.integers(0, 365, n_events))
    user_id, day = (user_day // 365).astype(np.int32), (19000 + user_day % 365).astype(np.int32)
    del user_day
    starts = np.flatnonzero(np.r_[True, user_id[1:] != user_id[:-1]]).astype(np.int32)
    first_row = np.repeat(starts, np.diff(np.r_[starts, n_events]))
    track_seq = (np.arange(n_events, dtype=np.int32) - first_row + 1).astype(np.int16)  # int16 as in the files
    del first_row
    track_id = rng.integers(0, n_tracks, n_events, dtype=np.int32)
    follows = np.flatnonzero(rng.random(n_events) < 0.3)[1:] if n_events else []
    track_id[follows] = np.minimum(track_id[follows - 1] + 1, n_tracks - 1)  # some album-order plays
    return user_id, day, track_seq, track_id


def catalog(n_tracks: int) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Track ids with one album and one artist each, as Arrow list arrays (no per-row Python objects)."""
    track_ids = np.arange(n_tracks, dtype=np.int32)
    has = track_ids % 50 != 0
    offsets = pa.array(np.r_[0, np.cumsum(has)].astype(np.int32))
    albums = pa.ListArray.from_arrays(offsets, pa.array((track_ids[has] // 10).astype(np.int64)))
    artists = pa.ListArray.from_arrays(offsets, pa.array((track_ids[has] // 50).astype(np.int64)))
    return track_ids, albums, artists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--shuffle", action="store_true", help="permute the rows: measures the sorting fallback")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    user_id, day, track_seq, track_id = random_events(args.events, args.users, args.tracks, args.seed)
    if args.shuffle:
        order = np.random.default_rng(args.seed + 1).permutation(args.events)
        user_id, day, track_seq, track_id = user_id[order], day[order], track_seq[order], track_id[order]
        del order
    track_ids, albums, artists = catalog(args.tracks)
    print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f} s")

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    tracemalloc.start()  # numpy reports its buffers to tracemalloc: the peak is what the statistics add
    started = time.perf_counter()
    stats = sequence_stats(user_id, day, track_seq, track_id, track_ids, albums, artists)
    seconds = time.perf_counter() - started
    extra = tracemalloc.get_traced_memory()[1] / 2**30
    print(f"sequence_stats: {seconds:.1f} s, numpy peak on top of the inputs {extra:.2f} GiB, "
          f"process peak RSS {rss_before:.2f} GiB before, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB after")
    print(stats)


if __name__ == "__main__":
    main()
