"""Candidate generation: ALS top-n, tracks similar to recent listens, and popular tracks.

All sources index tracks by the ALS model's item codes; the merged table holds
one row per (user, track) with each source's evidence, and never a seen track.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..als_model import AlsModel
from ..arrays import encode, lookup_sorted, pair_keys
from ..topk import top_k_scores
from .history import History

NO_RANK = np.float32(1e4)  # rank given to candidates a source did not return
NO_AGE = np.float32(1e4)  # age in days given to candidates no recent listen points at (and users without listens)


@dataclass
class CandidateSources:
    """Everything candidates come from, all fit on the same history."""

    model: AlsModel
    seen: sp.csr_matrix  # model users x model items, the history's listens
    similar_items: np.ndarray  # (n_items, n_similar) item codes, -1 padded
    similar_scores: np.ndarray  # (n_items, n_similar) cosine
    popular: np.ndarray  # item codes, most listeners over the history first
    trending: np.ndarray  # item codes, most listeners over the recent days first


def similar_table_to_arrays(similar: pd.DataFrame, item_ids: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense (n_items, width) arrays from the `similar` stage's long table (real ids -> item codes)."""
    indices = np.full((len(item_ids), width), -1, dtype=np.int32)
    scores = np.zeros((len(item_ids), width), dtype=np.float32)
    rows = encode(similar["track_id"].to_numpy(), item_ids)
    cols = encode(similar["similar_track_id"].to_numpy(), item_ids)
    slot = similar["rank"].to_numpy().astype(np.int64) - 1
    ok = (rows >= 0) & (cols >= 0) & (slot < width)
    indices[rows[ok], slot[ok]] = cols[ok]
    scores[rows[ok], slot[ok]] = similar["score"].to_numpy()[ok]
    return indices, scores


def chart_keys(chart: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """Sorted pair keys giving every user of the batch the same chart."""
    return np.sort(pair_keys(np.repeat(np.arange(n_users), len(chart)), np.tile(chart, n_users), n_items))


def generate_candidates(sources: CandidateSources, history: History, user_ids: np.ndarray,
                        n_als: int, n_recent: int) -> pd.DataFrame:
    """Candidates of a batch of users (all known to the model), one row per (user, track).

    Columns: user_pos (position in ``user_ids``), item (model item code), als_rank,
    sim_score (best similarity to a recent listen), sim_sources (recent listens
    pointing at it), sim_age_days (age of the most recent such listen), from_popular,
    from_trending.
    """
    model = sources.model
    n_items = len(model.item_ids)
    rows = model.user_rows(user_ids)
    seen = sources.seen[rows]

    als_items, _ = top_k_scores(model.user_factors[rows], model.item_factors, n_als, exclude=seen)
    als_user, als_slot = np.nonzero(als_items >= 0)
    als_keys = pair_keys(als_user, als_items[als_user, als_slot], n_items)
    als_order = np.argsort(als_keys)
    als_keys, als_rank = als_keys[als_order], (als_slot[als_order] + 1).astype(np.float32)

    owner, event = history.events_of(history.rows_of(user_ids), last=n_recent)
    source = encode(history.track_id[event], model.item_ids)
    known = source >= 0
    owner, source, source_age = owner[known], source[known], history.age_days[event][known]
    width = sources.similar_items.shape[1]
    sim_item = sources.similar_items[source].ravel()
    sim_frame = pd.DataFrame({
        "key": pair_keys(np.repeat(owner, width), sim_item, n_items),
        "score": sources.similar_scores[source].ravel(),
        "age": np.repeat(source_age, width),
    })[sim_item >= 0]
    sim = sim_frame.groupby("key", sort=True).agg(score=("score", "max"), sources=("score", "size"), age=("age", "min"))
    sim_keys = sim.index.to_numpy()

    pop_keys = chart_keys(sources.popular, len(user_ids), n_items)
    trend_keys = chart_keys(sources.trending, len(user_ids), n_items)

    keys = np.union1d(np.union1d(als_keys, sim_keys), np.union1d(pop_keys, trend_keys))
    seen_keys = pair_keys(np.repeat(np.arange(len(user_ids)), np.diff(seen.indptr)), seen.indices, n_items)
    keys = keys[~np.isin(keys, seen_keys)]
    return pd.DataFrame({
        "user_pos": (keys // n_items).astype(np.int32),
        "item": (keys % n_items).astype(np.int32),
        "als_rank": lookup_sorted(als_keys, als_rank, keys, NO_RANK),
        "sim_score": lookup_sorted(sim_keys, sim["score"].to_numpy(np.float32), keys, np.float32(0)),
        "sim_sources": lookup_sorted(sim_keys, sim["sources"].to_numpy(np.float32), keys, np.float32(0)),
        "sim_age_days": lookup_sorted(sim_keys, sim["age"].to_numpy(np.float32), keys, NO_AGE),
        "from_popular": np.isin(keys, pop_keys).astype(np.float32),
        "from_trending": np.isin(keys, trend_keys).astype(np.float32),
    })
