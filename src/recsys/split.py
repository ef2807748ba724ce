"""Time-based train/test split: train is everything before the split date, test from it on."""
from __future__ import annotations

import numpy as np
import pandas as pd


def time_split(
    events: pd.DataFrame, split_date: str, train_sample_frac: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split by ``started_at``; optionally sample train reproducibly; drop test tracks unseen in train.

    Returns train, test and counts: test events dropped for unknown tracks, cold
    test users (no train events) and the sizes of both sides.
    """
    is_test = events["started_at"].to_numpy() >= np.datetime64(pd.Timestamp(split_date))
    train = events[~is_test]
    if train_sample_frac < 1.0:
        keep = np.random.default_rng(seed).random(len(train)) < train_sample_frac
        train = train[keep]
    test = events[is_test]
    train_tracks = np.unique(train["track_id"].to_numpy())
    known = np.isin(test["track_id"].to_numpy(), train_tracks)
    test_users = np.unique(test["user_id"].to_numpy()[known])
    train_users = np.unique(train["user_id"].to_numpy())
    report = {
        "train_events": int(len(train)),
        "train_users": int(len(train_users)),
        "train_tracks": int(len(train_tracks)),
        "test_events_before_filter": int(len(test)),
        "test_events_dropped_unknown_track": int((~known).sum()),
        "test_events": int(known.sum()),
        "test_users": int(len(test_users)),
        "cold_test_users": int((~np.isin(test_users, train_users)).sum()),
    }
    test = test[known]
    for frame in (train, test):  # a fresh index without reset_index's copy of every column
        frame.index = pd.RangeIndex(len(frame))
    return train, test, report
