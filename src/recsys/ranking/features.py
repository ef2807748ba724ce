"""Ranking features of (user, track) candidates, computed vectorised for one batch of users.

Every input is a ``History`` (events before the cut-off), statistics derived
from it, or the ALS model fit on it, so features cannot see the label window.
Each feature and why it should help:

=====================  ==================================================================
als_score              collaborative fit of the user and track factors
als_rank               where ALS placed the track among the user's candidates
sim_score              best cosine of the track to one of the user's recent listens
sim_sources            how many recent listens point at the track (consensus)
sim_age_days           how long ago the listen that pointed at it was (fresh taste)
from_popular           the track came from the all-time chart
from_trending          the track came from the chart of the recent days (new releases, hype)
track_listeners_log    overall popularity (log) over the history
track_recent_log       popularity over the last ``recent_days`` (log)
track_trend            share of the track's listens that are recent: rising or fading
track_age_days         days since the track's first listen: new releases behave differently
user_events_log        history length (log): how much the user's profile can be trusted
user_recent_events     activity over the last ``recent_days``
user_days_since_last   days since the user's last listen
genre_affinity         recency-weighted share of the user's listens in the track's genres
genre_affinity_recent  the same over the last ``recent_days`` only: tastes drift
artist_affinity        recency-weighted share of the user's listens by the track's artist
artist_listens_log     how many of the user's listens are by the track's artist (log)
artist_share           the track's share of its artist's recent listens (the artist's hit or a deep cut)
genre_share            the track's share of its genres' recent listens
artist_route           artist_affinity x artist_share: how likely the user reaches it through the artist
genre_route            sum over genres of the user's genre share x the track's share of that genre
popularity_gap         track popularity minus the user's usual popularity (log units)
=====================  ==================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from .. import portable
from ..arrays import encode, lookup_sorted, pair_keys
from .offline_candidates import NO_AGE, CandidateSources
from .history import History, TrackStats

RANKER_FEATURES = [
    "als_score", "als_rank", "sim_score", "sim_sources", "sim_age_days", "from_popular", "from_trending",
    "track_listeners_log", "track_recent_log", "track_trend", "track_age_days",
    "user_events_log", "user_recent_events", "user_days_since_last",
    "genre_affinity", "genre_affinity_recent", "artist_affinity", "artist_listens_log", "popularity_gap",
    "artist_share", "genre_share", "artist_route", "genre_route",
]


@dataclass
class TrackMeta:
    """Artist and genres of each model item code."""

    artist: np.ndarray  # int32 artist code of the first listed artist (-1 unknown)
    n_artists: int
    genres: sp.csr_matrix  # (n_items, n_genres), each row sums to 1 (or 0 without genres)

    def shares(self, listens: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        """Each track's share of its artist's ``listens``, and (n_items, n_genres) shares of each genre's."""
        known = self.artist >= 0
        artist_total = np.bincount(self.artist[known], weights=listens[known], minlength=self.n_artists)
        artist_share = np.where(known, listens / np.maximum(artist_total[self.artist], 1e-9), 0.0)
        genre_total = self.genres.T @ listens
        genre_share = sp.diags(listens) @ self.genres @ sp.diags(1.0 / np.maximum(genre_total, 1e-9))
        return artist_share, sp.csr_matrix(genre_share)

    @classmethod
    def of(cls, items: pd.DataFrame, item_ids: np.ndarray) -> "TrackMeta":
        row = encode(items["track_id"].to_numpy(), item_ids)
        items = items[row >= 0]
        row = row[row >= 0]
        first_artist = pc.list_element(pa.array(items["artists"]), 0)  # clean items always have one
        artist_ids, artist_code = np.unique(first_artist.to_numpy(zero_copy_only=False), return_inverse=True)
        artist = np.full(len(item_ids), -1, dtype=np.int32)
        artist[row] = artist_code
        genres = pa.array(items["genres"])
        values = pc.list_flatten(genres).to_numpy(zero_copy_only=False)
        parents = row[pc.list_parent_indices(genres).to_numpy(zero_copy_only=False)]
        genre_ids, genre_code = np.unique(values, return_inverse=True)
        weights = 1.0 / np.bincount(parents, minlength=len(item_ids))[parents]
        matrix = sp.csr_matrix((weights.astype(np.float32), (parents, genre_code)), shape=(len(item_ids), len(genre_ids)))
        return cls(artist=artist, n_artists=len(artist_ids), genres=matrix)


@dataclass
class TrackFeatures:
    """Track-side feature columns over all model items, computed once per history (not per batch)."""

    listeners_log: np.ndarray
    recent_log: np.ndarray
    trend: np.ndarray
    age_days: np.ndarray
    artist_share: np.ndarray
    genre_share: sp.csr_matrix  # (n_items, n_genres): the track's share of each genre's recent listens
    genre_share_total: np.ndarray

    @classmethod
    def of(cls, stats: TrackStats, meta: TrackMeta) -> "TrackFeatures":
        artist_share, genre_share = meta.shares(stats.recent_listeners)
        return cls(
            listeners_log=portable.log1p(stats.listeners),
            recent_log=portable.log1p(stats.recent_listeners),
            trend=stats.recent_listeners / np.maximum(stats.listeners, 1.0),
            age_days=stats.age_days,
            artist_share=artist_share,
            genre_share=genre_share,
            genre_share_total=np.asarray(genre_share.sum(axis=1)).ravel(),
        )


