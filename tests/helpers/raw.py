"""Tiny raw tables (a few rows each, typed like the real files), the helpers that write them, and a stage run.

``tiny_raw_tables()`` is the small valid raw dataset described by ``CATALOG_ENTRIES``, ``TRACK_ROWS`` and
``EVENT_ROWS`` (the ``raw_tables``/``raw_dir`` fixtures hand it out).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import REPO_ROOT


def int_lists(rows: list[list[int] | None]) -> pa.Array:
    return pa.array(rows, type=pa.list_(pa.int64()))


def tracks_table(track_ids, albums, artists, genres) -> pa.Table:
    """A tracks.parquet table typed like the real one (int64 id, list<int64> columns)."""
    return pa.table({
        "track_id": pa.array(track_ids, type=pa.int64()),
        "albums": int_lists(albums),
        "artists": int_lists(artists),
        "genres": int_lists(genres),
    })


def catalog_frame(entries: list[tuple[int, str, str]]) -> pd.DataFrame:
    """catalog_names rows as (id, type, name)."""
    ids, kinds, names = zip(*entries) if entries else ((), (), ())
    return pd.DataFrame({"id": np.array(ids, dtype=np.int64), "type": list(kinds), "name": list(names)})


def interactions_table(rows: list[tuple[int, int, int, str]]) -> pa.Table:
    """interactions rows as (user_id, track_id, track_seq, 'YYYY-MM-DD'), typed like the real file."""
    users, tracks, seqs, days = zip(*rows)
    return pa.table({
        "user_id": pa.array(users, type=pa.int32()),
        "track_id": pa.array(tracks, type=pa.int32()),
        "track_seq": pa.array(seqs, type=pa.int16()),
        "started_at": pa.array(np.array(days, dtype="datetime64[ns]"), type=pa.timestamp("ns")),
    })


def events_from_rows(rows: list[tuple[int, int, int, str]]):
    from src.recsys.cleaning import Events

    users, tracks, seqs, days = zip(*rows)
    return Events(np.array(users, dtype=np.int32), np.array(tracks, dtype=np.int32),
                  np.array(seqs, dtype=np.int16), np.array(days, dtype="datetime64[ns]"))


# Catalog: genres 1, 2; albums 10, 11; artists 20, 21; track names for 100, 101, 102 (103 unnamed).
CATALOG_ENTRIES = [
    (1, "genre", "pop"), (2, "genre", "rock"),
    (10, "album", "Album A"), (11, "album", "Album B"),
    (20, "artist", "Artist A"), (21, "artist", "Artist B"),
    (100, "track", "Song 100"), (101, "track", "Song 101"), (102, "track", "Song 102"),
    (104, "track", "Song 104"), (105, "track", "Song 105"),
]

# Tracks: 100..103 clean (103 without a name, 102 with an unknown album 99),
# 104 has an empty genre list, 105 an unknown genre 7, 100 appears twice.
TRACK_ROWS = [
    (100, [10], [20], [1]),
    (101, [10], [20, 21], [1, 2]),
    (102, [11, 99], [21], [2]),
    (103, [11], [21], [1]),
    (104, [11], [21], []),
    (105, [11], [21], [7]),
    (100, [11], [21], [2]),  # duplicate id: dropped, the first row is kept
]

# Events: user 1 is clean (5 events), user 2 has a duplicate row and an event on the dropped
# track 105 (4 events remain), user 3 has 3 events (dropped), user 4 listens to a ghost track 999.
EVENT_ROWS = [
    (1, 100, 1, "2022-01-01"), (1, 101, 2, "2022-01-02"), (1, 102, 3, "2022-01-02"),
    (1, 103, 4, "2022-01-03"), (1, 104, 5, "2022-01-04"),
    (2, 100, 1, "2022-02-01"), (2, 100, 1, "2022-02-01"), (2, 101, 2, "2022-02-02"),
    (2, 102, 3, "2022-02-03"), (2, 103, 4, "2022-02-04"), (2, 105, 5, "2022-02-05"),
    (3, 100, 1, "2022-03-01"), (3, 101, 2, "2022-03-02"), (3, 102, 3, "2022-03-03"),
    (4, 999, 1, "2022-04-01"), (4, 100, 2, "2022-04-02"), (4, 101, 3, "2022-04-03"),
    (4, 102, 4, "2022-04-04"), (4, 103, 5, "2022-04-05"),
]


def tiny_raw_tables() -> dict[str, pa.Table]:
    """The three raw files of a tiny valid dataset, as arrow tables keyed by file name."""
    ids, albums, artists, genres = zip(*TRACK_ROWS)
    return {
        "tracks.parquet": tracks_table(ids, albums, artists, genres),
        "catalog_names.parquet": pa.Table.from_pandas(catalog_frame(CATALOG_ENTRIES), preserve_index=False),
        "interactions.parquet": interactions_table(EVENT_ROWS),
    }


def write_raw(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / name)
    return folder


def write_params(workdir: Path, raw_dir: Path, min_user_events: int = 4, engine: str = "local") -> Path:
    """A params.yaml in ``workdir`` pointing data.raw_dir at ``raw_dir``; ``engine`` is engine.name (the Spark
    settings are the shipped ones)."""
    shipped = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["engine"]
    params = {"data": {"raw_dir": str(raw_dir)}, "clean": {"min_user_events": min_user_events},
              "eda": {"top_n": 3, "histogram_bins": 5}, "engine": {**shipped, "name": engine}}
    path = workdir / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_stage(name: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m src.stages.<name>`` in ``cwd`` (outputs land there), importing src from the repo."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", f"src.stages.{name}"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
