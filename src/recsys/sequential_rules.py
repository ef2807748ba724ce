""""Played next": for every track, the tracks users played after it within the same day (sequential rules).

The sequential-rules recommender of Ludewig, Mauro, Latifi and Jannach (2019, "Empirical analysis of
session-based recommendation algorithms"): a session is one user's listens of one day in listening order
(day, ``track_seq``); every pair (a at position i, b at position j) of a session with ``0 < j - i <= window``
is a rule a -> b, weighted by its distance d = j - i. Positions count listens, not ``track_seq`` values, so a
listen dropped by cleaning or train sampling does not open a gap. A pair never crosses a day or a user.

Scoring, with decay = ``distance_decay``, p = ``popularity_exponent``::

    raw(a, b)    = sum over occurrences of b d steps after a (1 <= d <= window) of decay ** (d - 1)
    out(a)       = sum over all b of raw(a, b)               (a's decayed continuations, before any filter)
    listeners(b) = number of distinct train users of b
    score(a, b)  = raw(a, b) / out(a) / listeners(b) ** p,   kept where raw(a, b) >= min_support, a != b

Why this form: raw / out(a) is the share of a's (decayed) continuations that went to b, a number in (0, 1]
whatever a's popularity, so the scores of a rarely and a often played track mean the same thing (dividing
by out(a) keeps each row's order; it is what makes rows comparable, e.g. for blending). A chart hit follows
everything, so b is damped by its listener count: p = 0 leaves the pure transition share, p = 1 divides by
the full popularity (lift-like, rewards rare tracks seen once), 0.5 sits between. ``min_support`` filters on
the decayed raw weight, not on distinct users: it needs no second accumulator over the 184M listens, and
with decay 0.5 the default 1 means "at least one listen right after a, or the equivalent at larger
distances" (one co-occurrence at distance 2 alone, 0.5, is dropped as noise).

Memory: listens are processed in batches of whole users (``batch_listens`` rows, a user never split so
distinct listeners add up across batches); each batch's pairs are summed into a sparse track x track
matrix and the batch matrices are merged like a binary counter (each sum costs about its result, log-many
merges per pair instead of one per batch).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .arrays import encode, unique_sorted
from .columns import NEXT_TRACK, STARTED_AT, TRACK, TRACK_SEQ, USER
from .interactions import ranked_table

SEQUENCE_COLUMNS = [USER, TRACK, TRACK_SEQ, STARTED_AT]


def listening_order(users: np.ndarray, days: np.ndarray, seqs: np.ndarray) -> np.ndarray | None:
    """Permutation sorting listens by (user, day, track_seq); None when already sorted (the split keeps the
    events' order, which is sorted on the data this runs on, so the sort and its copies are usually skipped)."""
    same_user = users[1:] == users[:-1]
    later_day = days[1:] > days[:-1]
    ordered = (users[1:] > users[:-1]) | (same_user & (later_day | ((days[1:] == days[:-1]) & (seqs[1:] >= seqs[:-1]))))
    if ordered.all():
        return None
    return np.lexsort((seqs, days, users))


def session_starts(users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """True where a listen opens a new user-day (sorted input): pairs must not cross these."""
    starts = np.ones(len(users), dtype=bool)
    starts[1:] = (users[1:] != users[:-1]) | (days[1:] != days[:-1])
    return starts


def user_batches(users: np.ndarray, batch_listens: int) -> np.ndarray:
    """Row cuts (first 0, last len) of batches of about ``batch_listens`` listens, each cut at a user boundary
    (a user larger than a batch gets a batch of its own)."""
    boundaries = np.r_[np.flatnonzero(users[1:] != users[:-1]) + 1, len(users)]  # user starts after the first, end
    targets = np.arange(batch_listens, len(users), batch_listens)
    return np.unique(np.r_[0, boundaries[np.searchsorted(boundaries, targets)], len(users)])


def successor_pairs(codes: np.ndarray, starts: np.ndarray, window: int, decay: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, weight) for every pair of one session within ``window`` steps: one shifted comparison per
    distance instead of a loop over sessions."""
    session = np.cumsum(starts, dtype=np.int64)
    firsts, nexts, weights = [], [], []
    for distance in range(1, min(window, len(codes) - 1) + 1):
        keep = (session[distance:] == session[:-distance]) & (codes[distance:] != codes[:-distance])
        firsts.append(codes[:-distance][keep])
        nexts.append(codes[distance:][keep])
        weights.append(np.full(int(keep.sum()), decay ** (distance - 1), dtype=np.float32))
    if not firsts:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    return np.concatenate(firsts), np.concatenate(nexts), np.concatenate(weights)


def pair_matrix(codes: np.ndarray, starts: np.ndarray, window: int, decay: float, n_tracks: int) -> sp.csr_matrix:
    """raw(a, b) of one batch as a track x track CSR (COO -> CSR sums the repeats of a pair)."""
    firsts, nexts, weights = successor_pairs(codes, starts, window, decay)
    return sp.coo_matrix((weights, (firsts, nexts)), shape=(n_tracks, n_tracks)).tocsr()


def batch_listeners(users: np.ndarray, codes: np.ndarray, n_tracks: int) -> np.ndarray:
    """Distinct listeners per track code within a batch of whole users (adds up across such batches)."""
    first_user = users[0] if len(users) else 0
    keys = np.unique((users - first_user).astype(np.int64) * n_tracks + codes)
    return np.bincount(keys % n_tracks, minlength=n_tracks)


def push_merged(stack: list[sp.csr_matrix], matrix: sp.csr_matrix) -> None:
    """Push a batch matrix, summing the top of the stack while it is not much larger than what is below:
    a binary counter, so a pair is copied O(log batches) times rather than once per later batch."""
    stack.append(matrix)
    while len(stack) > 1 and stack[-2].nnz <= 2 * stack[-1].nnz:
        top = stack.pop()
        stack[-1] = stack[-1] + top


def transition_counts(users: np.ndarray, days: np.ndarray, codes: np.ndarray, n_tracks: int, window: int,
                      decay: float, batch_listens: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """raw(a, b) over all sessions and listeners(b), from listens sorted by (user, day, track_seq)."""
    starts = session_starts(users, days)
    cuts = user_batches(users, batch_listens)
    stack: list[sp.csr_matrix] = [sp.csr_matrix((n_tracks, n_tracks), dtype=np.float32)]
    listeners = np.zeros(n_tracks, dtype=np.int64)
    for begin, end in zip(cuts[:-1], cuts[1:]):
        push_merged(stack, pair_matrix(codes[begin:end], starts[begin:end], window, decay, n_tracks))
        listeners += batch_listeners(users[begin:end], codes[begin:end], n_tracks)
    raw = stack.pop()
    while stack:
        raw = raw + stack.pop()
    raw.sum_duplicates()
    return raw, listeners


def transition_scores(raw: sp.csr_matrix, listeners: np.ndarray, popularity_exponent: float,
                      min_support: float) -> sp.csr_matrix:
    """score(a, b) = raw / out(a) / listeners(b) ** p on the pairs with raw >= min_support (module docstring);
    the weak pairs are dropped first, so the float32 scores and their row numbers exist only for kept pairs."""
    out = np.asarray(raw.sum(axis=1), dtype=np.float64).ravel()
    counts = np.diff(raw.indptr)
    keep = raw.data >= min_support
    rows = np.repeat(np.arange(raw.shape[0], dtype=np.int32), counts)[keep]
    cols = raw.indices[keep]
    damping = np.power(np.maximum(listeners, 1).astype(np.float64), popularity_exponent)
    scores = (raw.data[keep] / (out[rows] * damping[cols])).astype(np.float32)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=raw.shape[0]))]
    return sp.csr_matrix((scores, cols, indptr), shape=raw.shape)


def top_per_row(scores: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, score, rank) of each row's best ``n`` entries, best first, ties by lower col.

    One stable integer sort: key = row in the high 32 bits, the inverted float bits of the (non-negative)
    score in the low 32; a canonical CSR has cols ascending within a row, which the stable sort keeps for ties.
    Sorting keeps each row's block where it was, so a position's rank is its offset in the block.
    """
    scores.sum_duplicates()  # canonical: sorted cols, no repeats
    counts = np.diff(scores.indptr)
    key = np.repeat(np.arange(scores.shape[0], dtype=np.uint64), counts)
    key <<= np.uint64(32)
    key |= (np.uint32(0xFFFFFFFF) - scores.data.astype(np.float32).view(np.uint32)).astype(np.uint64)
    order = np.argsort(key, kind="stable")
    del key
    ranks = np.arange(len(order), dtype=np.int64) - np.repeat(scores.indptr[:-1].astype(np.int64), counts)
    top = ranks < n
    best = order[top]
    rows = np.repeat(np.arange(scores.shape[0], dtype=np.int64), counts)[top]
    return rows, scores.indices[best], scores.data[best], ranks[top] + 1


def played_next(train: pd.DataFrame, window: int, distance_decay: float, popularity_exponent: float,
                min_support: float, n: int, batch_listens: int = 20_000_000) -> pd.DataFrame:
    """The played-next table (``track_id``, ``next_track_id``, ``score``, ``rank``) of a train frame."""
    users = train[USER].to_numpy()
    days = train[STARTED_AT].to_numpy().astype("datetime64[D]").view(np.int64)
    order = listening_order(users, days, train[TRACK_SEQ].to_numpy())
    tracks = train[TRACK].to_numpy()
    if order is not None:
        users, days, tracks = users[order], days[order], tracks[order]
    track_ids = unique_sorted(tracks)
    raw, listeners = transition_counts(users, days, encode(tracks, track_ids), len(track_ids), window,
                                       distance_decay, batch_listens)
    rows, cols, scores, ranks = top_per_row(transition_scores(raw, listeners, popularity_exponent, min_support), n)
    return ranked_table(track_ids[rows], track_ids[cols], scores, ranks, TRACK, NEXT_TRACK)
