"""Ranking metrics on encoded arrays: every user's top-k item indices against sparse truth and train matrices.

Per user ``u`` with recommended list ``top_u`` (slots 1..k), test items ``T_u`` (the truth), train items
``S_u`` and ``hit_u(i) = 1`` when the item in slot ``i`` is in ``T_u``; every metric is the plain mean over
users of the per-user value, and a per-user ratio with a zero denominator counts 0 (RecTools' convention):

==================  =================================================================================
precision@k         ``sum_i hit_u(i) / k``: an empty slot is a miss (RecTools' Precision, not ``/ |list|``)
recall@k            ``sum_i hit_u(i) / |T_u|``
ndcg@k              binary gain, ``DCG = sum_i hit_u(i) / log2(i + 1)``, divided by the ideal DCG of
                    ``min(|T_u|, k)`` hits in the first slots (RecTools' NDCG with ``log_base=2``)
map@k               ``sum_i hit_u(i) * precision@i / min(|T_u|, k)`` (RecTools' MAP with
                    ``divide_by_k=False`` over ``min(|T_u|, k)``; a user who can't fill k gets full credit)
coverage@k          share of the train catalogue (items with >= 1 train listener) in anybody's top-k; a
                    catalogue-level number, not a per-user mean
novelty@k           share of the user's filled slots holding an item not in ``S_u`` (not seen in train)
miuf@k              mean over filled slots of ``-log2(listeners(item) / n_train_users)`` (RecTools'
                    MeanInvUserFreq); an item nobody heard in train counts one listener; users with an
                    empty list are left out of the mean
full_list_share@k   share of users whose top-k has all k slots filled
==================  =================================================================================

Everything is vectorised over users and slots. Membership tests go through sorted int64 ``row * n_cols + col``
keys (``arrays.pair_keys``), so the largest extra allocation is one int64 array the size of the bigger
matrix's stored entries.

Item indices: ``-1`` is an empty slot; an index ``>= n_items`` (``truth.shape[1]``) stands for an item outside
the evaluation index (a track unknown to it): it fills the slot but is always a miss, never seen in train,
has one listener for MIUF and is not part of the train catalogue for coverage.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from . import portable
from .arrays import find_sorted, pair_keys

EMPTY = -1

METRIC_NAMES = (
    "precision", "recall", "ndcg", "map", "coverage", "novelty", "miuf", "full_list_share",
)


def stored_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted ``row * n_cols + col`` keys of the stored entries, so membership becomes one searchsorted."""
    if not matrix.has_sorted_indices:
        matrix = matrix.sorted_indices()
    n_rows, n_cols = matrix.shape
    return pair_keys(np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr)), matrix.indices, n_cols)


