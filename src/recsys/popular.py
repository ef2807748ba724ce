"""Top-popular baseline: tracks with the most distinct listeners in train."""
from __future__ import annotations

import numpy as np
import pandas as pd


def distinct_listeners(train: pd.DataFrame) -> pd.Series:
    """Distinct users per track (a repeated (user, track) pair counts once)."""
    pairs = train[["user_id", "track_id"]].drop_duplicates()
    return pairs.groupby("track_id").size()


def top_popular(train: pd.DataFrame, items: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` tracks with most listeners; ties broken by the lower track id, for determinism."""
    listeners = distinct_listeners(train).rename("listeners").reset_index()
    top = listeners.sort_values(["listeners", "track_id"], ascending=[False, True]).head(n)
    top = top.assign(rank=np.arange(1, len(top) + 1, dtype=np.int16))
    names = items.set_index("track_id")["name"]
    top["name"] = names.reindex(top["track_id"]).to_numpy()
    return top.astype({"track_id": np.int32, "listeners": np.int64}).reset_index(drop=True)