def _per_user(owner: np.ndarray, values: np.ndarray, n_users: int) -> np.ndarray:
    return np.bincount(owner, weights=values, minlength=n_users)


def build_features(candidates: pd.DataFrame, user_ids: np.ndarray, sources: CandidateSources,
                   history: History, tracks: TrackFeatures, meta: TrackMeta,
                   recent_days: float, half_life_days: float) -> pd.DataFrame:
    """Add the ``RANKER_FEATURES`` columns to a batch's candidates (see the module docstring)."""
    model = sources.model
    user_pos = candidates["user_pos"].to_numpy()
    item = candidates["item"].to_numpy()
    n_users = len(user_ids)
    out = candidates.copy()

    user_rows = model.user_rows(user_ids)
    out["als_score"] = np.einsum("ij,ij->i", model.user_factors[user_rows[user_pos]], model.item_factors[item])
    out["track_listeners_log"] = tracks.listeners_log[item]
    out["track_recent_log"] = tracks.recent_log[item]
    out["track_trend"] = tracks.trend[item]
    out["track_age_days"] = tracks.age_days[item]

    owner, event = history.events_of(history.rows_of(user_ids))
    track = encode(history.track_id[event], model.item_ids)
    known = track >= 0
    owner, track, age = owner[known], track[known], history.age_days[event][known]
    count = np.bincount(owner, minlength=n_users).astype(np.float32)
    recent = (age <= recent_days).astype(np.float32)
    out["user_events_log"] = portable.log1p(count)[user_pos]
    out["user_recent_events"] = _per_user(owner, recent, n_users)[user_pos]
    last = np.full(n_users, NO_AGE, dtype=np.float32)
    np.minimum.at(last, owner, age)
    out["user_days_since_last"] = last[user_pos]
    usual = _per_user(owner, tracks.listeners_log[track], n_users) / np.maximum(count, 1.0)
    out["popularity_gap"] = tracks.listeners_log[item] - usual[user_pos]

    weight = portable.half_life_weight(age, half_life_days)
    weight /= np.maximum(_per_user(owner, weight, n_users), 1e-9)[owner]
    recent /= np.maximum(_per_user(owner, recent, n_users), 1e-9)[owner]
    profile = genre_profile(owner, track, weight, meta, n_users)
    out["genre_affinity"] = genre_affinity(profile, user_pos, item, meta.genres)
    out["genre_affinity_recent"] = genre_affinity(genre_profile(owner, track, recent, meta, n_users), user_pos, item,
                                                  meta.genres)
    affinity, artist_count = artist_affinity(owner, track, weight, user_pos, item, meta)
    out["artist_affinity"] = affinity
    out["artist_listens_log"] = portable.log1p(artist_count)
    out["artist_share"] = tracks.artist_share[item]
    out["artist_route"] = affinity * tracks.artist_share[item]
    out["genre_share"] = tracks.genre_share_total[item]
    out["genre_route"] = genre_affinity(profile, user_pos, item, tracks.genre_share)
    for column in RANKER_FEATURES:
        out[column] = out[column].astype(np.float32)
    return out


def genre_profile(owner, track, weight, meta: TrackMeta, n_users: int) -> np.ndarray:
    """(n_users, n_genres) weighted genre shares of each user's listens (rows sum to <= 1)."""
    listen_matrix = sp.csr_matrix((weight, (owner, np.arange(len(owner)))), shape=(n_users, len(owner)))
    return (listen_matrix @ meta.genres[track]).toarray()


def genre_affinity(profile: np.ndarray, user_pos, item, track_genres: sp.csr_matrix) -> np.ndarray:
    """Sum over the candidate's genres of the user's genre share times the track's weight in that
    genre (its genre membership, or e.g. its share of the genre's listens)."""
    candidate_genres = track_genres[item].tocoo()
    values = candidate_genres.data * profile[user_pos[candidate_genres.row], candidate_genres.col]
    return np.bincount(candidate_genres.row, weights=values, minlength=len(item))


def artist_affinity(owner, track, weight, user_pos, item, meta: TrackMeta) -> tuple[np.ndarray, np.ndarray]:
    """Recency-weighted share and raw count of the user's listens by the candidate's artist."""
    n = max(meta.n_artists, 1)
    listened = meta.artist[track]
    known = listened >= 0  # an unknown artist must not alias the previous user's last artist
    owner, listened, weight = owner[known], listened[known], weight[known]
    keys, inverse = np.unique(pair_keys(owner, listened, n), return_inverse=True)
    share = np.bincount(inverse, weights=weight)
    count = np.bincount(inverse).astype(np.float64)
    candidate_keys = np.where(meta.artist[item] >= 0, pair_keys(user_pos, meta.artist[item], n), -1)
    return lookup_sorted(keys, share, candidate_keys, 0.0), lookup_sorted(keys, count, candidate_keys, 0.0)
