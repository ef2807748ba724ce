"""Exploratory summaries of the clean data: distributions, daily volume, top entities."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = (0.25, 0.5, 0.75, 0.9, 0.99)


def distribution_summary(counts: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and quantiles of a count distribution; keys fit `dvc metrics diff`."""
    summary = {"mean": float(counts.mean()), "std": float(counts.std()), "min": int(counts.min()), "max": int(counts.max())}
    for q, value in zip(QUANTILES, np.quantile(counts, QUANTILES)):
        summary[f"p{round(q * 100)}"] = float(value)
    return summary


def events_per_user(user_ids: np.ndarray) -> np.ndarray:
    """Event count of every user present (ids are non-negative: one bincount, no sort)."""
    counts = np.bincount(user_ids)
    return counts[counts > 0]


def log_histogram(counts: np.ndarray, bins: int) -> pd.DataFrame:
    """Histogram over log-spaced bins: counts span five orders of magnitude."""
    edges = np.unique(np.round(np.logspace(0, np.log10(max(counts.max(), 2)) + 1e-9, bins + 1)))
    hist, edges = np.histogram(counts, bins=edges)
    return pd.DataFrame({"listens_from": edges[:-1].astype(np.int64), "count": hist})


def events_per_day(started_at: np.ndarray) -> pd.DataFrame:
    return day_table(*np.unique(started_at.astype("datetime64[D]"), return_counts=True))


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


def eda_summary(items: pd.DataFrame, user_counts: np.ndarray, started_at: np.ndarray) -> dict:
    return summary_of(items, user_counts, len(started_at), started_at.min(), started_at.max())


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
