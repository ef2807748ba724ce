"""Time-based split: the boundary, reproducible train sampling, unknown test tracks and cold users."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.recsys.config import ConfigError
from src.recsys.io import write_parquet
from src.recsys.time_split import split_file, time_split

from tests.helpers.synthetic import SPLIT_DATE

SPLIT = "2022-12-16"
AT = np.datetime64("2022-12-16T00:00:00", "ns")
NS = np.timedelta64(1, "ns")


def frame(rows: list[tuple[int, int, np.datetime64]]) -> pd.DataFrame:
    users, tracks, times = zip(*rows)
    return pd.DataFrame({
        "user_id": np.array(users, dtype=np.int32),
        "track_id": np.array(tracks, dtype=np.int32),
        "track_seq": np.arange(1, len(rows) + 1, dtype=np.int16),
        "started_at": np.array(times, dtype="datetime64[ns]"),
    })


@pytest.fixture
def boundary_events() -> pd.DataFrame:
    return frame([
        (1, 10, AT - np.timedelta64(30, "D")),
        (1, 11, AT - NS),                       # the last nanosecond before the split: train
        (2, 10, AT),                            # exactly at the split: test
        (2, 12, AT - np.timedelta64(1, "D")),
        (1, 12, AT + np.timedelta64(5, "h")),   # during the split day: test
        (3, 10, AT + np.timedelta64(3, "D")),   # user 3 has no train event: cold
        (3, 99, AT + np.timedelta64(4, "D")),   # track 99 never in train: dropped
        (1, 98, AT + np.timedelta64(4, "D")),   # dropped too
    ])


def test_boundary_belongs_to_test(boundary_events):
    train, test, report = time_split(boundary_events, SPLIT, 1.0, 0)
    assert train["track_seq"].tolist() == [1, 2, 4]
    assert test["track_seq"].tolist() == [3, 5, 6]
    assert (train["started_at"] < AT).all()
    assert (test["started_at"] >= AT).all()


def test_unknown_tracks_dropped_and_counted(boundary_events):
    train, test, report = time_split(boundary_events, SPLIT, 1.0, 0)
    assert not test["track_id"].isin([98, 99]).any()
    assert report["test_events_before_filter"] == 5
    assert report["test_events_dropped_unknown_track"] == 2
    assert report["test_events"] == 3 == len(test)
    assert report["train_events"] == 3 == len(train)
    assert report["train_tracks"] == 3  # 10, 11, 12
    assert report["train_users"] == 2  # 1, 2


def test_cold_users_counted(boundary_events):
    _, test, report = time_split(boundary_events, SPLIT, 1.0, 0)
    assert report["test_users"] == 3  # users 1, 2, 3 (each keeps a test event on a known track)
    assert report["cold_test_users"] == 1  # user 3
    assert 3 in set(test["user_id"])  # a cold user's events on known tracks stay in test


def test_outputs_have_a_clean_index(boundary_events):
    train, test, _ = time_split(boundary_events, SPLIT, 1.0, 0)
    assert train.index.tolist() == list(range(len(train)))
    assert test.index.tolist() == list(range(len(test)))
    assert list(train.columns) == list(boundary_events.columns)


@pytest.fixture(scope="module")
def many_events() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 20_000
    days = rng.integers(0, 60, n)
    return pd.DataFrame({
        "user_id": rng.integers(0, 500, n).astype(np.int32),
        "track_id": rng.integers(0, 300, n).astype(np.int32),
        "track_seq": np.ones(n, dtype=np.int16),
        "started_at": np.datetime64("2022-11-01", "ns") + days.astype("timedelta64[D]"),
    })


def test_train_sampling_is_reproducible_and_close_to_the_fraction(many_events):
    n_train = int((many_events["started_at"] < AT).sum())
    a_train, a_test, a_report = time_split(many_events, SPLIT, 0.25, 42)
    b_train, b_test, _ = time_split(many_events, SPLIT, 0.25, 42)
    c_train, _, _ = time_split(many_events, SPLIT, 0.25, 43)
    pd.testing.assert_frame_equal(a_train, b_train)
    pd.testing.assert_frame_equal(a_test, b_test)
    assert not a_train.equals(c_train)
    assert abs(len(a_train) / n_train - 0.25) < 0.02
    assert a_report["train_events"] == len(a_train)
    # sampled rows are genuine train rows (a subset, before the split)
    assert (a_train["started_at"] < AT).all()
    full_train, full_test, _ = time_split(many_events, SPLIT, 1.0, 42)
    assert len(full_train) == n_train
    assert len(a_train.merge(full_train.drop_duplicates(), how="left", indicator=True).query("_merge != 'both'")) == 0
    # sampling never touches the test side beyond the unknown-track filter
    assert len(a_test) <= len(full_test)
    assert a_test["track_id"].isin(a_train["track_id"]).all()


def test_generated_split_partitions_the_events(generated):
    data = generated
    split_at = np.datetime64(pd.Timestamp(SPLIT_DATE))
    events, train, test, report = data.events, data.train, data.test, data.split_report
    assert (train["started_at"] < split_at).all() and (test["started_at"] >= split_at).all()
    assert len(train) == (events["started_at"] < split_at).sum()
    dropped = report["test_events_dropped_unknown_track"]
    assert len(train) + len(test) + dropped == len(events)
    assert dropped == (~events.loc[events["started_at"] >= split_at, "track_id"].isin(train["track_id"])).sum()
    assert test["track_id"].isin(train["track_id"]).all()
    cold = np.setdiff1d(test["user_id"].unique(), train["user_id"].unique())
    assert report["cold_test_users"] == len(cold)


@pytest.mark.parametrize("frac", [1.0, 0.25])
def test_split_file_by_row_groups_writes_what_write_parquet_writes_of_time_split(tmp_path, many_events, frac):
    """Row groups of 3,000 events: train streamed out, sampling drawn chunk by chunk, the same bytes."""
    events = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(many_events, preserve_index=False), events, row_group_size=3_000)
    report = split_file(events, tmp_path / "train.parquet", tmp_path / "test.parquet", SPLIT, frac, 42)
    train, test, expected = time_split(many_events, SPLIT, frac, 42)
    assert report == expected
    for name, frame in (("train", train), ("test", test)):
        write_parquet(frame, tmp_path / f"{name}_frame.parquet")
        assert (tmp_path / f"{name}.parquet").read_bytes() == (tmp_path / f"{name}_frame.parquet").read_bytes()
    before = many_events[many_events["started_at"] < AT]  # the draws of one rng over all train rows, in order
    sampled = before[np.random.default_rng(42).random(len(before)) < frac] if frac < 1 else before
    pd.testing.assert_frame_equal(train, sampled.reset_index(drop=True))


def test_split_file_fails_writing_nothing(tmp_path, many_events):
    events = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(many_events, preserve_index=False), events, row_group_size=3_000)
    with pytest.raises(ConfigError, match="split.date"):
        split_file(events, tmp_path / "out" / "train.parquet", tmp_path / "out" / "test.parquet", "2030-01-01", 1.0, 0)
    assert not (tmp_path / "out").exists()
