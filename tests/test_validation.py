"""Up-front validation of the raw files, and the clean stage failing cleanly on bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers.raw import EVENT_ROWS, run_stage, write_params
from src.recsys.validation import RAW_SCHEMAS, DataValidationError, validate_parquet, validate_raw_dir
from src.recsys.cleaning import read_events


def error_of(raw_dir) -> str:
    with pytest.raises(DataValidationError) as info:
        validate_raw_dir(raw_dir)
    return str(info.value)


def test_valid_raw_dir_passes_with_extra_columns_and_files(raw_dir):
    """Validation checks the expected columns only: a richer export (an extra column, an extra file) passes."""
    tracks = pq.read_table(raw_dir / "tracks.parquet")
    pq.write_table(tracks.append_column("duration", pa.array(np.arange(len(tracks)))), raw_dir / "tracks.parquet")
    pq.write_table(pa.table({"x": [1]}), raw_dir / "extra.parquet")
    assert validate_raw_dir(raw_dir) is None  # raises DataValidationError on any problem
    assert "duration" in pq.read_schema(raw_dir / "tracks.parquet").names  # the check ran on the richer file


def test_missing_raw_dir_names_the_first_file(tmp_path):
    message = error_of(tmp_path / "nowhere")
    assert "tracks.parquet" in message and "not found" in message


@pytest.mark.parametrize("name", sorted(RAW_SCHEMAS))
def test_missing_file(raw_dir, name):
    (raw_dir / name).unlink()
    message = error_of(raw_dir)
    assert str(raw_dir / name) in message
    assert "file not found" in message
    for column in RAW_SCHEMAS[name]:  # what was expected
        assert column in message


@pytest.mark.parametrize("name, column", [
    ("tracks.parquet", "genres"), ("tracks.parquet", "track_id"),
    ("catalog_names.parquet", "name"), ("interactions.parquet", "started_at"),
    ("interactions.parquet", "track_seq"),
])
def test_missing_column(raw_dir, raw_tables, name, column):
    table = raw_tables[name]
    pq.write_table(table.drop_columns([column]), raw_dir / name)
    message = error_of(raw_dir)
    assert str(raw_dir / name) in message
    assert f"missing column '{column}'" in message
    assert RAW_SCHEMAS[name][column] in message  # the expected type
    for other in table.column_names:  # what was found
        if other != column:
            assert other in message


def replace_column(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(column), column, values)


@pytest.mark.parametrize("name, column, make, expected, found", [
    ("tracks.parquet", "genres", lambda t: pa.array(["[1]"] * t.num_rows), "list<integer>", "string"),
    ("tracks.parquet", "albums", lambda t: pa.array([[1.5]] * t.num_rows), "list<integer>", "double"),
    ("tracks.parquet", "track_id", lambda t: pa.array([str(i) for i in range(t.num_rows)]), "integer", "string"),
    ("catalog_names.parquet", "type", lambda t: pa.array(range(t.num_rows)), "string", "int64"),
    ("catalog_names.parquet", "id", lambda t: pa.array(np.arange(t.num_rows, dtype=float)), "integer", "double"),
    ("interactions.parquet", "started_at", lambda t: pa.array(["2022-01-01"] * t.num_rows), "timestamp", "string"),
    ("interactions.parquet", "user_id", lambda t: pa.array(np.ones(t.num_rows)), "integer", "double"),
    ("interactions.parquet", "track_seq", lambda t: pa.array([True] * t.num_rows), "integer", "bool"),
])
def test_wrong_column_type(raw_dir, raw_tables, name, column, make, expected, found):
    table = raw_tables[name]
    pq.write_table(replace_column(table, column, make(table)), raw_dir / name)
    message = error_of(raw_dir)
    assert str(raw_dir / name) in message
    assert f"'{column}'" in message
    assert f"should be {expected}, found" in message
    assert found in message.split(", found ", 1)[1]


@pytest.mark.parametrize("name", sorted(RAW_SCHEMAS))
def test_empty_table(raw_dir, raw_tables, name):
    pq.write_table(raw_tables[name].slice(0, 0), raw_dir / name)
    message = error_of(raw_dir)
    assert str(raw_dir / name) in message
    assert "empty" in message and "at least one row" in message


@pytest.mark.parametrize("content", [b"track_id,genres\n1,[1]\n", b"", b"PAR1 truncated"], ids=["csv", "zero-bytes", "garbage"])
def test_unreadable_file(raw_dir, content):
    (raw_dir / "interactions.parquet").write_bytes(content)
    message = error_of(raw_dir)
    assert str(raw_dir / "interactions.parquet") in message
    assert "not a readable parquet file" in message


def test_directory_instead_of_file(raw_dir):
    (raw_dir / "catalog_names.parquet").unlink()
    (raw_dir / "catalog_names.parquet").mkdir()
    message = error_of(raw_dir)
    assert str(raw_dir / "catalog_names.parquet") in message


@pytest.mark.parametrize("schema", [
    {"user_id": pa.int64(), "track_id": pa.uint32(), "track_seq": pa.int32(), "started_at": pa.timestamp("us")},
    {"user_id": pa.int32(), "track_id": pa.int32(), "track_seq": pa.int16(), "started_at": pa.timestamp("ms")},
])
def test_other_integer_and_timestamp_widths_accepted(tmp_path, raw_tables, schema):
    path = tmp_path / "interactions.parquet"
    pq.write_table(raw_tables["interactions.parquet"].cast(pa.schema(schema)), path)
    validate_parquet(path, RAW_SCHEMAS["interactions.parquet"])


def test_large_list_and_dictionary_string_accepted(tmp_path, raw_tables):
    tracks = raw_tables["tracks.parquet"]
    tracks = replace_column(tracks, "genres", tracks["genres"].cast(pa.large_list(pa.int32())))
    pq.write_table(tracks, tmp_path / "tracks.parquet")
    validate_parquet(tmp_path / "tracks.parquet", RAW_SCHEMAS["tracks.parquet"])
    names = raw_tables["catalog_names.parquet"]
    names = replace_column(names, "type", names["type"].dictionary_encode())
    pq.write_table(names, tmp_path / "catalog_names.parquet")
    validate_parquet(tmp_path / "catalog_names.parquet", RAW_SCHEMAS["catalog_names.parquet"])


def test_extra_columns_allowed(tmp_path, raw_tables):
    table = raw_tables["interactions.parquet"].append_column("extra", pa.array([1] * len(EVENT_ROWS)))
    pq.write_table(table, tmp_path / "interactions.parquet")
    validate_parquet(tmp_path / "interactions.parquet", RAW_SCHEMAS["interactions.parquet"])


# ---------------------------------------------------------------- read_events (value checks, nulls, index)


def test_read_events_ignores_a_non_unique_stored_pandas_index(tmp_path, raw_tables):
    frame = raw_tables["interactions.parquet"].to_pandas()
    frame.index = np.zeros(len(frame), dtype=np.int64)  # like the real file, concatenated from parts
    path = tmp_path / "interactions.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=True), path)
    assert not pd.read_parquet(path).index.is_unique  # the index really is stored
    events, nulls = read_events(path)
    assert not nulls.any()
    assert events.to_frame().to_dict("list") == frame.reset_index(drop=True).to_dict("list")
    assert events.user_id.dtype == np.int32 and events.track_seq.dtype == np.int16


def test_read_events_marks_nulls(tmp_path):
    table = pa.table({
        "user_id": pa.array([1, None, 1, 1], type=pa.int64()),
        "track_id": pa.array([5, 6, None, 8], type=pa.int64()),
        "track_seq": pa.array([1, 2, 3, 4], type=pa.int16()),
        "started_at": pa.array([0, 0, 0, None], type=pa.timestamp("us")),
    })
    path = tmp_path / "interactions.parquet"
    pq.write_table(table, path)
    events, nulls = read_events(path)
    assert nulls.tolist() == [False, True, True, True]
    assert events.started_at.dtype == np.dtype("datetime64[ns]")


@pytest.mark.parametrize("column, bad", [("user_id", -1), ("track_id", 2**31), ("track_seq", 40_000)])
def test_read_events_rejects_ids_out_of_range(tmp_path, raw_tables, column, bad):
    table = raw_tables["interactions.parquet"].cast(pa.schema(
        {"user_id": pa.int64(), "track_id": pa.int64(), "track_seq": pa.int64(), "started_at": pa.timestamp("ns")}))
    values = table[column].to_numpy().copy()
    values[2] = bad
    path = tmp_path / "interactions.parquet"
    pq.write_table(replace_column(table, column, pa.array(values)), path)
    with pytest.raises(DataValidationError) as info:
        read_events(path)
    message = str(info.value)
    assert str(path) in message and f"'{column}'" in message and str(bad) in message


# ---------------------------------------------------------------- the clean stage


def assert_nothing_written(workdir):
    assert not (workdir / "data" / "processed").exists()
    assert not (workdir / "metrics").exists()


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_clean_stage_fails_cleanly_on_bad_schema(tmp_path, raw_dir, raw_tables, engine):
    """On both engines: the footers are checked before Spark starts, with the same message."""
    tracks = raw_tables["tracks.parquet"]
    pq.write_table(replace_column(tracks, "genres", pa.array(["pop"] * tracks.num_rows)), raw_dir / "tracks.parquet")
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_params(workdir, raw_dir, engine=engine)
    result = run_stage("clean", workdir)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr  # one clear message, not a stack trace
    assert f"{raw_dir / 'tracks.parquet'}: column 'genres' should be list<integer>, found string" in result.stderr
    assert_nothing_written(workdir)


def test_clean_stage_fails_cleanly_on_bad_values(tmp_path, monkeypatch, raw_dir, raw_tables, caplog):
    from src.stages import clean

    table = raw_tables["interactions.parquet"]
    pq.write_table(replace_column(table, "user_id", pa.array([-5] * table.num_rows, type=pa.int32())),
                   raw_dir / "interactions.parquet")
    write_params(tmp_path, raw_dir)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        clean.main()
    assert info.value.code == 1
    assert "column 'user_id' should be ids in 0..2147483647, found values from -5 to -5" in caplog.text
    assert_nothing_written(tmp_path)


def test_clean_stage_outputs_on_the_shared_fixture(tmp_path, monkeypatch, raw_dir, raw_tables):
    """Happy path in-process, with a non-unique stored pandas index on the interactions."""
    from src.stages import clean

    frame = raw_tables["interactions.parquet"].to_pandas()
    frame.index = np.arange(len(frame)) % 3
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=True), raw_dir / "interactions.parquet")
    write_params(tmp_path, raw_dir)
    monkeypatch.chdir(tmp_path)
    clean.main()

    quality = json.loads((tmp_path / "metrics" / "data_quality.json").read_text())
    assert quality == {
        "tracks_in": 7, "tracks_removed_duplicate_id": 1, "tracks_removed_empty_list": 1,
        "tracks_removed_unknown_genre": 1, "tracks_with_unknown_album": 1, "unknown_album_ids": 1,
        "tracks_with_unknown_artist": 0, "unknown_artist_ids": 0, "tracks_out": 4,
        "tracks_without_name": 1, "tracks_never_listened": 0,
        "events_in": 19, "users_in": 4, "events_removed_null": 0, "events_removed_duplicate": 1,
        "events_removed_unknown_track": 3, "users_removed_few_events": 1,
        "events_removed_few_user_events": 3, "events_out": 12, "users_out": 3,
    }
    processed = tmp_path / "data" / "processed"
    events = pq.read_table(processed / "events.parquet")
    assert events.schema.types == [pa.int32(), pa.int32(), pa.int16(), pa.timestamp("ns")]
    assert events.column_names == ["user_id", "track_id", "track_seq", "started_at"]
    expected = [(u, t) for u, t, _, _ in EVENT_ROWS if u != 3 and t in (100, 101, 102, 103)]
    assert list(zip(events["user_id"].to_pylist(), events["track_id"].to_pylist())) == sorted(set(expected), key=expected.index)
    items = pd.read_parquet(processed / "items.parquet")
    assert items["track_id"].tolist() == [100, 101, 102, 103]
    assert items["listens"].tolist() == [3, 3, 3, 3]
    assert items["name"].isna().tolist() == [False, False, False, True]
    for name in ("catalog_albums", "catalog_artists", "catalog_genres", "catalog_tracks"):
        assert (processed / f"{name}.parquet").exists()
    assert pd.read_parquet(processed / "catalog_tracks.parquet")["listens"].tolist() == [3, 3, 3, 0, 0]
