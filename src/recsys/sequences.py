"""Sequence statistics of the listening logs: how listens of one user on one day follow each other.

Any events file has them, so the real data and the synthetic generator can be compared on the same
numbers. Two listens are *consecutive* when they are by the same user on the same day and adjacent in
``track_seq`` order (gaps left by cleaning are skipped). A track's artist and album are the first ids
of its ``artists`` and ``albums`` lists; a track with an empty list never matches. *Album order*: the
next track of an album is the next larger track id among the catalog tracks whose first album it is
(the files carry no track numbers, and ids within an album follow the release order).

At 214M events everything runs on int32 columns in bounded chunks: no per-row Python.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

CHUNK = 1 << 22  # pairs per chunk: bounds the temporaries to a few tens of MB
NS_PER_DAY = 86_400 * 10**9


def day_numbers(started_at: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """Days since 1970 as int32, converted chunk by chunk: no 214M-long int64 temporary."""
    days = np.empty(len(started_at), dtype=np.int32)
    ns = started_at.view(np.int64)
    for start in range(0, len(ns), chunk):
        days[start:start + chunk] = ns[start:start + chunk] // NS_PER_DAY
    return days


def first_ids(lists) -> np.ndarray:
    """First id of every row of a list column (pandas lists or an Arrow list array); -1 where empty."""
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    elif not isinstance(lists, pa.Array):
        lists = pa.array(lists)
    values = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    leading = np.ones(len(parents), dtype=bool)
    leading[1:] = parents[1:] != parents[:-1]
    first = np.full(len(lists), -1, dtype=np.int64)
    first[parents[leading]] = values[leading]
    return first


def dense_codes(ids: np.ndarray) -> np.ndarray:
    """int32 codes 0..k-1 for the ids >= 0, -1 kept: catalog ids may not fit int32."""
    codes = np.full(len(ids), -1, dtype=np.int32)
    present = ids >= 0
    codes[present] = np.unique(ids[present], return_inverse=True)[1].reshape(-1)
    return codes


def by_track(track_ids: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Lookup table indexed by track id (-1 for ids absent from the catalog)."""
    table = np.full(size, -1, dtype=np.int32)
    table[track_ids] = values
    return table


def album_successors(track_ids: np.ndarray, album_codes: np.ndarray, size: int) -> np.ndarray:
    """Per track id: the next track of its first album in ascending id order, -1 for the last or none."""
    in_album = album_codes >= 0
    albums, tracks = album_codes[in_album], track_ids[in_album].astype(np.int32)
    order = np.lexsort((tracks, albums))
    albums, tracks = albums[order], tracks[order]
    same = albums[1:] == albums[:-1]
    successor = np.full(size, -1, dtype=np.int32)
    successor[tracks[:-1][same]] = tracks[1:][same]
    return successor


def pair_slices(n: int, chunk: int) -> Iterator[slice]:
    """Slices overlapping by one row, so every adjacent pair (i, i+1) lies in exactly one of them."""
    for start in range(0, max(n - 1, 0), chunk):
        yield slice(start, min(start + chunk, n - 1) + 1)


def is_listening_order(user_id: np.ndarray, day: np.ndarray, track_seq: np.ndarray, chunk: int = CHUNK) -> bool:
    """Rows sorted by (user, day, track_seq)? The clean stage keeps the raw order, so check, don't assume."""
    for part in pair_slices(len(user_id), chunk):
        u, d, q = user_id[part], day[part], track_seq[part]
        same_user, same_day = u[1:] == u[:-1], d[1:] == d[:-1]
        later = (u[1:] > u[:-1]) | (same_user & ((d[1:] > d[:-1]) | (same_day & (q[1:] >= q[:-1]))))
        if not later.all():
            return False
    return True


