"""Both uses of the ranking stage, batched over users so memory stays bounded at full scale.

* ``training_frame``: candidates, features and labels as of T - W (for fitting the ranker);
* ``rank_users``: candidates and features as of T, scored by the ranker (the final lists).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..als_model import AlsModel
from ..arrays import encode, positions_in_groups
from ..config import Config, integer, number, param, section
from ..interactions import ranked_table
from ..io import Progress
from ..topk import similar_items
from .offline_candidates import CandidateSources, generate_candidates
from .dataset import label_candidates, sample_negatives
from .features import RANKER_FEATURES, TrackFeatures, TrackMeta, build_features
from .history import History, TrackStats
from .model import top_n


@dataclass(frozen=True)
class CandidateConfig(Config):
    """How many candidates each source gives a user."""

    als: int = param("rank.candidates.als", integer(1))
    recent_listens: int = param("rank.candidates.recent_listens", integer(0))
    popular: int = param("rank.candidates.popular", integer(0))
    trending: int = param("rank.candidates.trending", integer(0))


@dataclass(frozen=True)
class RankingConfig(Config):
    """What candidates and features read, the same for `rank_train` (as of T - W) and `rank` (as of T)."""

    candidates: CandidateConfig = section(CandidateConfig)
    recent_days: float = param("rank.recent_days", number(0.0, low_open=True))
    affinity_half_life_days: float = param("rank.affinity_half_life_days", number(0.0, low_open=True))
    batch_users: int = param("rank.batch_users", integer(1))


@dataclass
class RankingContext:
    """A history and everything fit on it: the inputs of candidates and features."""

    history: History
    sources: CandidateSources
    stats: TrackStats
    tracks: TrackFeatures
    meta: TrackMeta
    cfg: RankingConfig

    @classmethod
    def build(cls, history: History, model: AlsModel, seen, similar: tuple[np.ndarray, np.ndarray],
              items: pd.DataFrame, cfg: RankingConfig) -> "RankingContext":
        stats = TrackStats.of(history, model.item_ids, cfg.recent_days)
        sources = CandidateSources(model, seen, similar[0], similar[1],
                                   popular=chart(stats.listeners, cfg.candidates.popular),
                                   trending=chart(stats.recent_listeners, cfg.candidates.trending))
        meta = TrackMeta.of(items, model.item_ids)
        return cls(history, sources, stats, TrackFeatures.of(stats, meta), meta, cfg)

    def featurized(self, user_ids: np.ndarray) -> pd.DataFrame:
        """Candidates with features for one batch of users."""
        sizes = self.cfg.candidates
        candidates = generate_candidates(self.sources, self.history, user_ids, sizes.als, sizes.recent_listens)
        return build_features(candidates, user_ids, self.sources, self.history, self.tracks, self.meta,
                              self.cfg.recent_days, self.cfg.affinity_half_life_days)

    def batches(self, user_ids: np.ndarray, progress: Progress | None = None) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        size = self.cfg.batch_users
        for begin in range(0, len(user_ids), size):
            batch = user_ids[begin:begin + size]
            yield batch, self.featurized(batch)
            if progress:
                progress(min(begin + size, len(user_ids)), len(user_ids))


def chart(listeners: np.ndarray, n: int) -> np.ndarray:
    """Item codes of the ``n`` tracks with most listeners (ties: lower code first)."""
    return np.lexsort((np.arange(len(listeners)), -listeners))[:n]


def similar_for_recent(model: AlsModel, history: History, user_ids: np.ndarray, n_recent: int,
                       n_similar: int) -> tuple[np.ndarray, np.ndarray]:
    """Similar tracks of only the tracks that are some user's recent listen (dense arrays, -1 elsewhere)."""
    _, event = history.events_of(history.rows_of(user_ids), last=n_recent)
    needed = np.unique(encode(history.track_id[event], model.item_ids))
    needed = needed[needed >= 0]
    indices = np.full((len(model.item_ids), n_similar), -1, dtype=np.int32)
    scores = np.zeros((len(model.item_ids), n_similar), dtype=np.float32)
    indices[needed], scores[needed] = similar_items(model.item_factors, n_similar, item_ids=needed)
    return indices, scores


def training_frame(context: RankingContext, user_ids: np.ndarray, label_events: pd.DataFrame, negatives_per_user: int,
                   rng: np.random.Generator, logger: logging.Logger, progress: Progress | None = None) -> pd.DataFrame:
    """Labelled, negative-sampled candidates of ``user_ids`` for fitting the ranker."""
    parts = []
    positives = candidates = 0
    for batch, frame in context.batches(user_ids, progress):
        frame["label"] = label_candidates(frame, batch, context.sources.model.item_ids, label_events)
        positives += int(frame["label"].sum())
        candidates += len(frame)
        keep = sample_negatives(frame["user_pos"].to_numpy(), frame["label"].to_numpy(),
                                negatives_per_user, rng)
        frame = frame[keep]
        parts.append(frame.assign(user_id=batch[frame["user_pos"].to_numpy()])[["user_id", "item", "label", *RANKER_FEATURES]])
    label_pairs = len(label_events[np.isin(label_events["user_id"].to_numpy(), user_ids)])
    logger.info("candidates: %.1f per user; they hold %d of %d label listens (candidate recall %.3f)",
                candidates / max(len(user_ids), 1), positives, label_pairs, positives / max(label_pairs, 1))
    return pd.concat(parts, ignore_index=True)


def rank_users(context: RankingContext, user_ids: np.ndarray, score: Callable[[pd.DataFrame], np.ndarray],
              n: int, progress: Progress | None = None) -> pd.DataFrame:
    """Each user's top-``n`` candidates by the ranker's score."""
    parts = []
    item_ids = context.sources.model.item_ids
    for batch, frame in context.batches(user_ids, progress):
        scores = score(frame[RANKER_FEATURES])
        best = top_n(frame["user_pos"].to_numpy(), scores, n)
        user_pos = frame["user_pos"].to_numpy()[best]
        parts.append(ranked_table(batch[user_pos], item_ids[frame["item"].to_numpy()[best]], scores[best],
                                  positions_in_groups(user_pos) + 1))
    return pd.concat(parts, ignore_index=True)
