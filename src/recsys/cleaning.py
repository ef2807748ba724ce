"""Cleaning rules for the raw tracks and interactions, applied in the documented order.

Tracks: duplicate ids (keep first) -> empty genre/album/artist list -> genre id
missing from the catalog. Events: nulls -> exact duplicate rows -> tracks not
kept -> users with too few remaining events. Each rule reports how many rows it
removed, so ``data_quality.json`` tells what the data cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .arrays import find_sorted
from .streaming import IdCodes, Presence, Tally, parquet_stream, row_groups
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

    COLUMNS: ClassVar[tuple[str, ...]] = ("user_id", "track_id", "track_seq", "started_at")

    def take(self, mask: np.ndarray) -> "Events":
        return Events(self.user_id[mask], self.track_id[mask], self.track_seq[mask], self.started_at[mask])

    @staticmethod
    def concat(parts: list["Events"]) -> "Events":
        return Events(*(np.concatenate([getattr(part, name) for part in parts]) for name in Events.COLUMNS))

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


EVENT_DTYPES = {"user_id": np.int32, "track_id": np.int32, "track_seq": np.int16}
EVENTS_SCHEMA = pa.schema([("user_id", pa.int32()), ("track_id", pa.int32()), ("track_seq", pa.int16()),
                           ("started_at", pa.timestamp("ns"))])  # what the clean stage writes


def event_chunks(path: Path) -> Iterator[tuple[Events, np.ndarray]]:
    """Interactions a row group at a time as numpy columns (ignoring the stored pandas index; nulls filled with
    0) and a mask of the rows with a null. The ids are checked to fit their dtypes over all non-null values
    of the file, after its last row group: a chunk out of range is not handed out, the rest only scanned."""
    ranges: dict[str, tuple[int, int]] = {}
    valid = True
    for table in row_groups(path, [*EVENT_DTYPES, "started_at"]):
        nulls = np.zeros(table.num_rows, dtype=bool)
        for column in table.columns:
            if column.null_count:
                nulls |= column.is_null().to_numpy(zero_copy_only=False)
        columns = {name: (table[name].fill_null(0) if table[name].null_count else table[name]).to_numpy()
                   for name in EVENT_DTYPES}
        for name, dtype in EVENT_DTYPES.items():
            values = columns[name][~nulls] if nulls.any() else columns[name]
            if len(values):
                low, high = values.min(), values.max()
                valid &= bool(low >= 0 and high <= np.iinfo(dtype).max)
                before = ranges.get(name, (low, high))
                ranges[name] = (min(low, before[0]), max(high, before[1]))
        if valid:
            started_at = table["started_at"].cast(pa.timestamp("ns"))
            started_at = (started_at.fill_null(0) if started_at.null_count else started_at).to_numpy()
            yield Events(*(columns[name].astype(dtype, copy=False) for name, dtype in EVENT_DTYPES.items()),
                         started_at), nulls
    for name, dtype in EVENT_DTYPES.items():
        if name in ranges:
            (low, high), top = ranges[name], np.iinfo(dtype).max
            validate_values(path, name, low >= 0 and high <= top, f"ids in 0..{top}", f"values from {low} to {high}")


def read_events(path: Path) -> tuple[Events, np.ndarray]:
    """All of ``event_chunks`` at once."""
    chunks = list(event_chunks(path))
    return Events.concat([events for events, _ in chunks]), np.concatenate([nulls for _, nulls in chunks])


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


SEQ_BITS = 15  # track_seq fits int16: a listen's (user, track_seq) packs into one int64 key


def listen_keys(events: Events) -> np.ndarray:
    """One int64 per row, equal for rows of the same (user, track_seq): exact duplicates share it, and a user's
    listen counter makes it (almost) unique otherwise, so only rows sharing a key are compared in full."""
    keys = events.user_id.astype(np.int64)
    keys <<= SEQ_BITS
    keys |= events.track_seq
    return keys


def repeated_keys(keys: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """Mask of the rows whose key occurs more than once; no sort when the keys are strictly increasing (a file
    in listening order: the real one and the generator's), one sorted copy otherwise."""
    parts = (keys[start:start + chunk + 1] for start in range(0, len(keys), chunk))  # overlapping by one key
    if all((part[1:] > part[:-1]).all() for part in parts):
        return np.zeros(len(keys), dtype=bool)
    ordered = np.sort(keys)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    found = np.zeros(len(keys), dtype=bool)  # binary search by chunk: np.isin would sort a copy of all keys again
    for start in range(0, len(keys), chunk):
        found[start:start + chunk] = find_sorted(repeated, keys[start:start + chunk]) >= 0
    return found


def duplicate_rows(candidates: Events) -> np.ndarray:
    """Mask of the rows repeating an earlier row exactly (all four columns)."""
    return candidates.to_frame().duplicated(keep="first").to_numpy()


def clean_event_chunks(chunks: Callable[[], Iterable[tuple[Events, np.ndarray]]], rows: int,
                       kept_track_ids: np.ndarray, min_user_events: int, write: Callable[[Events], None]
                       ) -> tuple[dict[str, int], np.ndarray]:
    """Apply the event rules in order to ``rows`` events read by ``chunks()`` (with each row's null flag); hand
    the kept rows to ``write`` chunk by chunk, in input order. Returns the count each rule removed and the
    listens of each of ``kept_track_ids`` among the kept events.

    A first pass keeps one int64 key and a flag per listen (``listen_keys``: about 2 GB at the real data's
    size, not the 11 GB of the whole table and its copies) and counts the users; the rules the whole file
    decides (duplicates, users with too few events) are settled between the passes; a second pass reads the
    chunks again and writes. Only repeated keys send a third pass to fetch their rows for the full comparison.
    """
    kept = np.unique(kept_track_ids)
    codes = IdCodes(kept)
    keys = np.empty(rows, dtype=np.int64)  # of the rows without nulls, in order
    known = np.empty(rows, dtype=bool)
    users_in = Presence()
    filled = nulls_seen = 0
    for events, nulls in chunks():
        valid = events.take(~nulls) if nulls.any() else events
        users_in.add(valid.user_id)
        keys[filled:filled + len(valid)] = listen_keys(valid)
        known[filled:filled + len(valid)] = codes(valid.track_id) >= 0
        filled += len(valid)
        nulls_seen += int(nulls.sum())
    keys, known = keys[:filled], known[:filled]
    report = {"events_in": filled + nulls_seen, "users_in": users_in.count(), "events_removed_null": nulls_seen}
    del users_in

    duplicate = repeated_keys(keys)
    if duplicate.any():
        duplicate[duplicate] = duplicate_rows(gather(chunks, duplicate))
    report["events_removed_duplicate"] = int(duplicate.sum())
    report["events_removed_unknown_track"] = int((~duplicate & ~known).sum())
    keep = known & ~duplicate
    del known, duplicate
    users = Tally()
    for start in range(0, len(keys), 1 << 22):
        part = slice(start, start + (1 << 22))
        users.add(keys[part][keep[part]] >> SEQ_BITS)
    del keys
    few = (users.counts > 0) & (users.counts < min_user_events)
    report["users_removed_few_events"] = int(few.sum())
    report["events_removed_few_user_events"] = int(users.counts[few].sum())
    report["events_out"] = int(keep.sum()) - report["events_removed_few_user_events"]
    report["users_out"] = int((users.counts >= min_user_events).sum())

    listens = Tally()
    done = 0
    for events, nulls in chunks():
        rows_kept = np.zeros(len(events), dtype=bool)
        rows_kept[~nulls] = keep[done:done + int((~nulls).sum())]
        done += int((~nulls).sum())
        rows_kept &= users.of(events.user_id) >= min_user_events
        events = events if rows_kept.all() else events.take(rows_kept)
        listens.add(codes(events.track_id))
        write(events)
    per_kept = np.zeros(len(kept), dtype=np.int64)
    per_kept[:len(listens.counts)] = listens.counts
    return report, per_kept[np.searchsorted(kept, kept_track_ids)]


def gather(chunks: Callable[[], Iterable[tuple[Events, np.ndarray]]], wanted: np.ndarray) -> Events:
    """The rows without nulls flagged in ``wanted`` (a mask over those rows), in order: another pass."""
    parts, done = [], 0
    for events, nulls in chunks():
        valid = events.take(~nulls)
        parts.append(valid.take(wanted[done:done + len(valid)]))
        done += len(valid)
    return Events.concat(parts)


def clean_events(events: Events, kept_track_ids: np.ndarray, min_user_events: int,
                 has_nulls: np.ndarray | None = None) -> tuple[Events, dict[str, int]]:
    """``clean_event_chunks`` of events in memory; ``has_nulls`` marks rows with a null in any column."""
    has_nulls = has_nulls if has_nulls is not None else np.zeros(len(events), dtype=bool)
    kept: list[Events] = []
    report, _ = clean_event_chunks(lambda: [(events, has_nulls)], len(events), kept_track_ids, min_user_events,
                                   kept.append)
    return kept[0], report


def clean_event_file(source: Path, kept_track_ids: np.ndarray, min_user_events: int, target: Path
                     ) -> tuple[dict[str, int], np.ndarray]:
    """``clean_event_chunks`` from interactions.parquet to the clean events file, a row group at a time."""
    rows = pq.ParquetFile(source).metadata.num_rows
    with parquet_stream(target, EVENTS_SCHEMA) as write:
        return clean_event_chunks(lambda: event_chunks(source), rows, kept_track_ids, min_user_events,
                                  lambda events: write(pa.table(vars(events))))