def contains(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether each (row, col) pair is a stored nonzero of ``matrix``; columns outside it never are."""
    matrix = _without_explicit_zeros(matrix)
    n_cols = matrix.shape[1]
    inside = (cols >= 0) & (cols < n_cols)
    found = np.zeros(len(rows), dtype=bool)
    if matrix.nnz == 0 or not inside.any():
        return found
    found[inside] = find_sorted(stored_keys(matrix), pair_keys(rows[inside], cols[inside], n_cols)) >= 0
    return found


def slot_membership(matrix: sp.csr_matrix, top_items: np.ndarray) -> np.ndarray:
    """(n_users, K) bool: whether the item in each slot is stored in the user's row of ``matrix``.

    Each row is looked up in ascending item order: increasing keys make searchsorted about 3x faster.
    """
    order = np.argsort(top_items, axis=1)
    flat = np.take_along_axis(top_items, order, axis=1).ravel()
    slots = np.flatnonzero((flat >= 0) & (flat < matrix.shape[1]))
    found = np.zeros(flat.shape, dtype=bool)
    found[slots] = contains(matrix, slots // top_items.shape[1], flat[slots])
    member = np.empty(top_items.shape, dtype=bool)
    np.put_along_axis(member, order, found.reshape(top_items.shape), axis=1)
    return member


def inverse_user_frequency(item_listeners: np.ndarray, n_train_users: int) -> np.ndarray:
    """-log2(listeners / n_train_users) per item; an item nobody listened to in train counts one listener.

    >>> inverse_user_frequency(np.array([4, 1, 0]), n_train_users=4)
    array([0., 2., 2.])
    """
    n_train_users = max(int(n_train_users), 1)
    return math.log2(n_train_users) - portable.log2(np.maximum(item_listeners, 1))


def ranking_metrics(
    top_items: np.ndarray,
    truth: sp.csr_matrix,
    train: sp.csr_matrix,
    item_listeners: np.ndarray,
    n_train_users: int,
    n_train_items: int,
    ks: Sequence[int],
) -> dict[str, float]:
    """Accuracy and beyond-accuracy metrics at every k, averaged over all rows of ``top_items``.

    ``top_items`` (n_users, >= max k) holds item indices best first; ``truth`` and ``train`` are (n_users,
    n_items) matrices of each user's test and train items; ``item_listeners`` counts distinct train
    listeners per item over all ``n_train_users`` train users, and ``n_train_items`` items have any.
    The formulas are in the module docstring. Two users, four items, a third train user who is not
    evaluated (``item_listeners`` counts them too):

    >>> top = np.array([[0, 1],     # user 0: truth {0, 3}, heard {2}: a hit in slot 1
    ...                 [3, 2]])    # user 1: truth {2},    heard {3}: a hit in slot 2, slot 1 already heard
    >>> truth = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 1, 0]], dtype=bool))
    >>> train = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 1]], dtype=bool))
    >>> m = ranking_metrics(top, truth, train, item_listeners=np.array([1, 0, 1, 2]), n_train_users=3,
    ...                     n_train_items=3, ks=[1, 2])
    >>> m["precision_at_2"]        # (1/2 + 1/2) / 2
    0.5
    >>> m["recall_at_2"]           # (1/2 + 1/1) / 2
    0.75
    >>> round(m["ndcg_at_2"], 4)   # (1 / (1 + 1/log2(3)) + (1/log2(3)) / 1) / 2
    0.622
    >>> m["map_at_2"]              # (1/1 / min(2, 2) + 1/2 / min(1, 2)) / 2
    0.5
    >>> m["novelty_at_2"]          # (2/2 + 1/2) / 2: user 1 already heard item 3
    0.75
    >>> round(m["coverage_at_1"], 4), m["coverage_at_2"]   # train items {0, 2, 3}: {0, 3}, then all
    (0.6667, 1.0)
    >>> round(m["miuf_at_2"], 3)   # (log2(3) + log2(3)) / 2 for user 0, (log2(3/2) + log2(3)) / 2 for user 1
    1.335
    >>> m["full_list_share_at_2"], m["users"]
    (1.0, 2)
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive, got {ks}")
    top = np.asarray(top_items)
    n_users, n_items = truth.shape
    if top.ndim != 2 or top.shape[0] != n_users or top.shape[1] < ks[-1]:
        raise ValueError(f"top_items shape {top.shape} does not fit {n_users} users and k={ks[-1]}")
    if train.shape[0] != n_users:
        raise ValueError(f"train has {train.shape[0]} rows, truth {n_users}")
    top = top[:, : ks[-1]]
    per_slot = _per_slot_cumsums(top, truth, train, item_listeners, n_train_users)
    n_truth = np.diff(_without_explicit_zeros(truth).indptr)
    is_train_item = np.asarray(item_listeners) > 0
    ideal_dcg = _ideal_dcg(ks[-1])

    result: dict[str, float] = {"users": int(n_users)}
    for k in ks:
        at_k = {name: values[:, k - 1] for name, values in per_slot.items()}
        relevant = np.minimum(n_truth, k)
        user_miuf = _safe_div(at_k["miuf"], at_k["filled"])
        per_user = {
            "precision": at_k["hits"] / k,
            "recall": _safe_div(at_k["hits"], n_truth),
            "ndcg": _safe_div(at_k["dcg"], ideal_dcg[relevant]),
            "map": _safe_div(at_k["precision_at_hits"], relevant),
            "novelty": _safe_div(at_k["unseen"], at_k["filled"]),
            "full_list_share": at_k["filled"] == k,
        }
        result.update({f"{name}_at_{k}": _mean(values) for name, values in per_user.items()})
        result[f"coverage_at_{k}"] = _coverage(top[:, :k], is_train_item, n_train_items)
        result[f"miuf_at_{k}"] = _mean(user_miuf[at_k["filled"] > 0])
    return dict(sorted(result.items(), key=lambda item: _key_order(item[0])))


