"""What `rank_train` builds before fitting the ranker: the feature history as of T - W, the label events in
[T - W, T), an ALS model fit on the history alone, the sampled training users and the ranking context.

The stage and the tests' fixture both call these functions, so the tests exercise the stage's own path.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..als_model import AlsFitConfig, AlsModel, fit_als
from ..columns import STARTED_AT, TRACK, USER
from ..config import Config, day, integer, invalid, param, section
from ..interactions import InteractionMatrix
from ..io import timed
from .dataset import label_window, training_users, window_events
from .history import DAY, History
from .model import RankerModelConfig
from .pipeline import RankingConfig, RankingContext, similar_for_recent


@dataclass(frozen=True)
class RankTrainConfig(Config):
    split_date: str = param("split.date", day())
    als: AlsFitConfig = section(AlsFitConfig, iterations="rank.als_iterations")
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
    model: AlsModel
    users: np.ndarray  # training users: with history and with label events, sampled
    rng: np.random.Generator  # seeded by rank.model.seed; has drawn the user sample, goes on to the negatives
    context: RankingContext

    @property
    def start(self) -> np.datetime64:
        return self.history.cutoff


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


def prepare_training(history: History, labels: pd.DataFrame, items: pd.DataFrame, cfg: RankTrainConfig,
                     logger: logging.Logger) -> TrainingSetup:
    """Fit ALS on the history, sample the training users, and build their ranking context."""
    end = history.cutoff + np.timedelta64(cfg.label_days, "D")
    logger.info("features before %s: %d events; labels in [%s, %s): %d events",
                history.cutoff, len(history), history.cutoff, end, len(labels))
    data = history.interaction_matrix()
    with timed(logger, f"fitting ALS on the feature period ({cfg.als.iterations} iterations)"):
        model = fit_als(data, cfg.als, show_progress=False)
    rng = np.random.default_rng(cfg.model.seed)
    users = training_users(history.user_ids, labels, cfg.max_train_users, rng)
    similar = similar_for_recent(model, history, users, cfg.ranking.candidates.recent_listens, cfg.similar_n)
    context = RankingContext.build(history, model, data.matrix, similar, items, cfg.ranking)
    return TrainingSetup(history, end, labels, data, model, users, rng, context)
