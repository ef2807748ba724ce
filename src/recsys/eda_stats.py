"""Exploratory summaries of the clean data: distributions, daily volume, top entities."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import sequences
from .columns import EVENT_COLUMNS, STARTED_AT, TRACK, TRACK_SEQ, USER
from .streaming import Tally, row_groups

QUANTILES = (0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass
class EventAggregates:
    """What the EDA needs of the events, on either engine (src/spark_engine/spark_eda.py counts them on Spark)."""

    user_counts: np.ndarray  # listens of every user present, by ascending user id
    days: np.ndarray  # datetime64[D], ascending
    day_counts: np.ndarray
    events: int
    first: np.datetime64  # the first and last listen
    last: np.datetime64
    sequences: dict  # the `sequences` block (sequences.sequence_stats)


def distribution_summary(counts: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and quantiles of a count distribution; keys fit `dvc metrics diff`."""
    summary = {"mean": float(counts.mean()), "std": float(counts.std()), "min": int(counts.min()), "max": int(counts.max())}
    for q, value in zip(QUANTILES, np.quantile(counts, QUANTILES)):
        summary[f"p{round(q * 100)}"] = float(value)
    return summary


def log_histogram(counts: np.ndarray, bins: int) -> pd.DataFrame:
    """Histogram over log-spaced bins: counts span five orders of magnitude."""
    edges = np.unique(np.round(np.logspace(0, np.log10(max(counts.max(), 2)) + 1e-9, bins + 1)))
    hist, edges = np.histogram(counts, bins=edges)
    return pd.DataFrame({"listens_from": edges[:-1].astype(np.int64), "count": hist})


def day_table(days: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """Events per day (``days`` as datetime64[D], ascending) as the plot's table."""
    return pd.DataFrame({"date": pd.to_datetime(days).strftime("%Y-%m-%d"), "events": counts})


def top_tracks(items: pd.DataFrame, n: int) -> pd.DataFrame:
    top = items.nlargest(n, "listens", keep="first")
    return top[["track_id", "name", "listens"]].reset_index(drop=True)


def top_entities(items: pd.DataFrame, catalog: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """Entities (genres or artists) by listens of their tracks, with their track count and name."""
    lists = pa.array(items[column])
    ids = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    listens = items["listens"].to_numpy()[pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)]
    stats = pd.DataFrame({"id": ids, "listens": listens}).groupby("id")["listens"].agg(["sum", "size"])
    stats.columns = ["listens", "tracks"]
    stats = stats.nlargest(n, "listens").reset_index()
    names = catalog.set_index("id")["name"]
    stats.insert(1, "name", names.reindex(stats["id"]).to_numpy())
    return stats


def summary_of(items: pd.DataFrame, user_counts: np.ndarray, events: int, first: np.datetime64,
               last: np.datetime64) -> dict:
    """The summary of metrics/eda.json from the counts (``first``/``last``: the first and last listen)."""
    listened = items["listens"].to_numpy()
    return {
        "events": int(events),
        "users": int(len(user_counts)),
        "tracks": int(len(items)),
        "share_tracks_never_listened": float((listened == 0).mean()),
        "listens_per_track": distribution_summary(listened[listened > 0]),
        "listens_per_user": distribution_summary(user_counts),
        "first_day": str(first.astype("datetime64[D]")),
        "last_day": str(last.astype("datetime64[D]")),
    }


class PairCounter:
    """``sequences.count_pairs`` over consecutive chunks of an events file, the last row of each chunk carried to
    the next so no pair is lost at a boundary; it gives up (``ordered`` False) at the first row out of listening
    order, as the whole file then needs sorting first."""

    def __init__(self, items: pd.DataFrame) -> None:
        self.track_ids = items[TRACK].to_numpy()
        self.features = sequences.track_features(self.track_ids, items["albums"], items["artists"])
        self.tables = self._tables(int(self.track_ids.max(initial=-1)) + 1)
        self.counts = dict.fromkeys(("pairs", "same_artist", "same_album", "album_order"), 0)
        self.ordered = True
        self.carried: tuple[np.ndarray, ...] = ()

    def _tables(self, size: int) -> tuple[np.ndarray, ...]:
        return tuple(sequences.by_track(self.track_ids, per_track, size) for per_track in self.features)

    def add(self, user_id: np.ndarray, day: np.ndarray, track_seq: np.ndarray, track_id: np.ndarray) -> None:
        """Count the pairs of the next chunk (``day``: ``sequences.day_numbers``) and of the one before's last row."""
        if not self.ordered or len(user_id) == 0:
            return
        columns = (user_id, day, track_seq, track_id)
        if self.carried:
            columns = tuple(np.concatenate([last, column]) for last, column in zip(self.carried, columns))
        user_id, day, track_seq, track_id = columns
        if not sequences.is_listening_order(user_id, day, track_seq):
            self.ordered = False
            return
        if track_id.max() >= len(self.tables[0]):
            self.tables = self._tables(int(track_id.max()) + 1)
        found = sequences.count_pairs(user_id, day, track_id, *self.tables)
        self.counts = {name: count + found[name] for name, count in self.counts.items()}
        self.carried = tuple(column[-1:] for column in columns)


def scan_events(events_path: Path | str, items: pd.DataFrame) -> EventAggregates:
    """The event aggregates in one pass over the events file, a row group at a time (a few hundred MB at the
    real data's size, not 7.5 GB); only a file out of listening order is read again, whole, to be sorted."""
    users, days, counter = Tally(), {}, PairCounter(items)
    events, bounds = 0, []
    for batch in row_groups(events_path, EVENT_COLUMNS):
        user_id, started_at = batch[USER].to_numpy(), batch[STARTED_AT].to_numpy()
        if len(user_id) == 0:
            continue
        events += len(user_id)
        bounds.append((started_at.min(), started_at.max()))
        users.add(user_id)
        day = sequences.day_numbers(started_at)
        low = int(day.min())
        for offset, count in enumerate(np.bincount(day - low).tolist()):
            if count:
                days[low + offset] = days.get(low + offset, 0) + count
        counter.add(user_id, day, batch[TRACK_SEQ].to_numpy(), batch[TRACK].to_numpy())
    day_numbers = np.array(sorted(days), dtype=np.int64)
    return EventAggregates(
        user_counts=users.counts[users.counts > 0], days=day_numbers.astype("datetime64[D]"),
        day_counts=np.array([days[day] for day in day_numbers.tolist()], dtype=np.int64), events=events,
        first=min(low for low, _ in bounds) if bounds else None, last=max(high for _, high in bounds) if bounds else None,
        sequences=(sequences.sequence_summary(events, counter.counts) if counter.ordered
                   else sorted_sequence_stats(events_path, items)))


def sorted_sequence_stats(events_path: Path | str, items: pd.DataFrame) -> dict:
    """``sequences.sequence_stats`` of an events file out of listening order: the columns it sorts are read
    whole, one at a time, to keep the peak low."""
    user_id, track_id, track_seq, started_at = (pq.read_table(events_path, columns=[name])[name].to_numpy()
                                                for name in (USER, TRACK, TRACK_SEQ, STARTED_AT))
    days = sequences.day_numbers(started_at)
    del started_at
    return sequences.sequence_stats(user_id, days, track_seq, track_id, items[TRACK].to_numpy(), items["albums"],
                                    items["artists"])
