"""EDA summaries on tiny inputs with answers worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from src.recsys.eda_stats import (day_table, distribution_summary, log_histogram, scan_events, summary_of, top_entities,
                                  top_tracks)
from src.recsys.sequences import day_numbers, sequence_stats


def test_distribution_summary_known_values():
    summary = distribution_summary(np.array([1, 2, 3, 4, 100]))
    assert list(summary) == ["mean", "std", "min", "max", "p25", "p50", "p75", "p90", "p99"]
    assert summary["mean"] == 22.0
    assert summary["std"] == pytest.approx(math.sqrt(1522.0))  # population std
    assert summary["min"] == 1 and summary["max"] == 100
    assert (summary["p25"], summary["p50"], summary["p75"]) == (2.0, 3.0, 4.0)
    assert summary["p90"] == pytest.approx(61.6)
    assert summary["p99"] == pytest.approx(96.16)
    assert all(type(v) in (int, float) for v in summary.values())  # plain JSON numbers


def test_log_histogram_known_bins():
    counts = np.array([1, 1, 1, 2, 3, 5, 10, 50, 100, 1000])
    hist = log_histogram(counts, 3)  # edges 1, 10, 100, 1000; the last bin includes 1000
    assert hist.to_dict("list") == {"listens_from": [1, 10, 100], "count": [6, 2, 2]}


@pytest.mark.parametrize("counts", [
    [1], [1, 1, 1], [2, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], list(range(1, 5000, 7)), [1, 16_637, 3, 99],
])
@pytest.mark.parametrize("bins", [1, 5, 30])
def test_log_histogram_counts_sum_to_n(counts, bins):
    counts = np.array(counts)
    hist = log_histogram(counts, bins)
    assert hist["count"].sum() == len(counts)
    assert hist["listens_from"].iloc[0] == 1
    assert hist["listens_from"].is_monotonic_increasing and hist["listens_from"].is_unique
    assert len(hist) <= bins
    assert hist["listens_from"].dtype == np.int64


def test_log_histogram_bins_hold_their_values():
    counts = np.array([1, 4, 9, 16, 25, 36, 49, 64, 81, 100])
    hist = log_histogram(counts, 4)
    starts = hist["listens_from"].to_numpy()
    owner = np.searchsorted(starts, counts, side="right") - 1  # bin whose start is the last <= value
    assert np.bincount(owner, minlength=len(hist)).tolist() == hist["count"].tolist()


@pytest.mark.parametrize("ordered", [True, False])
def test_scan_events_by_row_groups(tmp_path, ordered):
    """Row groups of 50 listens: per user, per day, the period and the sequence counts of the whole table (a
    file out of listening order is sorted in memory instead)."""
    rng = np.random.default_rng(3)
    n = 1_000
    frame = pd.DataFrame({
        "user_id": rng.integers(0, 30, n).astype(np.int32), "track_id": rng.integers(0, 8, n).astype(np.int32),
        "track_seq": np.arange(n, dtype=np.int16),
        "started_at": np.datetime64("2022-03-01", "ns") + rng.integers(0, 5 * 86_400, n).astype("timedelta64[s]"),
    })
    if ordered:
        frame = frame.sort_values(["user_id", "started_at"]).assign(track_seq=np.arange(n, dtype=np.int16))
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False, row_group_size=50)
    items = pd.DataFrame({"track_id": np.arange(8, dtype=np.int32), "albums": [[1], [1], [2], [], [1], [3], [2], [1]],
                          "artists": [[5], [5], [6], [6], [], [5], [7], [6]]})
    found = scan_events(path, items)
    days = frame["started_at"].dt.strftime("%Y-%m-%d").value_counts().sort_index()
    assert day_table(found.days, found.day_counts).to_dict("list") == {"date": days.index.tolist(),
                                                                         "events": days.tolist()}
    assert found.user_counts.tolist() == frame.groupby("user_id").size().tolist()
    assert (found.events, found.first, found.last) == (n, frame["started_at"].min(), frame["started_at"].max())
    started_at = frame["started_at"].to_numpy()
    assert found.sequences == sequence_stats(frame["user_id"].to_numpy(), day_numbers(started_at),
                                             frame["track_seq"].to_numpy(), frame["track_id"].to_numpy(),
                                             items["track_id"].to_numpy(), items["albums"], items["artists"])
    assert found.sequences["consecutive_pairs"] > 0


@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": np.array([10, 11, 12, 13, 14], dtype=np.int32),
        "name": ["a", None, "c", "d", "e"],
        "genres": [[1, 2], [2], [3], [1], [3]],
        "artists": [[7], [8], [7, 9], [9], [8]],
        "listens": [5, 9, 5, 1, 0],
    })


def test_top_tracks_ties_keep_the_first(items):
    top = top_tracks(items, 3)
    assert top.columns.tolist() == ["track_id", "name", "listens"]
    assert top["track_id"].tolist() == [11, 10, 12]
    assert top["listens"].tolist() == [9, 5, 5]
    assert top["name"].isna().tolist() == [True, False, False]
    assert top_tracks(items, 1)["track_id"].tolist() == [11]
    assert len(top_tracks(items, 50)) == 5


def test_top_entities_genres(items):
    catalog = pd.DataFrame({"id": np.array([1, 2, 4], dtype=np.int64), "name": ["pop", "rock", "jazz"], "tracks": [2, 2, 0]})
    top = top_entities(items, catalog, "genres", 2)
    # genre 2: 5 + 9 = 14 listens on 2 tracks; genre 1: 5 + 1 = 6 on 2; genre 3: 5 + 0 on 2
    assert top.columns.tolist() == ["id", "name", "listens", "tracks"]
    assert top.to_dict("list") == {"id": [2, 1], "name": ["rock", "pop"], "listens": [14, 6], "tracks": [2, 2]}
    everything = top_entities(items, catalog, "genres", 10)
    assert everything["id"].tolist() == [2, 1, 3]
    assert pd.isna(everything["name"].iloc[2])  # genre 3 has no catalog name


def test_top_entities_artists(items):
    catalog = pd.DataFrame({"id": np.array([7, 8, 9], dtype=np.int64), "name": ["X", "Y", "Z"], "tracks": [2, 2, 2]})
    top = top_entities(items, catalog, "artists", 3)
    assert top.to_dict("list") == {"id": [7, 8, 9], "name": ["X", "Y", "Z"], "listens": [10, 9, 6], "tracks": [2, 2, 2]}


def test_top_entities_from_parquet_lists(tmp_path, items):
    """items as the eda stage reads them back from parquet (lists become numpy arrays)."""
    items.to_parquet(tmp_path / "items.parquet", index=False)
    back = pd.read_parquet(tmp_path / "items.parquet")
    catalog = pd.DataFrame({"id": np.array([1, 2, 3], dtype=np.int64), "name": ["pop", "rock", "x"]})
    assert top_entities(back, catalog, "genres", 3)["listens"].tolist() == [14, 6, 5]


def test_eda_summary(items):
    first, last = np.datetime64("2022-01-01", "ns"), np.datetime64("2022-12-31T23:00", "ns")
    summary = summary_of(items, np.array([2, 1]), 3, first, last)
    assert summary["events"] == 3 and summary["users"] == 2 and summary["tracks"] == 5
    assert summary["share_tracks_never_listened"] == pytest.approx(0.2)
    assert summary["listens_per_track"]["min"] == 1 and summary["listens_per_track"]["max"] == 9
    assert summary["listens_per_user"]["mean"] == 1.5
    assert (summary["first_day"], summary["last_day"]) == ("2022-01-01", "2022-12-31")
