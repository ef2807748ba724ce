"""Shared data for the recommender and ranking tests: one small generated dataset, cleaned and split.

Building blocks are cached per process (``functools.cache``) rather than declared as
session fixtures: a fixture imported into several test modules is registered once per
module, so each module would regenerate the data. Everything here is computed on
first use and reused by every test file that imports it (a few seconds in total).
"""
from __future__ import annotations

import atexit
import functools
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from src.recsys.als import AlsModel, fit_als
from src.recsys.catalogs import build_items
from src.recsys.cleaning import Events, clean_events, clean_tracks
from src.recsys.evaluation import EvaluationSet, build_evaluation_set
from src.recsys.interactions import InteractionMatrix, ranked_frame
from src.recsys.ranking.dataset import label_window, window_events
from src.recsys.ranking.history import History
from src.recsys.ranking.pipeline import RankingContext, similar_for_recent
from src.recsys.split import time_split
from src.recsys.synthetic import generate_dataset
from src.recsys.topk import top_k_scores

# Scale 0.006 (~8k users, ~5.7k tracks, ~0.7M events): below ~0.005 the catalog is so small that
# one heavy-tailed artist can dominate and ALS vs popular becomes a coin flip (seed 42 at 0.003:
# ALS ndcg@10 0.24 vs popular 0.25; at 0.006: 0.33 vs 0.13, and ~2x or more for seeds 1-3).
SCALE = 0.006
SEED = 42
SPLIT_DATE = "2022-12-16"
MIN_USER_EVENTS = 4

# ALS settings close to params.yaml, with fewer iterations to stay fast.
ALS = {"factors": 30, "iterations": 10, "regularization": 0.05, "alpha": 1.0, "random_state": 42}

# A `rank` params block shrunk for tests (same keys as params.yaml's).
RANK_CFG = {
    "label_days": 14,
    "n": 30,
    "candidates": {"als": 50, "recent_listens": 5, "popular": 20, "trending": 20},
    "recent_days": 14,
    "affinity_half_life_days": 30,
    "negatives_per_user": 20,
    "max_train_users": 1500,
    "batch_users": 700,  # several batches for the users featurised in the tests
    "model": {"loss": "Logloss", "iterations": 30, "learning_rate": 0.2, "depth": 4,
              "early_stopping_rounds": 10, "validation_share": 0.2, "seed": 42},
}
SIMILAR_N = 10


@dataclass(frozen=True)
class Generated:
    raw_dir: Path
    events: pd.DataFrame  # clean events (user_id, track_id, track_seq, started_at)
    items: pd.DataFrame  # clean items (track_id, name, albums, artists, genres, listens)
    train: pd.DataFrame
    test: pd.DataFrame
    split_report: dict


@functools.cache
def generated() -> Generated:
    """Generate a small synthetic dataset (see SCALE), clean it and split it."""
    folder = Path(tempfile.mkdtemp(prefix="recsys-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    generate_dataset(folder, SCALE, SEED, 50_000, logging.getLogger("tests.generate"))
    tracks = pq.read_table(folder / "tracks.parquet", columns=["track_id", "albums", "artists", "genres"])
    catalog = pd.read_parquet(folder / "catalog_names.parquet", columns=["id", "type", "name"])
    raw = pq.read_table(folder / "interactions.parquet", columns=["user_id", "track_id", "track_seq", "started_at"])
    events = Events(raw["user_id"].to_numpy().astype(np.int32), raw["track_id"].to_numpy().astype(np.int32),
                    raw["track_seq"].to_numpy().astype(np.int16), raw["started_at"].to_numpy())
    tracks, _ = clean_tracks(tracks, catalog)
    events, _ = clean_events(events, tracks["track_id"].to_numpy(), MIN_USER_EVENTS)
    items = build_items(tracks, catalog, events.track_id)
    frame = events.to_frame()
    train, test, report = time_split(frame, SPLIT_DATE, 1.0, SEED)
    return Generated(folder, frame, items, train, test, report)


@functools.cache
def train_matrix() -> InteractionMatrix:
    return InteractionMatrix.from_events(generated().train[["user_id", "track_id"]])


@functools.cache
def als_model() -> AlsModel:
    """ALS fit on the generated train split (read-only: tests must not modify its arrays)."""
    return fit_als(train_matrix(), show_progress=False, **ALS)


@functools.cache
def als_recommendations(n: int = 30) -> pd.DataFrame:
    """What the `als` stage writes: top-n unseen tracks of every train user, real ids."""
    model, data = als_model(), train_matrix()
    indices, scores = top_k_scores(model.user_factors, model.item_factors, n, exclude=data.matrix)
    return ranked_frame(model.user_ids, model.item_ids, indices, scores, "user_id", "track_id")


@functools.cache
def evaluation_set() -> EvaluationSet:
    data = generated()
    return build_evaluation_set(data.train[["user_id", "track_id"]], data.test[["user_id", "track_id"]])


@dataclass(frozen=True)
class RankingSetup:
    """What `rank_train` builds before fitting the ranker: history as of T - W, its ALS and the context."""

    start: np.datetime64  # T - W: the cut-off of the feature history
    end: np.datetime64  # T: the split date
    history: History
    labels: pd.DataFrame  # train events in [T - W, T)
    feature_data: InteractionMatrix  # train events before T - W (what ALS is fit on)
    model: AlsModel
    users: np.ndarray  # training users: with history and with label events
    context: RankingContext


@functools.cache
def ranking_setup() -> RankingSetup:
    """Mirror of src/stages/rank_train.py up to the training frame (with the small RANK_CFG)."""
    train, items = generated().train, generated().items
    start, end = label_window(SPLIT_DATE, RANK_CFG["label_days"])
    history = History.before(train, start)
    labels = window_events(train, start, end)
    data = InteractionMatrix.from_events(train[train["started_at"].to_numpy() < start])
    model = fit_als(data, show_progress=False, **ALS)
    users = np.intersect1d(history.user_ids, labels["user_id"].unique())
    if len(users) > RANK_CFG["max_train_users"]:
        rng = np.random.default_rng(RANK_CFG["model"]["seed"])
        users = np.sort(rng.choice(users, RANK_CFG["max_train_users"], replace=False))
    similar = similar_for_recent(model, history, users, RANK_CFG["candidates"]["recent_listens"], SIMILAR_N)
    context = RankingContext.build(history, model, data.matrix, similar, items, RANK_CFG)
    return RankingSetup(start, end, history, labels, data, model, users, context)
