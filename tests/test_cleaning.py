"""Every cleaning rule and the catalog builders on hand-made tables of a few rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.raw import EVENT_ROWS, catalog_frame, events_from_rows, tracks_table
from src.recsys.catalogs import build_items, entity_catalog, track_catalog
from src.recsys.cleaning import (Events, clean_event_file, clean_events, clean_tracks, event_chunks, read_events,
                                 repeated_keys)
from src.recsys.io import DataValidationError, write_parquet

CATALOG = catalog_frame([
    (1, "genre", "pop"), (2, "genre", "rock"),
    (10, "album", "A"), (11, "album", "B"),
    (20, "artist", "X"), (21, "artist", "Y"),
    (100, "track", "Song 100"), (101, "track", "Song 101"),
])


def ids(table: pa.Table) -> list[int]:
    return table["track_id"].to_pylist()


# ---------------------------------------------------------------- clean_tracks


def test_duplicate_track_id_keeps_first_row():
    tracks = tracks_table([5, 6, 5, 5], [[10], [10], [11], [11]], [[20], [20], [21], [21]], [[1], [1], [2], [2]])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [5, 6]
    assert kept["albums"].to_pylist()[0] == [10]  # the first row's lists, not a later copy's
    assert kept["genres"].to_pylist()[0] == [1]
    assert report["tracks_in"] == 4
    assert report["tracks_removed_duplicate_id"] == 2
    assert report["tracks_out"] == 2


def test_duplicate_id_is_judged_before_the_list_rules():
    # the first copy has an empty genre list: the id is dropped entirely, the good second copy does not survive
    tracks = tracks_table([5, 5], [[10], [10]], [[20], [20]], [[], [1]])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == []
    assert report["tracks_removed_duplicate_id"] == 1
    assert report["tracks_removed_empty_list"] == 1


@pytest.mark.parametrize("column", ["albums", "artists", "genres"])
@pytest.mark.parametrize("empty", [[], None], ids=["empty", "null"])
def test_empty_or_null_list_dropped(column, empty):
    lists = {"albums": [[10], [10], [10]], "artists": [[20], [20], [20]], "genres": [[1], [1], [1]]}
    lists[column][1] = empty
    tracks = tracks_table([1, 2, 3], lists["albums"], lists["artists"], lists["genres"])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [1, 3]
    assert report["tracks_removed_empty_list"] == 1
    assert report["tracks_removed_duplicate_id"] == 0
    assert report["tracks_removed_unknown_genre"] == 0
    assert report["tracks_out"] == 2


def test_track_with_several_empty_lists_counted_once():
    tracks = tracks_table([1, 2], [[], [10]], [None, [20]], [[], [1]])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [2]
    assert report["tracks_removed_empty_list"] == 1


def test_unknown_genre_id_dropped():
    # 3: only unknown genre; 4: one known and one unknown genre -> both dropped
    tracks = tracks_table([1, 2, 3, 4], [[10]] * 4, [[20]] * 4, [[1], [1, 2], [7], [1, 7]])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [1, 2]
    assert report["tracks_removed_unknown_genre"] == 2
    assert report["tracks_out"] == 2


def test_genre_id_of_another_entity_type_is_unknown():
    # 10 is an album id in the catalog, not a genre id
    tracks = tracks_table([1, 2], [[10], [10]], [[20], [20]], [[1], [10]])
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [1]
    assert report["tracks_removed_unknown_genre"] == 1


def test_unknown_album_and_artist_ids_kept_and_counted():
    tracks = tracks_table(
        [1, 2, 3, 4],
        [[10], [10, 98], [98, 99], [11]],  # unknown albums 98, 99 on tracks 2 and 3
        [[20], [20], [21], [55]],  # unknown artist 55 on track 4
        [[1]] * 4,
    )
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [1, 2, 3, 4]
    assert kept["albums"].to_pylist() == [[10], [10, 98], [98, 99], [11]]
    assert report["tracks_with_unknown_album"] == 2
    assert report["unknown_album_ids"] == 2
    assert report["tracks_with_unknown_artist"] == 1
    assert report["unknown_artist_ids"] == 1
    assert report["tracks_out"] == 4


def test_unknown_ids_counted_only_on_kept_tracks():
    # the unknown album 98 sits on a track dropped for its unknown genre
    tracks = tracks_table([1, 2], [[10], [98]], [[20], [20]], [[1], [7]])
    _, report = clean_tracks(tracks, CATALOG)
    assert report["tracks_with_unknown_album"] == 0
    assert report["unknown_album_ids"] == 0


def test_track_rules_on_a_multi_chunk_table():
    first = tracks_table([1, 2], [[10], [10]], [[20], [20]], [[1], []])
    second = tracks_table([3, 1], [[10], [11]], [[20], [21]], [[7], [2]])
    tracks = pa.concat_tables([first, second])
    assert tracks["genres"].num_chunks == 2
    kept, report = clean_tracks(tracks, CATALOG)
    assert ids(kept) == [1]
    assert report == {
        "tracks_in": 4, "tracks_removed_duplicate_id": 1, "tracks_removed_empty_list": 1,
        "tracks_removed_unknown_genre": 1, "tracks_with_unknown_album": 0, "unknown_album_ids": 0,
        "tracks_with_unknown_artist": 0, "unknown_artist_ids": 0, "tracks_out": 1,
    }


# ---------------------------------------------------------------- clean_events


def frame(events: Events) -> list[tuple]:
    return [(int(u), int(t), int(s), str(d)[:10]) for u, t, s, d in
            zip(events.user_id, events.track_id, events.track_seq, events.started_at.astype("datetime64[D]"))]


def test_rows_with_nulls_dropped():
    rows = [(1, 5, 1, "2022-01-01"), (1, 6, 2, "2022-01-02"), (1, 7, 3, "2022-01-03"), (1, 8, 4, "2022-01-04")]
    has_nulls = np.array([False, True, False, False])
    out, report = clean_events(events_from_rows(rows), np.array([5, 6, 7, 8]), 1, has_nulls)
    assert frame(out) == [rows[0], rows[2], rows[3]]
    assert report["events_removed_null"] == 1
    assert report["events_out"] == 3


def test_exact_duplicates_dropped_keeping_first_but_other_date_is_not_a_duplicate():
    rows = [
        (1, 5, 1, "2022-01-01"),
        (1, 5, 1, "2022-01-01"),  # exact duplicate of row 0
        (1, 5, 1, "2022-01-02"),  # same (user, track, seq), other date: kept
        (1, 6, 2, "2022-01-03"),
        (1, 5, 1, "2022-01-01"),  # another exact duplicate, not adjacent
        (2, 5, 1, "2022-01-01"),  # same track and date, other user: kept
    ]
    out, report = clean_events(events_from_rows(rows), np.array([5, 6]), 1)
    assert frame(out) == [rows[0], rows[2], rows[3], rows[5]]
    assert report["events_removed_duplicate"] == 2
    assert report["events_out"] == 4


def test_same_pair_with_other_seq_is_not_a_duplicate():
    rows = [(1, 5, 1, "2022-01-01"), (1, 5, 2, "2022-01-01")]
    out, report = clean_events(events_from_rows(rows), np.array([5]), 1)
    assert len(out) == 2
    assert report["events_removed_duplicate"] == 0


def test_null_row_is_not_counted_as_a_duplicate():
    # row 1 repeats row 0 but also has a null: it is removed by the null rule only
    rows = [(1, 5, 1, "2022-01-01"), (1, 5, 1, "2022-01-01")]
    out, report = clean_events(events_from_rows(rows), np.array([5]), 1, np.array([False, True]))
    assert frame(out) == [rows[0]]
    assert report["events_removed_null"] == 1
    assert report["events_removed_duplicate"] == 0


def test_events_on_tracks_not_kept_dropped():
    rows = [(1, 5, 1, "2022-01-01"), (1, 6, 2, "2022-01-02"), (1, 7, 3, "2022-01-03")]
    out, report = clean_events(events_from_rows(rows), np.array([5, 7, 9], dtype=np.int64), 1)
    assert frame(out) == [rows[0], rows[2]]
    assert report["events_removed_unknown_track"] == 1


def test_few_events_rule_counts_remaining_events_after_the_other_rules():
    rows = [
        # user 1: 4 raw events, but one duplicate and one unknown track -> 2 remain (< 3): dropped
        (1, 5, 1, "2022-01-01"), (1, 5, 1, "2022-01-01"), (1, 6, 2, "2022-01-02"), (1, 99, 3, "2022-01-03"),
        # user 2: exactly 3 events: kept
        (2, 5, 1, "2022-01-01"), (2, 6, 2, "2022-01-02"), (2, 7, 3, "2022-01-03"),
        # user 3: 2 events: dropped
        (3, 5, 1, "2022-01-01"), (3, 6, 2, "2022-01-02"),
    ]
    out, report = clean_events(events_from_rows(rows), np.array([5, 6, 7]), 3)
    assert frame(out) == rows[4:7]
    assert report == {
        "events_in": 9, "users_in": 3, "events_removed_null": 0, "events_removed_duplicate": 1,
        "events_removed_unknown_track": 1, "users_removed_few_events": 2,
        "events_removed_few_user_events": 4, "events_out": 3, "users_out": 1,
    }


def test_event_report_counts_each_rule_exactly(raw_tables):
    """The shared fixture: one row per rule, rules applied in the documented order."""

    has_nulls = np.zeros(len(EVENT_ROWS) + 1, dtype=bool)
    has_nulls[-1] = True
    rows = EVENT_ROWS + [(1, 100, 9, "2022-05-01")]  # + a row with a null somewhere
    out, report = clean_events(events_from_rows(rows), np.array([100, 101, 102, 103]), 4, has_nulls)
    assert report == {
        "events_in": 20, "users_in": 4, "events_removed_null": 1, "events_removed_duplicate": 1,
        "events_removed_unknown_track": 3, "users_removed_few_events": 1,
        "events_removed_few_user_events": 3, "events_out": 12, "users_out": 3,
    }
    assert sorted(set(out.user_id.tolist())) == [1, 2, 4]
    assert out.user_id.dtype == np.int32 and out.track_id.dtype == np.int32
    assert out.track_seq.dtype == np.int16 and out.started_at.dtype == np.dtype("datetime64[ns]")


def test_rules_keep_the_input_order():
    rows = [(2, 6, 1, "2022-01-05"), (1, 5, 1, "2022-01-01"), (2, 5, 2, "2022-01-06"), (1, 6, 2, "2022-01-02")]
    out, _ = clean_events(events_from_rows(rows), np.array([5, 6]), 1)
    assert frame(out) == rows


def test_no_events_left():
    rows = [(1, 5, 1, "2022-01-01")]
    out, report = clean_events(events_from_rows(rows), np.array([6]), 1)
    assert len(out) == 0
    assert report["events_out"] == 0 and report["users_out"] == 0


def test_users_in_ignores_rows_whose_user_id_is_null():
    # as read_events delivers it: a null user_id is filled with 0 and flagged in has_nulls
    rows = [(7, 5, 1, "2022-01-01"), (0, 5, 2, "2022-01-02")]
    _, report = clean_events(events_from_rows(rows), np.array([5]), 1, np.array([False, True]))
    assert report["users_in"] == 1


# ---------------------------------------------------------------- catalogs


def test_build_items_names_and_listens():
    tracks = tracks_table([100, 101, 102], [[10], [11], [10, 11]], [[20], [21], [20]], [[1], [2], [1, 2]])
    items = build_items(tracks, CATALOG, np.array([100, 102, 100, 100, 102], dtype=np.int32))
    assert items["track_id"].tolist() == [100, 101, 102]
    assert items["track_id"].dtype == np.int32
    assert items["name"].tolist()[:2] == ["Song 100", "Song 101"]
    assert pd.isna(items["name"].iloc[2])  # 102 has no name in the catalog
    assert items["listens"].tolist() == [3, 0, 2]
    assert [list(v) for v in items["genres"]] == [[1], [2], [1, 2]]
    assert [list(v) for v in items["albums"]] == [[10], [11], [10, 11]]


def test_build_items_repeated_catalog_name_keeps_first():
    catalog = catalog_frame([(100, "track", "first"), (100, "track", "second"), (100, "album", "an album")])
    tracks = tracks_table([100], [[10]], [[20]], [[1]])
    items = build_items(tracks, catalog, np.array([], dtype=np.int32))
    assert items["name"].tolist() == ["first"]
    assert items["listens"].tolist() == [0]


def test_entity_catalog_counts_kept_tracks_per_id():
    tracks = tracks_table([1, 2, 3], [[10], [10], [10]], [[20], [20, 21], [20]], [[1], [1], [2]])
    artists = entity_catalog(tracks, CATALOG, "artists")
    assert artists.to_dict("list") == {"id": [20, 21], "name": ["X", "Y"], "tracks": [3, 1]}
    albums = entity_catalog(tracks, CATALOG, "albums")
    assert albums.to_dict("list") == {"id": [10, 11], "name": ["A", "B"], "tracks": [3, 0]}
    genres = entity_catalog(tracks, CATALOG, "genres")
    assert genres.to_dict("list") == {"id": [1, 2], "name": ["pop", "rock"], "tracks": [2, 1]}
    assert genres["id"].dtype == np.int64


def test_track_catalog_lists_every_named_track_with_listens():
    catalog = catalog_frame([(100, "track", "a"), (101, "track", "b"), (102, "track", "c"), (1, "genre", "pop")])
    items = pd.DataFrame({"track_id": np.array([100, 102, 103], dtype=np.int32), "listens": [4, 0, 7]})
    table = track_catalog(catalog, items)
    # 101 was dropped by cleaning: 0 listens; 103 has no name: not in the catalog
    assert table.to_dict("list") == {"id": [100, 101, 102], "name": ["a", "b", "c"], "listens": [4, 0, 0]}
    assert table["listens"].dtype == np.int64


# ---------------------------------------------------------------- the events file, a row group at a time


def reference_clean(frame: pd.DataFrame, nulls: np.ndarray, kept: np.ndarray, min_user_events: int):
    """The rules in pandas on the whole table: the rows kept and the report."""
    rows = frame[~nulls]
    unique = rows[~rows.duplicated(keep="first")]
    known = unique[unique["track_id"].isin(kept)]
    counts = known.groupby("user_id").size()
    few = counts[counts < min_user_events]
    out = known[known["user_id"].map(counts) >= min_user_events]
    return out.reset_index(drop=True), {
        "events_in": len(frame), "users_in": rows["user_id"].nunique(), "events_removed_null": int(nulls.sum()),
        "events_removed_duplicate": len(rows) - len(unique), "events_removed_unknown_track": len(unique) - len(known),
        "users_removed_few_events": len(few), "events_removed_few_user_events": int(few.sum()),
        "events_out": len(out), "users_out": int((counts >= min_user_events).sum()),
    }


@pytest.mark.parametrize("ordered", [True, False])
def test_clean_event_file_by_row_groups_matches_the_rules_on_the_whole_table(tmp_path, ordered):
    """Duplicates and users across row groups of 700 rows, nulls, unknown tracks; in listening order (no sort)
    or shuffled (keys sorted, repeated ones fetched again): the rows, the report, the listens, the bytes."""
    rng = np.random.default_rng(5)
    n = 5_000
    frame = pd.DataFrame({
        "user_id": rng.integers(0, 60, n).astype(np.int32), "track_id": rng.integers(0, 12, n).astype(np.int32),
        "track_seq": rng.integers(0, 30, n).astype(np.int16),
        "started_at": (np.datetime64("2022-01-01", "ns") + rng.integers(0, 3, n).astype("timedelta64[D]")),
    })
    if ordered:  # unique (user, track_seq), sorted: the generator's and the real file's shape
        frame = frame.drop_duplicates(["user_id", "track_seq"]).sort_values(["user_id", "track_seq"])
        frame = frame.reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    nulls = rng.random(len(frame)) < 0.02
    table = table.set_column(1, "track_id", pa.array(frame["track_id"].to_numpy(), mask=nulls))
    source = tmp_path / "interactions.parquet"
    pq.write_table(table, source, row_group_size=700)
    kept = np.array([9, 0, 3, 4, 5, 7, 8, 10, 11], dtype=np.int64)  # tracks order, not sorted

    report, listens = clean_event_file(source, kept, 5, tmp_path / "events.parquet")
    expected, expected_report = reference_clean(frame, nulls, kept, 5)
    assert report == expected_report and list(report) == list(expected_report)
    assert expected_report["events_removed_duplicate"] > 0 or ordered
    assert listens.tolist() == [int((expected["track_id"] == track).sum()) for track in kept]
    write_parquet(pa.Table.from_pandas(expected, preserve_index=False).replace_schema_metadata(),
                  tmp_path / "expected.parquet")
    assert (tmp_path / "events.parquet").read_bytes() == (tmp_path / "expected.parquet").read_bytes()
    raw, has_nulls = read_events(source)
    events, report_in_memory = clean_events(raw, kept, 5, has_nulls)
    assert report_in_memory == report and events.to_frame().equals(expected)


def test_event_chunks_report_the_whole_files_range(tmp_path):
    """A bad id in one row group: the message gives the file's min and max, and no chunk past it is handed out."""
    users = np.arange(40, dtype=np.int64)
    users[25] = -3
    table = pa.table({"user_id": users, "track_id": np.ones(40, np.int64), "track_seq": np.ones(40, np.int64),
                      "started_at": np.zeros(40, "datetime64[ns]")})
    pq.write_table(table, tmp_path / "interactions.parquet", row_group_size=10)
    handed = []
    with pytest.raises(DataValidationError, match="found values from -3 to 39"):
        for events, _ in event_chunks(tmp_path / "interactions.parquet"):
            handed.append(len(events))
    assert handed == [10, 10]


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_repeated_keys_across_chunks(chunk):
    assert not repeated_keys(np.array([1, 2, 5, 9, 10]), chunk).any()  # strictly increasing: no sort at all
    assert repeated_keys(np.array([4, 1, 2, 4, 9, 1, 3]), chunk).tolist() == [True, True, False, True, False, True,
                                                                              False]
    assert repeated_keys(np.array([1, 2, 2, 3]), chunk).tolist() == [False, True, True, False]
