"""Time-based train/test split: train is everything before the split date, test from it on."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import STARTED_AT, TRACK, USER
from .config import ConfigError, invalid


def empty_side(split_date: str, all_test: bool, first, last) -> ConfigError:
    """The error of a split date that leaves train (``all_test``) or test empty; ``first``/``last`` listens."""
    first, last = (pd.Timestamp(day).date().isoformat() for day in (first, last))
    return invalid("split.date", split_date, f"a day after the first listen ({first}) and on or before the "
                   f"last ({last}): {'train' if all_test else 'test'} would hold no events")


def check_report(report: dict[str, int], split_date: str, train_sample_frac: float) -> None:
    """A split whose train (after sampling) or test (after dropping unknown tracks) is empty is a param error."""
    if report["train_events"] == 0:
        raise invalid("split.train_sample_frac", train_sample_frac, "a share that keeps some train events")
    if report["test_events"] == 0:
        raise invalid("split.date", split_date, "a day that leaves test events on tracks known in train")


def time_split(
    events: pd.DataFrame, split_date: str, train_sample_frac: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split by ``started_at``; optionally sample train reproducibly; drop test tracks unseen in train.

    Returns train, test and counts: test events dropped for unknown tracks, cold
    test users (no train events) and the sizes of both sides. A split that leaves either side empty is a
    parameter error (``ConfigError`` naming ``split.date`` or ``split.train_sample_frac``), raised before
    anything is written.
    """
    started_at = events[STARTED_AT].to_numpy()
    is_test = started_at >= np.datetime64(pd.Timestamp(split_date))
    if len(events) and (is_test.all() or not is_test.any()):
        raise empty_side(split_date, bool(is_test.all()), started_at.min(), started_at.max())
    train = events[~is_test]
    if train_sample_frac < 1.0:
        keep = np.random.default_rng(seed).random(len(train)) < train_sample_frac
        train = train[keep]
    test = events[is_test]
    train_tracks = np.unique(train[TRACK].to_numpy())
    known = np.isin(test[TRACK].to_numpy(), train_tracks)
    test_users = np.unique(test[USER].to_numpy()[known])
    train_users = np.unique(train[USER].to_numpy())
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
    check_report(report, split_date, train_sample_frac)
    for frame in (train, test):  # a fresh index without reset_index's copy of every column
        frame.index = pd.RangeIndex(len(frame))
    return train, test, report
