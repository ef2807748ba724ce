"""Sequence statistics on hand-made listening days whose answers are counted by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from src.recsys.sequences import (album_successors, day_numbers, dense_codes, first_ids, is_listening_order,
                                  listening_order, sequence_stats)

# track: (albums, artists). Album 100 in id order: 10, 11, 12, 17 (16 lists 100 second, so it is not in it).
CATALOG = {
    10: ([100], [7]),
    11: ([100], [7]),
    12: ([100], [7]),
    13: ([200], [8]),
    14: ([], []),  # no album, no artist: never matches, not even another track without them
    15: ([200], [9, 8]),  # shares artist 8 with 13, but not as its first artist
    16: ([300, 100], []),
    17: ([100], [9]),
}

# (user, day, track_seq, track), listening order. Pairs marked: A same artist, L same album, O album order.
EVENTS = [
    (1, "2022-03-01", 1, 10),
    (1, "2022-03-01", 2, 11),  # A L O
    (1, "2022-03-01", 3, 12),  # A L O
    (1, "2022-03-02", 4, 17),  # day switch: 12 -> 17 would be album order
    (1, "2022-03-02", 6, 14),  # (seq 5 removed by cleaning: still adjacent)
    (1, "2022-03-02", 7, 16),  # both without artist: no match
    (2, "2022-03-01", 1, 13),
    (2, "2022-03-01", 2, 15),  # L O (first artists 8 and 9 differ)
    (2, "2022-03-01", 3, 11),
    (3, "2022-03-05", 1, 16),
    (3, "2022-03-05", 2, 14),
    (3, "2022-03-05", 3, 12),
    (3, "2022-03-05", 4, 10),  # A L, backwards: not album order; 10 -> 16 would share album 100 if any album counted
    (4, "2022-03-05", 1, 12),  # user switch on the same day: 10 -> 12 would be A L
    (4, "2022-03-05", 2, 17),  # L O (12 -> 17 skips 16, whose first album is 300)
]
# 15 listens on 5 user-days: 10 pairs; 3 same artist, 5 same album, 4 album order; 15 - 3 = 12 artist runs.
EXPECTED = {
    "consecutive_pairs": 10,
    "user_days": 5,
    "listens_per_user_day": 3.0,
    "same_artist_share": 0.3,
    "same_album_share": 0.5,
    "album_order_share": 0.4,
    "artist_runs_per_user_day": 2.4,
    "mean_artist_run_length": 1.25,
}


def catalog_columns():
    track_ids = np.array(list(CATALOG), dtype=np.int32)
    albums = pd.Series([albums for albums, _ in CATALOG.values()])
    artists = pd.Series([artists for _, artists in CATALOG.values()])
    return track_ids, albums, artists


def event_columns(rows):
    user, day, seq, track = zip(*rows)
    started_at = np.array([f"{d}T00:00" for d in day], dtype="datetime64[ns]")
    return (np.array(user, dtype=np.int32), day_numbers(started_at), np.array(seq, dtype=np.int16),
            np.array(track, dtype=np.int32))


def stats_of(rows, chunk: int = 1 << 22) -> dict:
    return sequence_stats(*event_columns(rows), *catalog_columns(), chunk=chunk)


def test_hand_counted_days():
    stats = stats_of(EVENTS)
    assert list(stats) == list(EXPECTED)
    assert stats == pytest.approx(EXPECTED)
    assert type(stats["consecutive_pairs"]) is int and type(stats["user_days"]) is int  # plain JSON numbers


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_chunk_boundaries_count_every_pair_once(chunk):
    assert stats_of(EVENTS, chunk) == pytest.approx(EXPECTED)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unsorted_rows_are_put_in_listening_order(seed):
    rows = [EVENTS[i] for i in np.random.default_rng(seed).permutation(len(EVENTS))]
    assert not is_listening_order(*event_columns(rows)[:3])
    assert stats_of(rows) == pytest.approx(EXPECTED)


def test_order_check():
    user, day, seq, _ = event_columns(EVENTS)
    assert is_listening_order(user, day, seq)
    assert is_listening_order(user, day, seq, chunk=1)
    swapped = seq.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert not is_listening_order(user, day, swapped, chunk=1)
    later_day_first = day.copy()
    later_day_first[3] -= 2  # user 1's fourth listen dated before their first day
    assert not is_listening_order(user, later_day_first, seq)


def test_listens_a_day_apart_by_the_clock_are_not_consecutive():
    started = np.array(["2022-03-01T23:59:59", "2022-03-02T00:00", "1969-12-31T12:00"], dtype="datetime64[ns]")
    assert day_numbers(started, chunk=2).tolist() == [19052, 19053, -1]


def test_single_listen_days_have_no_pairs():
    stats = stats_of([(1, "2022-03-01", 1, 10), (1, "2022-03-02", 2, 11), (2, "2022-03-02", 1, 12)])
    assert stats["consecutive_pairs"] == 0 and stats["user_days"] == 3
    assert stats["same_artist_share"] == stats["same_album_share"] == stats["album_order_share"] == 0.0
    assert stats["artist_runs_per_user_day"] == 1.0 and stats["mean_artist_run_length"] == 1.0


def test_no_events():
    empty = np.zeros(0, dtype=np.int32)
    stats = sequence_stats(empty, empty, empty.astype(np.int16), empty, *catalog_columns())
    assert stats == dict.fromkeys(EXPECTED, 0) and "nan" not in str(stats)


def test_first_ids_handles_empty_and_null_lists():
    assert first_ids(pd.Series([[5, 6], [], None, [2**40]])).tolist() == [5, -1, -1, 2**40]
    arrow = pa.chunked_array([pa.array([[3]]), pa.array([[], [4, 1]])])
    assert first_ids(arrow).tolist() == [3, -1, 4]


def test_dense_codes_fit_int32_and_keep_missing():
    codes = dense_codes(np.array([2**40, -1, 7, 2**40]))
    assert codes.dtype == np.int32 and codes.tolist() == [1, -1, 0, 1]


def test_album_successors_follow_ascending_ids():
    track_ids = np.array([30, 10, 20, 40, 50])
    albums = np.array([0, 0, 1, 0, -1], dtype=np.int32)
    assert album_successors(track_ids, albums, 51)[[10, 30, 40, 20, 50]].tolist() == [30, 40, -1, -1, -1]


def test_listening_order_packed_key_and_lexsort_agree():
    user = np.array([2, 1, 2, 1, 1], dtype=np.int32)
    seq = np.array([1, 3, 2, 1, 2], dtype=np.int16)
    near_days = np.array([5, 6, 5, 5, 6], dtype=np.int32)
    far_days = near_days.copy()
    far_days[[1, 4]] += 2**17  # day range too wide for the packed key: falls back to lexsort
    expected = [3, 4, 1, 0, 2]
    assert listening_order(user, near_days, seq).tolist() == expected
    assert listening_order(user, far_days, seq).tolist() == expected
