"""Synthesise a full-size serving bundle (the real data's shape, random content) for the service load test.

A scale 1.0 pipeline run takes long and the load test only needs arrays of the right sizes and shapes:
1.37M users x 30 offline recommendations, 0.93M tracks x 10 similar and x 20 played-next tracks, albums
and artists of neighbouring ids, the default blend settings, ~180M history listens
with a heavy-tailed per-user length, the popularity order of every listened track and a catalog of
~1M named tracks, with sparse ids like the real data. Everything is drawn with vectorised numpy,
the history in user chunks so the peak stays within a few GiB, and saved with the project's own
``bundle_builder.save_bundle`` (same files and manifest as the `serving` stage writes). Not a test:

    python benchmarks/full_size_bundle.py --out /tmp/fullbundle

Keep the output outside the repository: it is ~1.2 GB.
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.recsys.serving.blend_config import BlendConfig  # noqa: E402
from src.recsys.serving.trees import TreeEnsemble  # noqa: E402
from src.recsys.serving.bundle_builder import album_tracks, artist_tracks, popularity_order, save_bundle  # noqa: E402
from src.recsys.serving.bundle_reader import ServingBundle, TrackCatalog  # noqa: E402
from src.recsys.serving.ragged import RaggedTable  # noqa: E402

VOCABULARY = ("love night star heart time neon summer rain fire dream city road light blue gold river moon "
              "dance wild song home storm silver shadow ocean winter spring echo glass paper stone sky "
              "осень весна лето зима море ветер небо город ночь звезда").split()
HISTORY_SIGMA = 1.28  # lognormal spread of history lengths: median ~0.44 x mean, as in the pipeline's
MAX_HISTORY = 20_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="bundle folder (replaced if it exists)")
    parser.add_argument("--users", type=int, default=1_370_000, help="users with recommendations and history")
    parser.add_argument("--tracks", type=int, default=930_000, help="listened tracks (with similar tracks)")
    parser.add_argument("--catalog", type=int, default=1_000_000, help="catalog tracks (>= --tracks)")
    parser.add_argument("--recs", type=int, default=30, help="offline recommendations per user")
    parser.add_argument("--similar", type=int, default=10, help="similar tracks per track")
    parser.add_argument("--played-next", type=int, default=20, help="played-next tracks per track")
    parser.add_argument("--album-size", type=float, default=1.5, help="mean catalog tracks per album")
    parser.add_argument("--artist-size", type=float, default=6.5, help="mean catalog tracks per artist")
    parser.add_argument("--history-mean", type=float, default=131.0, help="mean distinct listened tracks per user")
    parser.add_argument("--skew", type=float, default=2.5,
                        help="popularity skew: a listen's popularity rank is tracks * U**skew")
    parser.add_argument("--head", type=int, default=100, help="length of the top-popular chart at the head")
    parser.add_argument("--chunk-users", type=int, default=100_000, help="users per history chunk (memory bound)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blend-from", type=Path, default=None,
                        help="a bundle whose blend settings and re-ranker to carry (e.g. models/serving), "
                             "to time the learned strategy at full size")
    return parser.parse_args(argv)


def sparse_ids(rng: np.random.Generator, count: int, span: float) -> np.ndarray:
    """``count`` sorted distinct int32 ids below ``count * span``: gaps like the real, filtered id spaces."""
    return np.sort(rng.choice(int(count * span), size=count, replace=False)).astype(np.int32)


def track_names(rng: np.random.Generator, count: int) -> pa.Array:
    """Short names of one to three vocabulary words (pyarrow string kernels: no Python loop per name)."""
    vocabulary = pa.array(VOCABULARY)
    words = [vocabulary.take(pa.array(rng.integers(0, len(VOCABULARY), count))) for _ in range(3)]
    n_words = rng.integers(1, 4, count)
    for position in (1, 2):  # null words are skipped by the join
        words[position] = pc.if_else(pa.array(n_words > position), words[position], pa.scalar(None, pa.string()))
    names = pc.binary_join_element_wise(*words, " ", null_handling="skip")
    return pc.utf8_capitalize(names)


def catalog_from_names(track_ids: np.ndarray, names: pa.Array) -> TrackCatalog:
    """The catalog arrays straight from the names' Arrow buffers (ids are already sorted)."""
    names = names.cast(pa.large_string())
    _, offsets, data = names.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[names.offset: names.offset + len(names) + 1]
    name_bytes = np.frombuffer(data, dtype=np.uint8)[offsets[0]: offsets[-1]].copy()
    none = np.full(len(track_ids), -1, dtype=np.int32)
    return TrackCatalog(track_ids, (offsets - offsets[0]).astype(np.int64), name_bytes, none, none,
                        np.zeros(len(track_ids), np.int32))


