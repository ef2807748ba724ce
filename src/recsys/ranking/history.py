"""Listening history before a cut-off, grouped by user, with the track statistics features need.

Everything a feature reads comes from a ``History``, and a ``History`` holds only
events strictly before its cut-off: that is the single place where leakage is
ruled out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import scipy.sparse as sp

from ..arrays import encode, segment_positions, unique_sorted
from ..interactions import InteractionMatrix

DAY = np.timedelta64(1, "D")


@dataclass
class History:
    """Each user's listens strictly before ``cutoff``, in listening order, as flat arrays grouped by user row."""

    cutoff: np.datetime64
    user_ids: np.ndarray  # sorted unique users with at least one event
    indptr: np.ndarray  # events of user row i are [indptr[i], indptr[i + 1])
    track_id: np.ndarray  # int32, per event, each user's events in time order
    age_days: np.ndarray  # float32, days from the listen to the cut-off (>= 1 at day resolution)

    @classmethod
    def before(cls, events: pd.DataFrame, cutoff: str | np.datetime64) -> "History":
        """Events strictly before ``cutoff``; anything at or after it is dropped here, once.

        Events already in listening order (by user, then ``track_seq``, as the real and generated files
        are) skip the sort and its copies, which at full size are most of this function's memory.
        """
        cutoff = pd.Timestamp(cutoff).as_unit("ns").to_datetime64()
        started_at = events["started_at"].to_numpy()
        keep = started_at < cutoff
        user = events["user_id"].to_numpy()[keep]
        order = user_sequence_order(user, events["track_seq"].to_numpy()[keep])
        track = events["track_id"].to_numpy()[keep]
        age = days_before(cutoff, started_at, keep)
        if order is not None:
            user, track, age = user[order], track[order], age[order]
        user_ids = unique_sorted(user)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(encode(user, user_ids), minlength=len(user_ids)))])
        return cls(cutoff, user_ids, indptr, track, age)

    def __len__(self) -> int:
        return len(self.track_id)

    def interaction_matrix(self) -> InteractionMatrix:
        """The binary user x track matrix of this history (rows follow ``user_ids``), built
        from the grouped events without another copy of the event table."""
        item_ids = unique_sorted(self.track_id).astype(np.int32)
        matrix = sp.csr_matrix((np.ones(len(self), dtype=np.float32), encode(self.track_id, item_ids), self.indptr),
                               shape=(len(self.user_ids), len(item_ids)))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0  # a repeated listen is still one positive
        return InteractionMatrix(matrix, self.user_ids.astype(np.int32), item_ids)

    def rows_of(self, user_ids: np.ndarray) -> np.ndarray:
        """History row of each user (-1 for users without history)."""
        return encode(user_ids, self.user_ids)

    def events_of(self, rows: np.ndarray, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(batch position, event index) of the given user rows' events (only the ``last`` n if given)."""
        known = rows >= 0  # a user without history has no events
        ends = np.where(known, self.indptr[rows + 1], 0)
        starts = np.where(known, self.indptr[np.maximum(rows, 0)], 0)
        if last is not None:
            starts = np.maximum(starts, ends - last)
        return segment_positions(starts, ends)


def user_sequence_order(user: np.ndarray, track_seq: np.ndarray) -> np.ndarray | None:
    """The stable order by (user, track_seq), or None when the events are in it already (not
    ``sequences.listening_order``, which orders by user, day, then track_seq)."""
    same_user = user[1:] == user[:-1]
    in_order = bool(np.all((user[1:] > user[:-1]) | (same_user & (track_seq[1:] >= track_seq[:-1]))))
    del same_user
    if in_order:
        return None
    return np.argsort(user.astype(np.int64) * 2**16 + track_seq, kind="stable")


def days_before(cutoff: np.datetime64, started_at: np.ndarray, keep: np.ndarray,
                chunk: int = 1 << 23) -> np.ndarray:
    """float32 days from each kept listen to ``cutoff``, a chunk at a time: the float64 and timedelta
    temporaries of one whole-column expression would cost 24 bytes a listen."""
    age = np.empty(int(np.count_nonzero(keep)), dtype=np.float32)
    done = 0
    for begin in range(0, len(started_at), chunk):
        part = started_at[begin:begin + chunk][keep[begin:begin + chunk]]
        age[done:done + len(part)] = ((cutoff - part) / DAY).astype(np.float32)
        done += len(part)
    return age


@dataclass
class TrackStats:
    """Per-track popularity over the history, aligned with a sorted ``track_ids`` vocabulary."""

    track_ids: np.ndarray
    listeners: np.ndarray  # listens over the whole history (= listeners where (user, track) pairs do not repeat)
    recent_listeners: np.ndarray  # over the last ``recent_days`` before the cut-off
    age_days: np.ndarray  # days since the track's first listen in the history (a release-date proxy)

    @classmethod
    def of(cls, history: History, track_ids: np.ndarray, recent_days: float) -> "TrackStats":
        code = encode(history.track_id, track_ids)
        known = code >= 0
        n = len(track_ids)
        recent = known & (history.age_days <= recent_days)
        first_age = np.zeros(n, dtype=np.float32)
        np.maximum.at(first_age, code[known], history.age_days[known])
        return cls(
            track_ids=track_ids,
            listeners=np.bincount(code[known], minlength=n).astype(np.float32),
            recent_listeners=np.bincount(code[recent], minlength=n).astype(np.float32),
            age_days=first_age,
        )
