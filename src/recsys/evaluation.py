"""Turn train/test events and recommendation frames into the encoded arrays that ``metrics`` scores.

The ``EvaluationSet`` is built once per split and reused for every recommender, so the expensive part
(deduplicating train listens into a CSR) is paid once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from src.recsys.arrays import encode, id_table, lookup, pair_keys, table_pays, unique_sorted
from src.recsys.metrics import EMPTY, ranking_metrics

# The recommenders `evaluate` scores, under the names of its results, plots (dvc.yaml's `plots` columns,
# checked by tests/test_config.py) and headline rows; the oracle only where the generator's truth exists.
TOP_POPULAR, PERSONAL_ALS, FINAL, ORACLE = "top_popular", "personal_als", "final", "oracle"
RECOMMENDERS = (TOP_POPULAR, PERSONAL_ALS, FINAL, ORACLE)
COLD_USERS = "cold_users_top_popular"  # the popular list scored on test users without train history
ENCODE_CHUNK = 1 << 24  # ids encoded at once (``chunked_encode``)

@dataclass
class EvaluationSet:
    """Encoded split: rows are users, columns are item indices into ``item_ids``."""

    users: np.ndarray  # evaluated user ids (int32, sorted): >= 1 test event and >= 1 train event
    cold_users: np.ndarray  # test users with no train events (sorted)
    item_ids: np.ndarray  # track id of each item index (sorted): every track in train or test
    truth: sp.csr_matrix  # (users, items) bool: tracks each evaluated user listened to in test
    train: sp.csr_matrix  # (users, items) bool: tracks each evaluated user listened to in train
    item_listeners: np.ndarray  # (items,) int32: distinct train listeners per item, over all train users
    n_train_users: int  # distinct users in train (not only evaluated ones)
    n_train_items: int  # distinct tracks in train
    cold_truth: sp.csr_matrix  # (cold_users, items) bool: test tracks of cold users

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def build_evaluation_set(train: pd.DataFrame, test: pd.DataFrame) -> EvaluationSet:
    """Encode both splits once; train rows of evaluated users come first so their CSR is a zero-copy prefix."""
    train_user_ids = unique_sorted(train["user_id"].to_numpy())
    test_user_ids = unique_sorted(test["user_id"].to_numpy())
    users = np.intersect1d(train_user_ids, test_user_ids, assume_unique=True)
    cold_users = np.setdiff1d(test_user_ids, train_user_ids, assume_unique=True)
    item_ids = np.union1d(unique_sorted(train["track_id"].to_numpy()), unique_sorted(test["track_id"].to_numpy()))
    n_items = len(item_ids)

    full_train = _train_matrix(train, train_user_ids, users, item_ids)
    item_listeners = np.bincount(full_train.indices, minlength=n_items).astype(np.int32)
    n_eval = len(users)
    eval_nnz = int(full_train.indptr[n_eval])
    train_matrix = sp.csr_matrix(
        (full_train.data[:eval_nnz], full_train.indices[:eval_nnz], full_train.indptr[: n_eval + 1]),
        shape=(n_eval, n_items),
        copy=False,
    )
    return EvaluationSet(
        users=users.astype(np.int32),
        cold_users=cold_users.astype(np.int32),
        item_ids=item_ids.astype(np.int32),
        truth=_events_matrix(test, users, item_ids),
        train=train_matrix,
        item_listeners=item_listeners,
        n_train_users=len(train_user_ids),
        n_train_items=int(np.count_nonzero(item_listeners)),
        cold_truth=_events_matrix(test, cold_users, item_ids),
    )


def evaluate_recommendations(recs: pd.DataFrame, data: EvaluationSet, ks: Sequence[int]) -> dict[str, float]:
    """Score a recommender's ranked lists for the evaluated users."""
    top = recommendation_matrix(recs, data, max(ks))
    return _score(top, data, ks)