def listening_order(user_id: np.ndarray, day: np.ndarray, track_seq: np.ndarray) -> np.ndarray:
    """Row order by (user, day, track_seq): one argsort of a packed int64 key, several times faster
    than np.lexsort on three keys; lexsort only when the columns do not fit 31 + 16 + 16 bits."""
    first_day, last_day = int(day.min()), int(day.max())
    fits = (user_id.min() >= 0 and track_seq.min() >= 0 and last_day - first_day < 2**16
            and track_seq.max() < 2**16)
    if not fits:
        return np.lexsort((track_seq, day, user_id))
    key = user_id.astype(np.int64)
    key <<= 32
    part = (day - np.int32(first_day)).astype(np.int64)  # in-place shifts: two int64 columns at most
    part <<= 16
    key |= part
    part[:] = track_seq
    key |= part
    del part
    return np.argsort(key)


def count_pairs(user_id, day, track_id, artist, album, successor, chunk: int = CHUNK) -> dict[str, int]:
    """Consecutive pairs and how many of them share the artist, the album, or follow album order."""
    counts = dict.fromkeys(("pairs", "same_artist", "same_album", "album_order"), 0)
    for part in pair_slices(len(user_id), chunk):
        u, d, t = user_id[part], day[part], track_id[part]
        consecutive = (u[1:] == u[:-1]) & (d[1:] == d[:-1])
        a, b = artist[t], album[t]
        counts["pairs"] += int(np.count_nonzero(consecutive))
        counts["same_artist"] += int(np.count_nonzero(consecutive & (a[1:] == a[:-1]) & (a[1:] >= 0)))
        counts["same_album"] += int(np.count_nonzero(consecutive & (b[1:] == b[:-1]) & (b[1:] >= 0)))
        counts["album_order"] += int(np.count_nonzero(consecutive & (successor[t[:-1]] == t[1:])))
    return counts


def ratio(numerator: int, denominator: int) -> float:
    """Plain float, 0.0 on an empty denominator: JSON metrics carry no NaN."""
    return float(numerator / denominator) if denominator else 0.0


def sequence_stats(user_id: np.ndarray, day: np.ndarray, track_seq: np.ndarray, track_id: np.ndarray,
                   catalog_track_ids: np.ndarray, albums, artists, chunk: int = CHUNK) -> dict:
    """The `sequences` block of metrics/eda.json; ``day`` is int day numbers (see ``day_numbers``).

    Rows already in (user, day, track_seq) order are used as they are; otherwise they are sorted
    first (one argsort of a packed int64 key). A same-artist run is a maximal block of consecutive
    listens sharing the artist; a listen of a track without artist is a run of its own, so
    runs = listens - same-artist pairs.
    """
    if not is_listening_order(user_id, day, track_seq, chunk):
        order = listening_order(user_id, day, track_seq)
        user_id, day, track_id = user_id[order], day[order], track_id[order]
        del order
    size = int(max(catalog_track_ids.max(initial=-1), track_id.max(initial=-1))) + 1
    artist, album, successor = (by_track(catalog_track_ids, per_track, size)
                                for per_track in track_features(catalog_track_ids, albums, artists))
    return sequence_summary(len(user_id), count_pairs(user_id, day, track_id, artist, album, successor, chunk))


def track_features(catalog_track_ids: np.ndarray, albums, artists) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per catalog track (in ``catalog_track_ids`` order): its first artist's and album's codes (-1 when none)
    and the next track of its album (-1 when last or none): what ``count_pairs`` compares."""
    size = int(catalog_track_ids.max(initial=-1)) + 1
    album_codes = dense_codes(first_ids(albums))
    successor = album_successors(catalog_track_ids, album_codes, size)
    return dense_codes(first_ids(artists)), album_codes, successor[catalog_track_ids]


def sequence_summary(listens: int, counts: dict[str, int]) -> dict:
    """The `sequences` block from the listen count and ``count_pairs``'s counts."""
    user_days = listens - counts["pairs"]
    runs = listens - counts["same_artist"]
    return {
        "consecutive_pairs": counts["pairs"],
        "user_days": user_days,
        "listens_per_user_day": ratio(listens, user_days),
        "same_artist_share": ratio(counts["same_artist"], counts["pairs"]),
        "same_album_share": ratio(counts["same_album"], counts["pairs"]),
        "album_order_share": ratio(counts["album_order"], counts["pairs"]),
        "artist_runs_per_user_day": ratio(runs, user_days),
        "mean_artist_run_length": ratio(listens, runs),
    }