def _per_slot_cumsums(top, truth, train, item_listeners, n_train_users) -> dict[str, np.ndarray]:
    """Running per-user sums over slots; column k-1 holds each quantity for the top-k."""
    n_items = truth.shape[1]
    filled = top >= 0
    hits = slot_membership(truth, top)
    unseen = filled & ~slot_membership(train, top)
    ranks = np.arange(1, top.shape[1] + 1, dtype=np.float32)
    discount = (1.0 / portable.log2(ranks + 1)).astype(np.float32)
    hit_count = np.cumsum(hits, axis=1, dtype=np.int16)
    inv_freq = inverse_user_frequency(np.asarray(item_listeners), n_train_users).astype(np.float32)
    known = filled & (top < n_items)
    slot_miuf = np.where(known, inv_freq[np.where(known, top, 0)], np.float32(math.log2(max(int(n_train_users), 1))))
    return {
        "hits": hit_count,
        "dcg": np.cumsum(np.where(hits, discount, np.float32(0)), axis=1, dtype=np.float32),
        "precision_at_hits": np.cumsum(np.where(hits, hit_count / ranks, np.float32(0)), axis=1, dtype=np.float32),
        "filled": np.cumsum(filled, axis=1, dtype=np.int16),
        "unseen": np.cumsum(unseen, axis=1, dtype=np.int16),
        "miuf": np.cumsum(np.where(filled, slot_miuf, np.float32(0)), axis=1, dtype=np.float32),
    }


def _ideal_dcg(max_k: int) -> np.ndarray:
    """Ideal DCG indexed by the number of relevant items that fit in the list (index 0 = no relevant item).

    >>> _ideal_dcg(3).round(4)   # 0, 1, 1 + 1/log2(3), 1 + 1/log2(3) + 1/log2(4)
    array([0.    , 1.    , 1.6309, 2.1309])
    """
    discount = 1.0 / portable.log2(np.arange(2, max_k + 2, dtype=np.float64))
    return np.concatenate([[0.0], np.cumsum(discount)])


def _coverage(top_k: np.ndarray, is_train_item: np.ndarray, n_train_items: int) -> float:
    """Share of the train catalogue that appears in anybody's top-k.

    >>> _coverage(np.array([[0, 1], [1, -1]]), is_train_item=np.array([True, True, True, False]), n_train_items=3)
    0.6666666666666666
    """
    if n_train_items <= 0:
        return 0.0
    items = top_k[(top_k >= 0) & (top_k < len(is_train_item))]
    covered = np.zeros(len(is_train_item), dtype=bool)
    covered[items] = True
    return float(np.count_nonzero(covered & is_train_item) / n_train_items)


def _without_explicit_zeros(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Stored zeros are not relevant or seen items; copy only when there are any."""
    if matrix.nnz and not matrix.data.all():
        matrix = matrix.copy()
        matrix.eliminate_zeros()
    return matrix


def _safe_div(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Per-user ratio that is 0 where the denominator is 0 (no truth, empty list)."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=np.asarray(denominator) > 0)
    return out


def _mean(values: np.ndarray) -> float:
    """Mean in float64; 0 for no users rather than NaN, so reports stay valid JSON."""
    return float(np.mean(values, dtype=np.float64)) if len(values) else 0.0


def _key_order(key: str) -> tuple[int, int]:
    """Group keys by metric, then by k, with ``users`` last."""
    if key == "users":
        return (len(METRIC_NAMES), 0)
    name, k = key.rsplit("_at_", 1)
    return (METRIC_NAMES.index(name), int(k))
