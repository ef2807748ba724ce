"""Row-group streaming: a streamed file has write_parquet's bytes; per-id counts, presence and codes by chunk."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.recsys import streaming
from src.recsys.io import write_parquet
from src.recsys.streaming import (ROW_GROUP_ROWS, IdCodes, Presence, Tally, pandas_schema, parquet_stream,
                                  row_groups)


def digest(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def events() -> pa.Table:
    """A bit more than one default row group of event-like columns."""
    rng = np.random.default_rng(1)
    n = ROW_GROUP_ROWS + 54_321
    return pa.table({
        "user_id": np.sort(rng.integers(0, 50_000, n)).astype(np.int32),
        "track_id": rng.integers(0, 30_000, n).astype(np.int32),
        "track_seq": rng.integers(0, 500, n).astype(np.int16),
        "started_at": np.sort(rng.integers(0, 10**15, n)).astype("datetime64[ns]"),
    })


def test_streamed_pieces_make_write_parquets_bytes(tmp_path, events):
    write_parquet(events, tmp_path / "whole.parquet")
    with parquet_stream(tmp_path / "streamed.parquet", events.schema) as write:
        start = 0
        for size in (7, 300_000, ROW_GROUP_ROWS - 7, 1, 10**7):
            write(events.slice(start, size))
            start += size
    assert digest(tmp_path / "streamed.parquet") == digest(tmp_path / "whole.parquet")
    assert [t.num_rows for t in row_groups(tmp_path / "streamed.parquet")] == [ROW_GROUP_ROWS, 54_321]


def test_a_frame_streamed_with_its_pandas_schema(tmp_path, events):
    frame = events.slice(0, 1000).to_pandas()
    write_parquet(frame, tmp_path / "frame.parquet")
    with parquet_stream(tmp_path / "streamed.parquet", pandas_schema(events.schema)) as write:
        for batch in events.slice(0, 1000).to_batches(max_chunksize=300):
            write(pa.Table.from_batches([batch]))
    assert digest(tmp_path / "streamed.parquet") == digest(tmp_path / "frame.parquet")


def test_an_empty_stream_writes_the_empty_file(tmp_path, events):
    write_parquet(events.schema.empty_table(), tmp_path / "empty.parquet")
    with parquet_stream(tmp_path / "streamed.parquet", events.schema):
        pass
    assert digest(tmp_path / "streamed.parquet") == digest(tmp_path / "empty.parquet")


def test_a_failed_stream_leaves_no_file_and_no_new_folder(tmp_path, events):
    with pytest.raises(RuntimeError):
        with parquet_stream(tmp_path / "new" / "deeper" / "out.parquet", events.schema) as write:
            write(events.slice(0, 10))
            raise RuntimeError("the stage failed")
    assert list(tmp_path.iterdir()) == []


def test_tally_grows_and_adds():
    tally = Tally()
    tally.add(np.array([3, 1, 3]))
    tally.add(np.array([0, 7]))
    tally.add(np.array([], dtype=np.int64))
    assert tally.counts.tolist() == [1, 1, 0, 2, 0, 0, 0, 1]
    assert tally.of(np.array([3, 9, 7])).tolist() == [2, 0, 1]
    assert tally.present().tolist() == [0, 1, 3, 7]


def test_presence():
    seen = Presence()
    assert seen.count() == 0 and seen.contains(np.array([0])).tolist() == [False]
    seen.add(np.array([5, 2, 5]))
    seen.add(np.array([40]))
    assert seen.count() == 3
    assert seen.contains(np.array([2, 3, 40, 41, 10**6])).tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("max_table_ids", [1 << 28, 50])  # a table, or a binary search for ids too sparse
def test_id_codes(monkeypatch, max_table_ids):
    monkeypatch.setattr(streaming, "MAX_TABLE_IDS", max_table_ids)
    codes = IdCodes(np.array([4, 9, 100]))
    assert (codes.table is None) == (max_table_ids == 50)
    assert codes(np.array([9, 4, 100, 9])).tolist() == [1, 0, 2, 1]
    assert codes(np.array([5, -1, 101, 2**31 - 1, 100])).tolist() == [-1, -1, -1, -1, 2]
    assert IdCodes(np.array([], dtype=np.int64))(np.array([3])).tolist() == [-1]


def test_row_groups_reads_the_asked_columns(tmp_path, events):
    pq.write_table(events.slice(0, 100), tmp_path / "e.parquet", row_group_size=30)
    groups = list(row_groups(tmp_path / "e.parquet", ["track_id"]))
    assert [g.num_rows for g in groups] == [30, 30, 30, 10] and groups[0].column_names == ["track_id"]
    assert pa.concat_tables(groups)["track_id"].equals(events.slice(0, 100)["track_id"])
    assert pd.api.types.is_integer_dtype(groups[0].to_pandas()["track_id"])
