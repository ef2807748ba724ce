"""Cleaning rules for the raw tracks and interactions, applied in the documented order.

Tracks: duplicate ids (keep first) -> empty genre/album/artist list -> genre id
missing from the catalog. Events: nulls -> exact duplicate rows -> tracks not
kept -> users with too few remaining events. Each rule reports how many rows it
removed, so ``data_quality.json`` tells what the data cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .validation import validate_values

LIST_COLUMNS = ("albums", "artists", "genres")
INT32_MAX = np.iinfo(np.int32).max


@dataclass
class Events:
    """Interactions as plain numpy columns (no pandas index: the real file's is not unique)."""

    user_id: np.ndarray  # int32
    track_id: np.ndarray  # int32
    track_seq: np.ndarray  # int16
    started_at: np.ndarray  # datetime64[ns]

    def __len__(self) -> int:
        return len(self.user_id)

    def take(self, mask: np.ndarray) -> "Events":
        return Events(self.user_id[mask], self.track_id[mask], self.track_seq[mask], self.started_at[mask])

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "user_id": self.user_id, "track_id": self.track_id,
            "track_seq": self.track_seq, "started_at": self.started_at,
        })


def read_tracks(path: Path) -> pa.Table:
    """tracks.parquet's columns, with track ids checked to fit the int32 ids of the events."""
    tracks = pq.read_table(path, columns=["track_id", *LIST_COLUMNS])
    ids = tracks["track_id"].to_numpy()
    validate_values(path, "track_id", ids.min() >= 0 and ids.max() <= INT32_MAX,
                    f"ids in 0..{INT32_MAX}", f"values from {ids.min()} to {ids.max()}")
    return tracks


def read_events(path: Path) -> tuple[Events, np.ndarray]:
    """Interactions as numpy columns (ignoring the stored pandas index) and a mask of rows with nulls."""
    table = pq.read_table(path, columns=["user_id", "track_id", "track_seq", "started_at"])
    nulls = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        if column.null_count:
            nulls |= column.is_null().to_numpy(zero_copy_only=False)
    columns = {name: table[name].fill_null(0).to_numpy() for name in ("user_id", "track_id", "track_seq")}
    for name, top in (("user_id", INT32_MAX), ("track_id", INT32_MAX), ("track_seq", np.iinfo(np.int16).max)):
        values = columns[name][~nulls]
        if len(values):
            validate_values(path, name, values.min() >= 0 and values.max() <= top,
                            f"ids in 0..{top}", f"values from {values.min()} to {values.max()}")
    started_at = table["started_at"].cast(pa.timestamp("ns")).fill_null(0).to_numpy()
    del table
    events = Events(columns["user_id"].astype(np.int32), columns["track_id"].astype(np.int32),
                    columns["track_seq"].astype(np.int16), started_at)
    return events, nulls


def catalog_ids(catalog: pd.DataFrame, kind: str) -> np.ndarray:
    return np.unique(catalog.loc[catalog["type"] == kind, "id"].to_numpy(np.int64))


def has_unknown_ids(column: pa.ChunkedArray | pa.Array, allowed: np.ndarray) -> np.ndarray:
    """Per row of a list column: does it hold any id outside ``allowed``?"""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    unknown = ~np.isin(values, allowed)
    return np.bincount(parents[unknown], minlength=len(column)) > 0


def clean_tracks(tracks: pa.Table, catalog: pd.DataFrame) -> tuple[pa.Table, dict[str, int]]:
    """Apply the track rules; return the kept tracks and the count each rule removed."""
    report = {"tracks_in": tracks.num_rows}
    track_ids = tracks["track_id"].to_numpy()
    first = np.sort(np.unique(track_ids, return_index=True)[1])
    report["tracks_removed_duplicate_id"] = tracks.num_rows - len(first)
    tracks = tracks.take(pa.array(first))

    empty = np.zeros(tracks.num_rows, dtype=bool)
    for column in LIST_COLUMNS:
        lengths = pc.fill_null(pc.list_value_length(tracks[column]), 0).to_numpy()
        empty |= lengths == 0
    report["tracks_removed_empty_list"] = int(empty.sum())
    tracks = tracks.filter(pa.array(~empty))

    unknown_genre = has_unknown_ids(tracks["genres"], catalog_ids(catalog, "genre"))
    report["tracks_removed_unknown_genre"] = int(unknown_genre.sum())
    tracks = tracks.filter(pa.array(~unknown_genre))

    for column, kind in (("albums", "album"), ("artists", "artist")):
        flags = has_unknown_ids(tracks[column], catalog_ids(catalog, kind))
        values = pc.list_flatten(tracks[column]).to_numpy(zero_copy_only=False)
        report[f"tracks_with_unknown_{kind}"] = int(flags.sum())
        report[f"unknown_{kind}_ids"] = int(len(np.setdiff1d(values, catalog_ids(catalog, kind))))
    report["tracks_out"] = tracks.num_rows
    return tracks, report


def duplicate_rows(events: Events, candidate: np.ndarray) -> np.ndarray:
    """Mask of ``candidate`` rows repeating an earlier candidate row exactly (all four columns).

    Exact duplicates share (user, track), so only rows whose (user, track) key
    repeats are compared in full: one int64 sort instead of a 4-column hash.
    """
    key = events.user_id.astype(np.int64) * 2**32 + (events.track_id.astype(np.int64) & 0xFFFFFFFF)
    key[~candidate] = -1 - np.flatnonzero(~candidate)  # never equal to anything
    order = np.argsort(key)
    same = key[order[1:]] == key[order[:-1]]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    rows = np.flatnonzero(repeated)
    mask = np.zeros(len(key), dtype=bool)
    if len(rows):
        mask[rows[events.take(rows).to_frame().duplicated(keep="first").to_numpy()]] = True
    return mask


def events_per_id(ids: np.ndarray) -> np.ndarray:
    """Event count indexed by id (ids are validated non-negative): O(n), no sort."""
    return np.bincount(ids) if len(ids) else np.zeros(0, dtype=np.int64)


def clean_events(events: Events, kept_track_ids: np.ndarray, min_user_events: int,
                 has_nulls: np.ndarray | None = None) -> tuple[Events, dict[str, int]]:
    """Apply the event rules in order; ``has_nulls`` marks rows with a null in any column.

    Each rule narrows one boolean mask over the input rows, and the rows are
    copied once at the end: at 214M events every extra copy costs 4 GB.
    """
    keep = ~has_nulls if has_nulls is not None else np.ones(len(events), dtype=bool)
    report = {"events_in": len(events), "users_in": int(np.count_nonzero(events_per_id(events.user_id[keep])))}
    report["events_removed_null"] = int(len(events) - keep.sum())

    def narrow(rule: str, passes: np.ndarray) -> None:
        report[rule] = int((keep & ~passes).sum())
        keep[:] &= passes

    narrow("events_removed_duplicate", ~duplicate_rows(events, keep))
    narrow("events_removed_unknown_track", np.isin(events.track_id, kept_track_ids, kind="table"))
    counts = events_per_id(events.user_id[keep])
    enough = np.zeros(len(events), dtype=bool)
    enough[keep] = counts[events.user_id[keep]] >= min_user_events
    report["users_removed_few_events"] = int(((counts > 0) & (counts < min_user_events)).sum())
    narrow("events_removed_few_user_events", enough)
    report["events_out"] = int(keep.sum())
    report["users_out"] = int((counts >= min_user_events).sum())
    return events.take(keep), report