def history_lengths(rng: np.random.Generator, users: int, mean: float) -> np.ndarray:
    """Heavy-tailed (lognormal) listens per user, rescaled so the clipped lengths average ``mean``."""
    raw = rng.lognormal(0.0, HISTORY_SIGMA, users)
    lengths = np.clip(np.rint(raw * mean / raw.mean()), 1, MAX_HISTORY)
    return lengths.astype(np.int64)


def skewed_ranks(rng: np.random.Generator, count: int, tracks: int, skew: float) -> np.ndarray:
    """Popularity ranks (0 = most popular) with a power-law head: P(rank < x) = (x / tracks) ** (1 / skew)."""
    return np.minimum((tracks * rng.random(count) ** skew).astype(np.int64), tracks - 1)


def history_chunk(rng: np.random.Generator, lengths: np.ndarray, rank_to_track: np.ndarray,
                  skew: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct listened tracks of a chunk of users: (row lengths, items in row order).

    Draws ``lengths`` listens per user by popularity, then one sort of ``row << 32 | track`` keys
    orders each row by track id and exposes the repeats, which are dropped (so rows come out a bit shorter).
    """
    rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    tracks = rank_to_track[skewed_ranks(rng, int(lengths.sum()), len(rank_to_track), skew)]
    keys = np.sort((rows << 32) | tracks.astype(np.int64))
    del rows, tracks
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    counts = np.bincount(keys >> 32, minlength=len(lengths))
    return counts, (keys & 0xFFFFFFFF).astype(np.int32)


def keep_ratio(rng: np.random.Generator, lengths: np.ndarray, rank_to_track: np.ndarray, skew: float) -> float:
    """Share of drawn listens that survive de-duplication, from a pilot chunk (to aim at the mean exactly)."""
    pilot = lengths[: min(len(lengths), 20_000)]
    counts, _ = history_chunk(rng, pilot, rank_to_track, skew)
    return float(counts.sum() / pilot.sum())


def build_history(rng: np.random.Generator, user_ids: np.ndarray, rank_to_track: np.ndarray, catalog_max: int,
                  args: argparse.Namespace) -> tuple[RaggedTable, np.ndarray]:
    """The history table, chunk by chunk into one preallocated items array, and listeners per track id.

    Listeners are indexed by track id up to ``catalog_max``, so catalog tracks nobody heard count 0.
    """
    target = history_lengths(rng, len(user_ids), args.history_mean)
    ratio = keep_ratio(rng, target, rank_to_track, args.skew)
    drawn = np.maximum(np.rint(target / ratio), 1).astype(np.int64)
    items = np.empty(int(drawn.sum()), dtype=np.int32)  # an upper bound: de-duplication only shrinks rows
    counts = np.empty(len(user_ids), dtype=np.int64)
    listeners = np.zeros(int(catalog_max) + 1, dtype=np.int64)
    filled = 0
    for start in range(0, len(user_ids), args.chunk_users):
        stop = min(start + args.chunk_users, len(user_ids))
        chunk_counts, chunk_items = history_chunk(rng, drawn[start:stop], rank_to_track, args.skew)
        counts[start:stop] = chunk_counts
        items[filled: filled + len(chunk_items)] = chunk_items
        listeners += np.bincount(chunk_items, minlength=len(listeners))
        filled += len(chunk_items)
        print(f"  history: {stop:,} users, {filled:,} listens", flush=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return RaggedTable(user_ids, offsets, items[:filled]), listeners


def distinct_rows(rng: np.random.Generator, starts: np.ndarray, width: int, modulus: int, max_gap: int) -> np.ndarray:
    """``len(starts) x width`` ranks, distinct within each row: a start plus increasing gaps, modulo ``modulus``.

    The gap is capped so the running sum stays below ``modulus``: a row never wraps onto itself or its
    start, so its entries are distinct without a sort or a rejection loop.
    """
    max_gap = max(1, min(max_gap, (modulus - 1) // width))
    steps = np.cumsum(rng.integers(1, max_gap + 1, (len(starts), width), dtype=np.int64), axis=1)
    return (starts[:, None] + steps) % modulus


def decreasing_scores(rng: np.random.Generator, rows: int, width: int, first_mean: float, step: float) -> np.ndarray:
    """Scores that fall along each row (best first), as a ranker or a cosine similarity gives them."""
    first = rng.normal(first_mean, abs(first_mean) * 0.2 + 0.1, (rows, 1))
    return (first - np.cumsum(rng.exponential(step, (rows, width)), axis=1)).astype(np.float32).ravel()


def ranked_table(keys: np.ndarray, ranks: np.ndarray, rank_to_track: np.ndarray, scores: np.ndarray) -> RaggedTable:
    """A fixed-width table: ``keys[i]`` -> ``rank_to_track[ranks[i]]`` with ``scores`` best first."""
    width = ranks.shape[1]
    offsets = np.arange(len(keys) + 1, dtype=np.int64) * width
    return RaggedTable(keys, offsets, rank_to_track[ranks.ravel()], scores)


def synthesise(args: argparse.Namespace) -> ServingBundle:
    """Every table of the bundle from one random generator."""
    rng = np.random.default_rng(args.seed)
    catalog_ids = sparse_ids(rng, args.catalog, 2.1)
    listened = np.sort(rng.choice(catalog_ids, size=args.tracks, replace=False))
    rank_to_track = rng.permutation(listened)  # popularity rank -> track id: popular ids are spread out
    user_ids = sparse_ids(rng, args.users, 1.05)
    history, listeners_by_id = build_history(rng, user_ids, rank_to_track, int(catalog_ids[-1]), args)
    listeners = listeners_by_id[catalog_ids].astype(np.int32)  # 0 for catalog tracks nobody listened to
    head = catalog_ids[np.lexsort((catalog_ids, -listeners))[: args.head]]
    popular, popular_listeners = popularity_order(head, catalog_ids, listeners)
    print("  offline and similar", flush=True)
    offline_starts = skewed_ranks(rng, len(user_ids), args.tracks, args.skew)
    offline = ranked_table(user_ids, distinct_rows(rng, offline_starts, args.recs, args.tracks, 1_000), rank_to_track,
                           decreasing_scores(rng, len(user_ids), args.recs, 0.5, 0.1))
    track_ranks = np.arange(args.tracks, dtype=np.int64)
    similar_ranks = distinct_rows(rng, track_ranks, args.similar, args.tracks, 5_000)
    similar_order = np.argsort(rank_to_track)  # similar keys must be sorted track ids
    similar = ranked_table(rank_to_track[similar_order], similar_ranks[similar_order], rank_to_track,
                           np.clip(decreasing_scores(rng, args.tracks, args.similar, 0.8, 0.03), 0.0, 1.0))
    played_next = ranked_table(rank_to_track[similar_order],
                               distinct_rows(rng, track_ranks, args.played_next, args.tracks, 2_000)[similar_order],
                               rank_to_track, np.clip(decreasing_scores(rng, args.tracks, args.played_next, 0.3, 0.01), 0, 1))
    print("  catalog names, albums and artists", flush=True)
    catalog = catalog_from_names(catalog_ids, track_names(rng, len(catalog_ids)))
    albums = np.cumsum(rng.random(len(catalog_ids)) < 1 / args.album_size).astype(np.int32)  # runs of neighbouring ids
    artists = (albums // max(1, round(args.artist_size / args.album_size))).astype(np.int32)
    catalog = dataclasses.replace(catalog, albums=albums, artists=artists, listeners=listeners)
    return ServingBundle(offline=offline, similar=similar, history=history, played_next=played_next,
                         album_tracks=album_tracks(catalog), artist_tracks=artist_tracks(catalog, listeners),
                         popular=popular, popular_listeners=popular_listeners, catalog=catalog,
                         blend=BlendConfig(), reranker=TreeEnsemble.empty(), manifest={})


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.catalog < args.tracks:
        raise SystemExit("--catalog must be at least --tracks")
    started = time.perf_counter()
    bundle = synthesise(args)
    if args.blend_from:
        source = ServingBundle.open(args.blend_from)
        bundle = bundle.with_blend(source.blend, source.reranker)
    built = time.perf_counter() - started
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    manifest = save_bundle(bundle, args.out)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"bundle {manifest['version']} in {args.out}: {folder_size(args.out) / 2**30:.2f} GiB; "
          f"synthesised in {built:.1f}s, saved in {total - built:.1f}s, total {total:.1f}s, peak RSS {peak:.2f} GiB")
    for name, count in manifest["counts"].items():
        print(f"  {name}: {count:,}")


if __name__ == "__main__":
    main()