def recommendation_matrix(recs: pd.DataFrame, data: EvaluationSet, k: int) -> np.ndarray:
    """(n_users, k) item indices from ``rank`` (1 = best); missing users and ranks stay empty slots.

    Recs of users outside ``data.users`` and ranks outside [1, k] are ignored; a track repeated in one
    user's list keeps only its best rank, so it cannot score its hit twice.
    """
    rows = encode(recs["user_id"].to_numpy(), data.users)
    rank = recs["rank"].to_numpy()
    keep = (rows >= 0) & (rank >= 1) & (rank <= k)
    top = np.full((len(data.users), k), EMPTY, dtype=np.int32)
    top[rows[keep], rank[keep].astype(np.intp) - 1] = item_codes(recs["track_id"].to_numpy()[keep], data)
    return drop_repeats(top)


def item_codes(track_ids: np.ndarray, data: EvaluationSet) -> np.ndarray:
    """Item index per track; tracks unknown to the index get distinct codes from ``n_items`` on (always misses)."""
    codes = encode(track_ids, data.item_ids)
    unknown = codes < 0
    if unknown.any():
        _, inverse = np.unique(track_ids[unknown], return_inverse=True)
        codes[unknown] = data.n_items + inverse.astype(np.int32)
    return codes


def drop_repeats(top: np.ndarray) -> np.ndarray:
    """Empty every repeat of an item within a row except its leftmost (best-ranked) slot, in place."""
    order = np.argsort(top, axis=1, kind="stable")
    ordered = np.take_along_axis(top, order, axis=1)
    rows, cols = np.nonzero((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0))
    top[rows, order[rows, cols + 1]] = EMPTY
    return top


def popular_top_items(popular_track_ids: np.ndarray, data: EvaluationSet, k: int, filter_seen: bool) -> np.ndarray:
    """(n_users, k) item indices: the popular list for everyone, minus each user's train-seen items if asked."""
    pool = popular_codes(popular_track_ids, data)
    n_users = len(data.users)
    if not filter_seen or len(pool) == 0:
        return _same_list(pool, n_users, k)
    length = min(len(pool), 4 * k)
    while True:
        positions = _unseen_positions(pool[:length], data.train, k)
        if length == len(pool) or positions[:, -1].max(initial=0) < length:
            break
        length = min(len(pool), 4 * length)
    top = np.full((n_users, k), EMPTY, dtype=np.int32)
    inside = positions < length
    top[inside] = pool[positions[inside]]
    return top


def evaluate_popular(
    popular_track_ids: np.ndarray, data: EvaluationSet, ks: Sequence[int], filter_seen: bool
) -> dict[str, float]:
    """Score the most-popular baseline on the evaluated users."""
    return _score(popular_top_items(popular_track_ids, data, max(ks), filter_seen), data, ks)


def evaluate_cold_users(popular_track_ids: np.ndarray, data: EvaluationSet, ks: Sequence[int]) -> dict[str, float]:
    """Score the popular list on cold users: with no train history there is nothing to filter or personalise."""
    pool = popular_codes(popular_track_ids, data)
    n_cold = len(data.cold_users)
    no_history = sp.csr_matrix((n_cold, data.n_items), dtype=bool)
    return ranking_metrics(
        _same_list(pool, n_cold, max(ks)), data.cold_truth, no_history,
        data.item_listeners, data.n_train_users, data.n_train_items, ks,
    )


def popular_codes(popular_track_ids: np.ndarray, data: EvaluationSet) -> np.ndarray:
    """Item codes of a best-first popular list, keeping each track's first occurrence."""
    codes = item_codes(np.asarray(popular_track_ids), data)
    _, first = np.unique(codes, return_index=True)
    return codes[np.sort(first)]


def _train_matrix(train: pd.DataFrame, train_user_ids, users, item_ids) -> sp.csr_matrix:
    """Deduplicated (user, track) listens of all train users, evaluated users in the first rows."""
    is_evaluated = np.isin(train_user_ids, users, assume_unique=True)
    row_of_user = np.empty(len(train_user_ids), dtype=np.int32)
    row_of_user[is_evaluated] = np.arange(len(users), dtype=np.int32)
    row_of_user[~is_evaluated] = np.arange(len(users), len(train_user_ids), dtype=np.int32)
    rows = row_of_user[chunked_encode(train["user_id"].to_numpy(), train_user_ids)]
    cols = chunked_encode(train["track_id"].to_numpy(), item_ids)
    return _binary_csr(rows, cols, (len(train_user_ids), len(item_ids)))


