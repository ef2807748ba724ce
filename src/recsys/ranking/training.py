"""What `rank_train` builds before fitting the ranker from the feature history as of T - W, the label events
in [T - W, T) and the ALS model `als_tune` fit on that history alone: the sampled training users and the
ranking context.

The stage and the tests' fixture both call these functions, so the tests exercise the stage's own path.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..als_model import AlsModel
from ..config import Config, day, integer, param, section
from ..interactions import InteractionMatrix
from .dataset import training_users
from .history import History
from .model import RankerModelConfig
from .pipeline import RankingConfig, RankingContext, similar_for_recent


@dataclass(frozen=True)
class RankTrainConfig(Config):
    split_date: str = param("split.date", day())
    similar_n: int = param("similar.n", integer(1))
    label_days: int = param("rank.label_days", integer(1))
    ranking: RankingConfig = section(RankingConfig)
    negatives_per_user: int = param("rank.negatives_per_user", integer(0))
    max_train_users: int = param("rank.max_train_users", integer(1))
    model: RankerModelConfig = section(RankerModelConfig)


@dataclass(frozen=True)
class TrainingSetup:
    """The inputs of ``training_frame``: everything fit on the events before T - W, and the labels."""

    history: History  # events before T - W (its cut-off)
    end: np.datetime64  # T: the split date
    labels: pd.DataFrame  # (user_id, track_id) of train events in [T - W, T)
    feature_data: InteractionMatrix  # the history's user x track matrix (what ALS is fit on)
    model: AlsModel  # fit on the history alone (`als_tune`)
    users: np.ndarray  # training users: with history and with label events, sampled
    rng: np.random.Generator  # seeded by rank.model.seed; has drawn the user sample, goes on to the negatives
    context: RankingContext

    @property
    def start(self) -> np.datetime64:
        return self.history.cutoff


def prepare_training(history: History, labels: pd.DataFrame, items: pd.DataFrame, model: AlsModel,
                     cfg: RankTrainConfig, logger: logging.Logger) -> TrainingSetup:
    """Sample the training users and build their ranking context on the history and its ALS model."""
    end = history.cutoff + np.timedelta64(cfg.label_days, "D")
    logger.info("features before %s: %d events; labels in [%s, %s): %d events",
                history.cutoff, len(history), history.cutoff, end, len(labels))
    data = history.interaction_matrix()
    model.check_fit_on(data)
    rng = np.random.default_rng(cfg.model.seed)
    users = training_users(history.user_ids, labels, cfg.max_train_users, rng)
    similar = similar_for_recent(model, history, users, cfg.ranking.candidates.recent_listens, cfg.similar_n)
    context = RankingContext.build(history, model, data.matrix, similar, items, cfg.ranking)
    return TrainingSetup(history, end, labels, data, model, users, rng, context)
