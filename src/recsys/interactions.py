"""The sparse user x track matrix every model works on, and the ranked tables every recommender writes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .arrays import encode, unique_sorted
from .columns import RANK, SCORE, TRACK, USER


@dataclass
class InteractionMatrix:
    """Binary user x track matrix with the real ids of its rows and columns (both sorted)."""

    matrix: sp.csr_matrix  # float32, 1.0 where the user listened to the track
    user_ids: np.ndarray  # int32, row -> user_id
    item_ids: np.ndarray  # int32, column -> track_id

    @classmethod
    def from_events(cls, events: pd.DataFrame) -> "InteractionMatrix":
        user_ids = unique_sorted(events["user_id"].to_numpy()).astype(np.int32)
        item_ids = unique_sorted(events["track_id"].to_numpy()).astype(np.int32)
        rows = encode(events["user_id"].to_numpy(), user_ids)
        cols = encode(events["track_id"].to_numpy(), item_ids)
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
        )
        matrix.data[:] = 1.0  # the COO -> CSR conversion summed repeats  # a repeated listen is still one positive
        return cls(matrix, user_ids, item_ids)


def ranked_frame(query_ids: np.ndarray, result_ids: np.ndarray, indices: np.ndarray, scores: np.ndarray,
                 query_column: str = USER, result_column: str = TRACK) -> pd.DataFrame:
    """Long table of top-k results with real ids and 1-based ranks; padding (-1) slots dropped."""
    valid = indices >= 0
    rows, slots = np.nonzero(valid)
    return ranked_table(query_ids[rows], result_ids[indices[valid]], scores[valid], slots + 1, query_column,
                        result_column)


def ranked_table(query_ids: np.ndarray, result_ids: np.ndarray, scores: np.ndarray, ranks: np.ndarray,
                 query_column: str = USER, result_column: str = TRACK) -> pd.DataFrame:
    """The table every recommender writes, one row per (query, result): int32 ids, float32 score, int16 rank."""
    return pd.DataFrame({
        query_column: query_ids.astype(np.int32),
        result_column: result_ids.astype(np.int32),
        SCORE: scores.astype(np.float32),
        RANK: ranks.astype(np.int16),
    })
