"""The generator's ground-truth preference model, shared by the generator and the oracle.

It is the user's taste, not the sequence: the generator (``listening``) draws sessions whose threads
are seeded by these channels and then keep to one genre, artist, album or chart for several listens,
and may continue the previous session's thread. P(track | user, day) below is what seeds a session;
the oracle scores it, and ignores which session the user is in.

A session (or, with one-listen sessions, a listen) of user ``u`` on day ``d`` comes from one of three channels:

* genre   (prob ``p_genre``): a genre from the user's drifting taste, then a track of
  that genre in proportion to its current weight;
* artist  (prob ``p_artist``): one of the user's favourite artists, then one of its tracks;
* popular (prob ``p_popular``): any track in proportion to its current weight (the charts).

(Album sessions then follow the discography, and new-release sessions narrow the charts to recent
releases: these shift the listens away from P below, which stays the seed's distribution.)

A track's weight on a day is its base popularity, boosted for recent releases
(rise then fade) and zero before release. So
``P(t | u, d) = p_genre * taste_u(d)[g_t] * w_t(d) / W_g(d)
              + p_artist * fav_u[a_t] * w_t(d) / W_a(d) + p_popular * w_t(d) / W(d)``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..arrays import segment_positions

GROUND_TRUTH_DIR = "ground_truth"  # beside the raw files, written only by the generator
CHANNELS = ("p_genre", "p_artist", "p_popular")
DAYS_IN_YEAR = 365
YEAR_START = np.datetime64("2022-01-01", "D")


def release_boost(age_days: np.ndarray, peak_days: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Gamma-shaped hype of a new release: rises to ``height`` at ``peak_days``, then fades."""
    x = (np.maximum(age_days, 0) + 1.0) / peak_days
    return height * x * np.exp(1.0 - x)


def track_weights(tracks: pd.DataFrame, day: int) -> np.ndarray:
    """Sampling weight of every track on ``day`` (0 = 2022-01-01); float64 for exact cumulative sums."""
    release = tracks["release_day"].to_numpy()
    age = day - release
    boost = release_boost(age, tracks["peak_days"].to_numpy(), tracks["boost"].to_numpy())
    weight = tracks["base_weight"].to_numpy(np.float64) * (1.0 + np.where(release >= 0, boost, 0.0))
    weight[age < 0] = 0.0
    return weight


def group_normalised(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each track's weight divided by its group's total, and which groups have no weight at all."""
    totals = np.bincount(groups, weights=weights, minlength=n_groups)
    safe = np.where(totals > 0, totals, 1.0)
    return weights / safe[groups], (totals == 0).astype(np.float64)


@dataclass
class GroundTruth:
    """Everything needed to score any (user, track, day) under the generator's model.

    tracks: track_id, genre_idx, artist_idx, base_weight, release_day, peak_days, boost
    users: user_id, p_genre, p_artist, p_popular
    user_genres: user_id, genre_idx, weight_start, weight_end (taste drifts linearly over the year)
    user_artists: user_id, artist_idx, weight
    """

    tracks: pd.DataFrame
    users: pd.DataFrame
    user_genres: pd.DataFrame
    user_artists: pd.DataFrame
    n_genres: int
    n_artists: int


def _rows_of(sorted_user_ids: np.ndarray, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch position, row) of every row of a table sorted by user id that belongs to ``user_ids``."""
    return segment_positions(np.searchsorted(sorted_user_ids, user_ids, side="left"),
                             np.searchsorted(sorted_user_ids, user_ids, side="right"))


class DayPreferences:
    """P(track | user, day) for one day: the track side is built once, users are scored in batches."""

    def __init__(self, truth: GroundTruth, day: int):
        tracks = truth.tracks
        n_tracks = len(tracks)
        weights = track_weights(tracks, day)
        genre = tracks["genre_idx"].to_numpy()
        artist = tracks["artist_idx"].to_numpy()
        cols = np.arange(n_tracks)
        genre_share, self.empty_genres = group_normalised(weights, genre, truth.n_genres)
        artist_share, self.empty_artists = group_normalised(weights, artist, truth.n_artists)
        self.genre_tracks = sp.csr_matrix((genre_share, (genre, cols)), shape=(truth.n_genres, n_tracks))
        self.artist_tracks = sp.csr_matrix((artist_share, (artist, cols)), shape=(truth.n_artists, n_tracks))
        self.popular = weights / weights.sum()
        self.truth = truth
        self.share = day / (DAYS_IN_YEAR - 1)
        self.users = truth.users.sort_values("user_id")
        self.genres = truth.user_genres.sort_values("user_id", kind="stable")
        self.artists = truth.user_artists.sort_values("user_id", kind="stable")

    def scores(self, user_ids: np.ndarray) -> np.ndarray:
        """Dense (len(user_ids), n_tracks) matrix; columns follow ``truth.tracks``."""
        truth, n = self.truth, len(user_ids)
        position = np.searchsorted(self.users["user_id"].to_numpy(), user_ids)
        p_genre, p_artist, p_popular = (self.users[column].to_numpy()[position] for column in CHANNELS)

        owner, row = _rows_of(self.genres["user_id"].to_numpy(), user_ids)
        taste = ((1.0 - self.share) * self.genres["weight_start"].to_numpy()[row]
                 + self.share * self.genres["weight_end"].to_numpy()[row])
        taste_matrix = sp.csr_matrix((taste * p_genre[owner], (owner, self.genres["genre_idx"].to_numpy()[row])),
                                     shape=(n, truth.n_genres))
        owner, row = _rows_of(self.artists["user_id"].to_numpy(), user_ids)
        fav_matrix = sp.csr_matrix(
            (self.artists["weight"].to_numpy()[row] * p_artist[owner], (owner, self.artists["artist_idx"].to_numpy()[row])),
            shape=(n, truth.n_artists),
        )
        scores = (taste_matrix @ self.genre_tracks).toarray()
        scores += (fav_matrix @ self.artist_tracks).toarray()
        # a draw for a genre or artist with no released track falls back to the charts, as in the generator
        fallback = taste_matrix @ self.empty_genres + fav_matrix @ self.empty_artists
        scores += (p_popular + fallback)[:, None] * self.popular[None, :]
        return scores


def preference_matrix(truth: GroundTruth, user_ids: np.ndarray, day: int) -> np.ndarray:
    """Dense (len(user_ids), n_tracks) matrix of P(track | user, day); columns follow ``truth.tracks``."""
    return DayPreferences(truth, day).scores(np.asarray(user_ids))


def has_ground_truth(raw_dir: Path) -> bool:
    return (Path(raw_dir) / GROUND_TRUTH_DIR / "meta.json").exists()


def load_ground_truth(raw_dir: Path) -> GroundTruth:
    folder = Path(raw_dir) / GROUND_TRUTH_DIR
    meta = json.loads((folder / "meta.json").read_text())
    return GroundTruth(
        tracks=pd.read_parquet(folder / "tracks.parquet"),
        users=pd.read_parquet(folder / "users.parquet"),
        user_genres=pd.read_parquet(folder / "user_genres.parquet"),
        user_artists=pd.read_parquet(folder / "user_artists.parquet"),
        n_genres=meta["n_genres"],
        n_artists=meta["n_artists"],
    )
