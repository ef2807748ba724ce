"""Top-popular baseline: distinct listeners, deterministic ties, names and dtypes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.recsys import popularity
from src.recsys.popularity import distinct_listeners, top_popular, top_popular_of_file


@pytest.fixture
def train() -> pd.DataFrame:
    pairs = [
        # track 5: user 1 listens 10 times -> 1 listener (would win on raw listens)
        *[(1, 5)] * 10,
        # track 7: 3 listeners
        (1, 7), (2, 7), (3, 7),
        # tracks 9 and 8: 2 listeners each (tie: 8 first)
        (1, 9), (2, 9), (2, 9),
        (3, 8), (4, 8),
        # track 3: 2 listeners too, lowest id among the tied ones
        (5, 3), (6, 3),
        # track 4: 1 listener
        (6, 4),
    ]
    users, tracks = zip(*pairs)
    return pd.DataFrame({"user_id": np.array(users, dtype=np.int32), "track_id": np.array(tracks, dtype=np.int32)})


@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": np.array([3, 4, 5, 7, 8, 9], dtype=np.int32),
        "name": ["three", "four", "five", "seven", None, "nine"],  # 8 has no name
    })


def test_distinct_listeners_counts_each_pair_once(train):
    track_ids = np.array([3, 4, 5, 6, 7, 8, 9])
    counts = distinct_listeners([(train["user_id"].to_numpy(), train["track_id"].to_numpy())], track_ids)
    assert dict(zip(track_ids.tolist(), counts.tolist())) == {3: 2, 4: 1, 5: 1, 6: 0, 7: 3, 8: 2, 9: 2}


@pytest.mark.parametrize("key_space", [2**32, 64, 7])  # 7 // 6 tracks: one user a block
def test_distinct_listeners_over_chunks_and_user_blocks(monkeypatch, key_space):
    """Chunks cut through users and user blocks (the keys' uint32 space, shrunk) split the work: same counts."""
    rng = np.random.default_rng(0)
    users, tracks = rng.integers(0, 40, 3000), rng.choice([3, 5, 8, 9, 20, 31], 3000)
    expected = pd.DataFrame({"u": users, "t": tracks}).drop_duplicates().groupby("t").size()
    monkeypatch.setattr(popularity, "KEY_SPACE", key_space)
    chunks = [(users[start:start + 700], tracks[start:start + 700]) for start in range(0, 3000, 700)]
    counts = distinct_listeners(chunks, np.array([3, 5, 8, 9, 20, 31]))
    assert counts.tolist() == expected.tolist()


def test_distinct_listeners_rejects_a_track_outside_track_ids():
    with pytest.raises(ValueError):
        distinct_listeners([(np.array([1]), np.array([4]))], np.array([3, 5]))


def test_top_popular_of_file_reads_row_groups_as_top_popular(tmp_path, train, items):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(train), path, row_group_size=4)
    assert pq.ParquetFile(path).num_row_groups > 1
    pd.testing.assert_frame_equal(top_popular_of_file(path, items, 4), top_popular(train, items, 4))


def test_ranks_by_listeners_then_lower_track_id(train, items):
    top = top_popular(train, items, n=10)
    assert top["track_id"].tolist() == [7, 3, 8, 9, 4, 5]
    assert top["listeners"].tolist() == [3, 2, 2, 2, 1, 1]
    assert top["rank"].tolist() == [1, 2, 3, 4, 5, 6]


def test_truncates_to_n(train, items):
    top = top_popular(train, items, n=2)
    assert top["track_id"].tolist() == [7, 3]
    assert top["rank"].tolist() == [1, 2]


def test_names_attached(train, items):
    top = top_popular(train, items, n=10).set_index("track_id")
    assert top.loc[7, "name"] == "seven"
    assert top.loc[5, "name"] == "five"
    assert pd.isna(top.loc[8, "name"])


def test_dtypes(train, items):
    top = top_popular(train, items, n=10)
    assert top["track_id"].dtype == np.int32
    assert top["rank"].dtype == np.int16
    assert top["listeners"].dtype == np.int64
    assert top.index.tolist() == list(range(len(top)))


def test_input_order_does_not_matter(train, items):
    shuffled = train.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(top_popular(shuffled, items, 10), top_popular(train, items, 10))
