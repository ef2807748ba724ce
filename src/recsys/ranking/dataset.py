"""Leakage-free training data for the ranker: label window, labels and negative sampling.

With T the split date and W the label window, the ranker learns from candidates
and features computed on train events before T - W, labelled by the train
events in [T - W, T). Nothing at or after T is ever read.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..arrays import encode, pair_keys, positions_in_groups
from ..columns import STARTED_AT, TRACK, USER
from ..config import invalid
from .history import DAY, History


def label_window(split_date: str, label_days: int) -> tuple[np.datetime64, np.datetime64]:
    """[start, end) of the label window: the ``label_days`` days right before the split date."""
    end = pd.Timestamp(split_date).as_unit("ns").to_datetime64()
    return end - np.timedelta64(label_days, "D"), end


def window_events(events: pd.DataFrame, start: np.datetime64, end: np.datetime64) -> pd.DataFrame:
    started_at = events["started_at"].to_numpy()
    return events[(started_at >= start) & (started_at < end)]


def feature_history(train: pd.DataFrame, split_date: str, label_days: int) -> tuple[History, pd.DataFrame]:
    """The history before T - W and the label events in [T - W, T); fails naming ``rank.label_days`` when the
    window leaves no feature period or holds no listen."""
    start, end = label_window(split_date, label_days)
    started_at = train[STARTED_AT].to_numpy()
    first = started_at.min() if len(started_at) else end
    if start <= first:
        raise invalid("rank.label_days", label_days, f"fewer days than the train period before split.date "
                      f"{split_date} ({int((end - first) / DAY)} days from the first listen)")
    labels = window_events(train, start, end)[[USER, TRACK]]
    if labels.empty:
        raise invalid("rank.label_days", label_days, f"a window before split.date {split_date} that holds listens")
    return History.before(train, start), labels


def label_candidates(candidates: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray,
                     label_events: pd.DataFrame) -> np.ndarray:
    """1 where the user listened to the candidate track in the label window, else 0."""
    n_items = len(item_ids)
    user = encode(label_events["user_id"].to_numpy(), user_ids)
    item = encode(label_events["track_id"].to_numpy(), item_ids)
    ok = (user >= 0) & (item >= 0)
    positives = np.unique(pair_keys(user[ok], item[ok], n_items))
    keys = pair_keys(candidates["user_pos"].to_numpy(), candidates["item"].to_numpy(), n_items)
    return np.isin(keys, positives).astype(np.int8)


def sample_negatives(user_pos: np.ndarray, label: np.ndarray, negatives_per_user: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Mask keeping every positive and up to ``negatives_per_user`` random negatives of each user
    that has at least one positive (a user without one teaches a ranker nothing)."""
    has_positive = np.bincount(user_pos, weights=label, minlength=user_pos.max() + 1 if len(user_pos) else 0) > 0
    order = np.lexsort((rng.random(len(user_pos)), label, user_pos))  # per user: negatives first, shuffled
    sorted_user, sorted_label = user_pos[order], label[order]
    negative_rank = positions_in_groups(sorted_user)
    keep_sorted = (sorted_label == 1) | (negative_rank < negatives_per_user)
    keep = np.zeros(len(order), dtype=bool)
    keep[order[keep_sorted]] = True
    return keep & has_positive[user_pos]


def training_users(history_users: np.ndarray, label_events: pd.DataFrame, max_users: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Users with both a history and a label-window listen, sampled down to ``max_users``."""
    users = np.intersect1d(history_users, label_events["user_id"].unique())
    if len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    return users