def chunked_encode(values: np.ndarray, ids: np.ndarray, chunk: int = ENCODE_CHUNK) -> np.ndarray:
    """``encode`` into one int32 array: through one lookup table when it pays (``arrays.table_pays``), else a chunk
    at a time, as a binary search has int64 temporaries of 8 to 24 bytes a value (about 5 GB over 207M listens)."""
    if len(ids) and table_pays(ids, len(values)):
        return lookup(id_table(ids), values, -1)
    codes = np.empty(len(values), dtype=np.int32)
    for begin in range(0, len(values), chunk):
        codes[begin:begin + chunk] = encode(values[begin:begin + chunk], ids)
    return codes


def _events_matrix(events: pd.DataFrame, users: np.ndarray, item_ids: np.ndarray) -> sp.csr_matrix:
    """Binary (users, items) matrix of the events whose user is in ``users``."""
    rows = chunked_encode(events["user_id"].to_numpy(), users)
    keep = rows >= 0
    cols = chunked_encode(events["track_id"].to_numpy()[keep], item_ids)
    return _binary_csr(rows[keep], cols, (len(users), len(item_ids)))


def _binary_csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Canonical bool CSR (sorted, duplicates merged) built by scipy's counting sort, no global sort."""
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _same_list(pool: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """(n_users, k) copies of the first k pool items, padded with empty slots."""
    row = np.full(k, EMPTY, dtype=np.int32)
    row[: min(k, len(pool))] = pool[:k]
    return np.tile(row, (n_users, 1))


def _unseen_positions(pool: np.ndarray, train: sp.csr_matrix, k: int) -> np.ndarray:
    """(n_users, k) positions in ``pool`` of each user's first k items not seen in train (>= len(pool) if none).

    With a user's seen pool positions s_0 < s_1 < ..., d_j = s_j - j unseen items precede s_j, so the t-th
    unseen position is t + #{j : d_j <= t}: a per-user histogram of d, cumulated over t.
    """
    n_users, n_items = train.shape
    known = pool < n_items
    pool_rank = np.full(n_items, -1, dtype=np.int32)
    pool_rank[pool[known]] = np.flatnonzero(known).astype(np.int32)
    entries = np.flatnonzero((pool_rank >= 0)[train.indices])
    rows = (np.searchsorted(train.indptr, entries, side="right") - 1).astype(np.int64)
    keys = np.sort(pair_keys(rows, pool_rank[train.indices[entries]], len(pool)))
    del entries, rows
    rows, seen_rank = np.divmod(keys, len(pool))
    del keys
    first_of_row = np.cumsum(np.bincount(rows, minlength=n_users)) - np.bincount(rows, minlength=n_users)
    unseen_before = seen_rank - (np.arange(len(rows)) - first_of_row[rows])
    keep = unseen_before < k
    shifts = np.bincount(rows[keep] * k + unseen_before[keep], minlength=n_users * k).reshape(n_users, k)
    return np.arange(k) + np.cumsum(shifts, axis=1)


def _score(top: np.ndarray, data: EvaluationSet, ks: Sequence[int]) -> dict[str, float]:
    return ranking_metrics(
        top, data.truth, data.train, data.item_listeners, data.n_train_users, data.n_train_items, ks
    )


PLOTTED_METRICS = ("precision", "recall", "ndcg")


def per_k_tables(results: dict[str, dict], ks: Sequence[int]) -> dict[str, pd.DataFrame]:
    """One table per metric: a row per k, a column per recommender (what `dvc plots` draws).

    Every plotted recommender gets a column, empty where it was not scored (no
    oracle on real data), so the plot definitions hold for any data.
    """
    return {
        metric: pd.DataFrame({"k": list(ks), **{
            name: [results.get(name, {}).get(f"{metric}_at_{k}", float("nan")) for k in ks]
            for name in RECOMMENDERS
        }})
        for metric in PLOTTED_METRICS
    }
