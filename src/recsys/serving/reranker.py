"""The learned online re-ranker: one model orders the union of a user's offline list and online candidates.

Trained by the blend search (``search.py``) on the fit half of the tuning users: for each of them and each
``m``, the candidates ``blend_for_user`` would blend after ``m`` online listens, labelled by whether the user
played them later. Features are what a music team would look at: where each list ranks a track and with
what score, what the online sources (played next, catalog continuation, similar) contribute, whether the
track shares the last listen's artist or album or is the next track of its album, how much of the recent
listening was its artist, its popularity, how many online listens there are and whether the user is cold.

The model is a CatBoost ensemble of oblivious trees; the bundle carries its splits and leaf values as
arrays and ``TreeEnsemble.score`` evaluates them with numpy (tens of candidates in ~0.1 ms, no CatBoost
in the service). Only the order matters, so CatBoost's scale and bias are dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import Config, integer, number, param
from .online_candidates import ONLINE_SOURCES, OnlineCandidates, next_in_album
from .trees import TreeEnsemble

if TYPE_CHECKING:  # the reader checks a bundle's feature names against RERANKER_FEATURES: it imports this module
    from .bundle_reader import ServingBundle

# The columns of a feature row, in order: the trees refer to them by position, the bundle's manifest records
# the names (``reranker_features``) and the reader refuses a bundle whose names differ. The online sources'
# contributions are columns named after the sources (``ONLINE_SOURCES``).
RERANKER_FEATURES = ("offline_rank", "offline_score", "online_rank", "online_score", *ONLINE_SOURCES,
                     "same_artist_as_last", "same_album_as_last", "next_in_album_of_last", "recent_artist_share",
                     "log_listeners", "online_listens", "cold")
COLUMN = {name: position for position, name in enumerate(RERANKER_FEATURES)}
ONLINE_POOL = 45  # the best online candidates the re-ranker weighs (docs/online.md: fewer cost cold users quality)
ABSENT_RANK = 1000.0  # the rank of a track the list does not hold
ABSENT_SCORE = -1e6  # the score of a track the list does not hold (ranker scores may be negative)


@dataclass(frozen=True)
class RerankerConfig(Config):
    """Training params of the re-ranker (``blend_search.reranker``)."""

    iterations: int = param("blend_search.reranker.iterations", integer(1))
    depth: int = param("blend_search.reranker.depth", integer(1, 10))
    learning_rate: float = param("blend_search.reranker.learning_rate", number(0.0, 1.0, low_open=True))
    seed: int = param("blend_search.reranker.seed", integer(0))


def candidate_features(bundle: ServingBundle, offline: tuple[np.ndarray, np.ndarray], online: OnlineCandidates,
                       recent: np.ndarray, cold: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tracks sorted by id, in-offline-list mask, feature rows) for the union of the offline list and the
    ``ONLINE_POOL`` best online candidates.

    ``offline``: (tracks, scores) best first (the chart, scored by listeners, for a cold user); ``recent``:
    the online listens the candidates came from, most recent first.
    """
    offline_tracks, offline_scores = offline
    online = online.keep(slice(0, ONLINE_POOL))
    tracks, inverse = np.unique(np.concatenate([offline_tracks, online.tracks]), return_inverse=True)
    n, n_offline = len(tracks), len(offline_tracks)
    on_offline, on_online = inverse[:n_offline], inverse[n_offline:]
    catalog = bundle.catalog
    codes = catalog.codes(tracks)
    known = codes >= 0
    artist = np.where(known, catalog.artists[codes], -1)
    album = np.where(known, catalog.albums[codes], -1)
    recent_codes = catalog.codes(np.asarray(recent, dtype=np.int32))
    recent_artists = np.where(recent_codes >= 0, catalog.artists[recent_codes], -1)
    last_artist = last_album = next_track = -1
    if len(recent):
        last_artist = int(recent_artists[0])
        last_album = int(catalog.albums[recent_codes[0]]) if recent_codes[0] >= 0 else -1
        following = next_in_album(bundle, int(recent[0]), last_album, 1)
        next_track = int(following[0]) if len(following) else -1
    rows = np.full((n, len(RERANKER_FEATURES)), np.nan, dtype=np.float32)  # a column never written stays NaN

    def column(name: str, value, at=slice(None)) -> None:
        rows[at, COLUMN[name]] = value

    column("offline_rank", ABSENT_RANK)
    column("offline_rank", np.arange(1, n_offline + 1), on_offline)
    column("offline_score", ABSENT_SCORE)
    column("offline_score", offline_scores, on_offline)
    column("online_rank", ABSENT_RANK)
    column("online_rank", np.arange(1, len(online) + 1), on_online)
    column("online_score", 0.0)
    column("online_score", online.score, on_online)
    for source, contribution in zip(ONLINE_SOURCES, online.by_source):
        column(source, 0.0)
        column(source, contribution, on_online)
    column("same_artist_as_last", (artist >= 0) & (artist == last_artist))
    column("same_album_as_last", (album >= 0) & (album == last_album))
    column("next_in_album_of_last", tracks == next_track)
    column("recent_artist_share",
           ((artist[:, None] == recent_artists[None, :]) & (artist[:, None] >= 0)).sum(axis=1) / max(len(recent), 1))
    column("log_listeners", np.log1p(np.where(known, catalog.listeners[codes], 0)))
    column("online_listens", len(recent))
    column("cold", cold)
    in_offline = np.zeros(n, dtype=bool)
    in_offline[on_offline] = True
    return tracks, in_offline, rows


def fit_reranker(rows: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                 cfg: RerankerConfig) -> tuple[TreeEnsemble, dict[str, float]]:
    """A CatBoost classifier (Logloss) on the candidates' rows (rows of one (user, m) share a group), and each
    feature's importance (PredictionValuesChange, % of the total): why the model orders as it does."""
    from catboost import CatBoost, Pool  # the service never trains: it evaluates the arrays above

    model = CatBoost({"loss_function": "Logloss", "iterations": cfg.iterations, "depth": cfg.depth,
                      "learning_rate": cfg.learning_rate, "random_seed": cfg.seed, "thread_count": -1,
                      "verbose": 0, "allow_writing_files": False})
    model.fit(Pool(rows, label=labels, group_id=groups, feature_names=list(RERANKER_FEATURES)))
    importance = dict(zip(RERANKER_FEATURES, (round(float(value), 2) for value in model.get_feature_importance())))
    return TreeEnsemble.from_catboost(model), dict(sorted(importance.items(), key=lambda item: -item[1]))
