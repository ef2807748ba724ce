"""The recommender and ranking tests' data: one small generated dataset, cleaned and split, and what is fit on it.

Plain functions; ``tests/conftest.py`` turns each into a session fixture (``generated``, ``train_matrix``,
``als_model``, ``als_recommendations``, ``evaluation_set``, ``ranking_setup``), so each is built once per
run, on first use (a few seconds in total).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from src.recsys.als_model import AlsFitConfig, AlsModel, fit_als
from src.recsys.catalogs import build_items
from src.recsys.cleaning import Events, clean_events, clean_tracks
from src.recsys.evaluation import EvaluationSet, build_evaluation_set
from src.recsys.interactions import InteractionMatrix, ranked_frame
from src.recsys.ranking.model import RankerModelConfig
from src.recsys.ranking.pipeline import CandidateConfig, RankingConfig
from src.recsys.ranking.dataset import feature_history
from src.recsys.ranking.training import RankTrainConfig, TrainingSetup, prepare_training
from src.recsys.time_split import time_split
from src.recsys.synthetic import SessionConfig, generate_dataset
from src.recsys.topk import top_k_scores
from tests.helpers import REPO_ROOT

# Scale 0.006 (~8k users, ~5.7k tracks, ~0.7M events): below ~0.005 the catalog is so small that
# one heavy-tailed artist can dominate and ALS vs popular becomes a coin flip (seed 42 at 0.003:
# ALS ndcg@10 0.24 vs popular 0.25; at 0.006: 0.33 vs 0.13, and ~2x or more for seeds 1-3).
SCALE = 0.006
SEED = 42
SPLIT_DATE = "2022-12-16"
MIN_USER_EVENTS = 4

SIMILAR_N = 10

# ALS settings as in params.yaml, with a fixed iteration count (the pipeline's `als_tune` chooses it).
ALS = AlsFitConfig(factors=30, regularization=0.05, alpha=1.0, random_state=42)
ALS_ITERATIONS = 10

# The `rank` params shrunk for tests.
RANKING = RankingConfig(
    candidates=CandidateConfig(als=50, recent_listens=5, popular=20, trending=20),
    recent_days=14, affinity_half_life_days=30,
    batch_users=700,  # several batches for the users featurised in the tests
)
RANK_TRAIN = RankTrainConfig(
    split_date=SPLIT_DATE, similar_n=SIMILAR_N, label_days=14, ranking=RANKING, negatives_per_user=20,
    max_train_users=1500,
    model=RankerModelConfig(loss="Logloss", iterations=30, learning_rate=0.2, depth=4, early_stopping_rounds=10,
                            validation_share=0.2, seed=42),
)
RANK_N = 30  # rank.n: final recommendations per user
SESSIONS = SessionConfig.from_params(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))  # as shipped


@dataclass(frozen=True)
class Generated:
    raw_dir: Path
    events: pd.DataFrame  # clean events (user_id, track_id, track_seq, started_at)
    items: pd.DataFrame  # clean items (track_id, name, albums, artists, genres, listens)
    train: pd.DataFrame
    test: pd.DataFrame
    split_report: dict


def generate(folder: Path) -> Generated:
    """Generate a small synthetic dataset (see SCALE) into ``folder``, clean it and split it."""
    generate_dataset(folder, SCALE, SEED, 50_000, SESSIONS, logging.getLogger("tests.generate"))
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


def train_matrix_of(data: Generated) -> InteractionMatrix:
    return InteractionMatrix.from_events(data.train[["user_id", "track_id"]])


def fit(matrix: InteractionMatrix) -> AlsModel:
    """ALS fit with the tests' settings (read-only once shared: tests must not modify its arrays)."""
    return fit_als(matrix, ALS, ALS_ITERATIONS)


def recommend_als(model: AlsModel, data: InteractionMatrix, n: int = 30) -> pd.DataFrame:
    """What the `als` stage writes: top-n unseen tracks of every train user, real ids."""
    indices, scores = top_k_scores(model.user_factors, model.item_factors, n, exclude=data.matrix)
    return ranked_frame(model.user_ids, model.item_ids, indices, scores, "user_id", "track_id")


def evaluation_set_of(data: Generated) -> EvaluationSet:
    return build_evaluation_set(data.train[["user_id", "track_id"]], data.test[["user_id", "track_id"]])


def ranking_setup_of(data: Generated) -> TrainingSetup:
    """What `rank_train` builds before the training frame, by the stage's own functions (with RANK_TRAIN)."""
    history, labels = feature_history(data.train, SPLIT_DATE, RANK_TRAIN.label_days)
    model = fit_als(history.interaction_matrix(), ALS, ALS_ITERATIONS)
    return prepare_training(history, labels, data.items, model, RANK_TRAIN, logging.getLogger("tests.rank_train"))
