"""Synthetic users and their listening events, drawn from the ``preferences`` model.

Everything is vectorised per chunk of users: draws are made with replacement
(slightly oversampled), repeated (user, track) pairs are dropped, and each user
keeps their first ``n_events`` distinct tracks, so every row is a first listen,
as in the real file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from ..arrays import positions_in_groups
from .catalog import Catalog
from .preferences import DAYS_IN_YEAR, YEAR_START, track_weights

REAL_USERS = 1_370_000
GENRE_SLOTS = 4  # genres a user likes at the start of the year
NEW_GENRE_SLOTS = 2  # genres the taste drifts towards by the end of the year
ARTIST_SLOTS = 6
OVERSAMPLE = 1.3  # extra draws to make up for repeated (user, track) pairs
PERIOD_DAYS = 7  # track weights are refreshed weekly
MAX_EVENTS = 16_637
MAX_CATALOG_SHARE = 0.1  # at small scales a user never needs more than this share of all tracks
MAX_ROUNDS = 6
EXISTING_USERS = 0.1  # share of users active from January; the rest join during the year
CHURN_SHARE = 0.45  # users who stop listening at a random day after joining


@dataclass
class Users:
    table: pd.DataFrame  # user_id, n_events, join_day, p_genre, p_artist, p_popular
    genres: pd.DataFrame  # user_id, genre_idx, weight_start, weight_end
    artists: pd.DataFrame  # user_id, artist_idx, weight


def day_density() -> np.ndarray:
    """Relative activity per day: steady growth through the year, a weekend dip, a fading December."""
    day = np.arange(DAYS_IN_YEAR)
    weekday = (day + 5) % 7  # 2022-01-01 was a Saturday
    density = np.exp(0.004 * day) * np.where(weekday >= 5, 0.8, 1.0)
    december = day >= 334
    density[december] *= np.linspace(0.85, 0.55, december.sum())
    return density / density.sum()


def dirichlet(rng: np.random.Generator, alpha: float, shape: tuple[int, int]) -> np.ndarray:
    draws = rng.gamma(alpha, 1.0, shape)
    return draws / draws.sum(axis=1, keepdims=True)


def sample_within_segments(
    rng: np.random.Generator, cumulative: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted draw of one position in [start, end) per request, given global cumulative weights.

    Returns (positions, ok); ok is False where the segment has no weight.
    """
    before = np.where(start > 0, cumulative[np.maximum(start - 1, 0)], 0.0)
    total = cumulative[np.maximum(end - 1, 0)] - before
    ok = (end > start) & (total > 0)
    target = before + rng.random(len(start)) * total
    position = np.searchsorted(cumulative, target, side="right")
    # an empty segment may sit past the end of the array: keep its (unused) position in bounds
    return np.minimum(np.clip(position, start, np.maximum(end - 1, start)), len(cumulative) - 1), ok


def build_users(rng: np.random.Generator, catalog: Catalog, scale: float) -> Users:
    n_users = max(int(REAL_USERS * scale), 100)
    user_ids = np.sort(rng.choice(int(n_users * 1.004), n_users, replace=False)).astype(np.int32)
    cap = min(MAX_EVENTS, int(MAX_CATALOG_SHARE * len(catalog.tracks)))
    n_events = np.clip(np.round(rng.lognormal(4.0, 1.4, n_users)), 8, cap).astype(np.int64)
    tiny = rng.choice(n_users, max(1, n_users // 500), replace=False)
    n_events[tiny] = rng.integers(1, 4, len(tiny))  # users with 3 or fewer events, dropped by cleaning
    # newcomers arrive at the growing daily rate, so monthly volume grows ~14x over the year as in the real data
    arrival = np.searchsorted(np.cumsum(day_density()), rng.random(n_users) * 0.97, side="right")
    join_day = np.where(rng.random(n_users) < EXISTING_USERS, 0, arrival)
    churned = rng.random(n_users) < CHURN_SHARE
    leave_day = np.where(churned, rng.integers(join_day, DAYS_IN_YEAR), DAYS_IN_YEAR - 1)

    tracks = catalog.tracks
    genre_weight = np.bincount(tracks["genre_idx"], weights=tracks["base_weight"], minlength=len(catalog.genre_ids))
    genre_p = genre_weight / genre_weight.sum()
    slots = GENRE_SLOTS + NEW_GENRE_SLOTS
    genre_idx = rng.choice(len(genre_p), (n_users, slots), p=genre_p)
    start = np.zeros((n_users, slots))
    start[:, :GENRE_SLOTS] = dirichlet(rng, 0.6, (n_users, GENRE_SLOTS))
    end = 0.6 * start
    end[:, GENRE_SLOTS:] = 0.4 * dirichlet(rng, 0.8, (n_users, NEW_GENRE_SLOTS))

    # favourite artists: drawn from the user's starting genres, in proportion to artist weight
    artist_weight = np.bincount(tracks["artist_idx"], weights=tracks["base_weight"], minlength=len(catalog.artist_ids))
    artist_genre = np.full(len(catalog.artist_ids), -1)
    artist_genre[tracks["artist_idx"]] = tracks["genre_idx"]
    by_genre = np.lexsort((np.arange(len(artist_genre)), artist_genre))
    sorted_genre = artist_genre[by_genre]
    cumulative = np.cumsum(artist_weight[by_genre])
    slot = (rng.random((n_users, ARTIST_SLOTS, 1)) > np.cumsum(start[:, :GENRE_SLOTS], axis=1)[:, None, :]).sum(axis=2)
    wanted = np.take_along_axis(genre_idx, np.minimum(slot, GENRE_SLOTS - 1), axis=1).ravel()
    position, ok = sample_within_segments(
        rng, cumulative, np.searchsorted(sorted_genre, wanted, "left"), np.searchsorted(sorted_genre, wanted, "right")
    )
    fav = np.where(ok, by_genre[position], rng.integers(0, len(artist_genre), len(wanted)))

    p_artist = rng.beta(2.0, 4.0, n_users)
    p_popular = rng.beta(1.0, 12.0, n_users)
    table = pd.DataFrame({
        "user_id": user_ids, "n_events": n_events,
        "join_day": join_day.astype(np.int32), "leave_day": leave_day.astype(np.int32),
        "p_genre": 1.0 - p_artist - p_popular, "p_artist": p_artist, "p_popular": p_popular,
    })
    genres = pd.DataFrame({
        "user_id": np.repeat(user_ids, slots), "genre_idx": genre_idx.ravel().astype(np.int32),
        "weight_start": start.ravel(), "weight_end": end.ravel(),
    })
    artists = pd.DataFrame({
        "user_id": np.repeat(user_ids, ARTIST_SLOTS), "artist_idx": fav.astype(np.int32),
        "weight": dirichlet(rng, 0.5, (n_users, ARTIST_SLOTS)).ravel(),
    })
    return Users(table=table, genres=genres, artists=artists)


class TrackSampler:
    """Draws tracks for (period, channel, group) requests from weekly cumulative weights."""

    def __init__(self, catalog: Catalog):
        tracks = catalog.tracks
        self.tracks = tracks
        self.release_day = tracks["release_day"].to_numpy()
        self.orders = {}
        self.bounds = {}
        for column in ("genre_idx", "artist_idx"):
            key = tracks[column].to_numpy()
            order = np.argsort(key, kind="stable")
            self.orders[column] = order
            self.bounds[column] = key[order]
        self.period = -1

    def set_period(self, period: int) -> None:
        weights = track_weights(self.tracks, period * PERIOD_DAYS + PERIOD_DAYS // 2)
        self.cumulative = {column: np.cumsum(weights[order]) for column, order in self.orders.items()}
        self.global_cumulative = np.cumsum(weights)
        self.period = period

    def popular(self, rng: np.random.Generator, count: int) -> np.ndarray:
        target = rng.random(count) * self.global_cumulative[-1]
        return np.searchsorted(self.global_cumulative, target, side="right").clip(0, len(self.tracks) - 1)

    def within(self, rng: np.random.Generator, column: str, groups: np.ndarray) -> np.ndarray:
        """A track of each requested group; groups with no released track fall back to the charts."""
        keys = self.bounds[column]
        position, ok = sample_within_segments(
            rng, self.cumulative[column], np.searchsorted(keys, groups, "left"), np.searchsorted(keys, groups, "right")
        )
        chosen = self.orders[column][position]
        missing = ~ok
        chosen[missing] = self.popular(rng, int(missing.sum()))
        return chosen


def pick_slot(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Index of a weighted choice per row of ``weights`` (rows need not be normalised)."""
    cumulative = np.cumsum(weights, axis=1)
    target = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative < target[:, None]).sum(axis=1), weights.shape[1] - 1)


@dataclass
class ChunkTastes:
    """Per-user taste arrays of one chunk, laid out (users, slots) for fancy indexing."""

    channels: np.ndarray
    join_day: np.ndarray
    leave_day: np.ndarray
    genre: np.ndarray
    genre_start: np.ndarray
    genre_end: np.ndarray
    artist: np.ndarray
    artist_weight: np.ndarray

    @classmethod
    def of(cls, users: Users, rows: slice) -> "ChunkTastes":
        table = users.table.iloc[rows]
        n_users = len(table)
        slots = GENRE_SLOTS + NEW_GENRE_SLOTS
        genres = users.genres.iloc[rows.start * slots: rows.stop * slots]
        artists = users.artists.iloc[rows.start * ARTIST_SLOTS: rows.stop * ARTIST_SLOTS]
        return cls(
            channels=table[["p_genre", "p_artist", "p_popular"]].to_numpy(),
            join_day=table["join_day"].to_numpy(),
            leave_day=table["leave_day"].to_numpy(),
            genre=genres["genre_idx"].to_numpy().reshape(n_users, slots),
            genre_start=genres["weight_start"].to_numpy().reshape(n_users, slots),
            genre_end=genres["weight_end"].to_numpy().reshape(n_users, slots),
            artist=artists["artist_idx"].to_numpy().reshape(n_users, ARTIST_SLOTS),
            artist_weight=artists["weight"].to_numpy().reshape(n_users, ARTIST_SLOTS),
        )


def draw_listens(
    rng: np.random.Generator, tastes: ChunkTastes, user: np.ndarray, sampler: "TrackSampler"
) -> tuple[np.ndarray, np.ndarray]:
    """One (day, track) draw per entry of ``user`` (chunk-local user indices), with replacement."""
    n = len(user)
    cdf = np.cumsum(day_density())
    join = tastes.join_day[user]
    low = np.where(join > 0, cdf[np.maximum(join - 1, 0)], 0.0)
    high = cdf[tastes.leave_day[user]]
    day = np.searchsorted(cdf, low + rng.random(n) * (high - low), side="right").clip(join, tastes.leave_day[user])

    channel = pick_slot(rng, tastes.channels[user])
    share = (day / (DAYS_IN_YEAR - 1))[:, None]
    taste = (1.0 - share) * tastes.genre_start[user] + share * tastes.genre_end[user]
    genre = tastes.genre[user, pick_slot(rng, taste)]
    artist = tastes.artist[user, pick_slot(rng, tastes.artist_weight[user])]

    track = np.empty(n, dtype=np.int64)
    period = day // PERIOD_DAYS
    for current in np.unique(period):
        sampler.set_period(int(current))
        here = period == current
        for code, column, groups in ((0, "genre_idx", genre), (1, "artist_idx", artist)):
            mask = here & (channel == code)
            track[mask] = sampler.within(rng, column, groups[mask])
        mask = here & (channel == 2)
        track[mask] = sampler.popular(rng, int(mask.sum()))
    # a listen cannot precede the release; weekly weights may place one a few days early
    return np.maximum(day, sampler.release_day[track]), track


def chunk_events(rng: np.random.Generator, users: Users, rows: slice, sampler: "TrackSampler") -> pd.DataFrame:
    """Listening events of one chunk of users, sorted by user and time, with track_seq.

    Draws are made in rounds: repeated (user, track) pairs are dropped and users
    still short of their count draw again, so heavy users reach their size.
    """
    table = users.table.iloc[rows]
    n_users = len(table)
    tastes = ChunkTastes.of(users, rows)
    wanted = table["n_events"].to_numpy()
    user = np.empty(0, dtype=np.int64)
    track = np.empty(0, dtype=np.int64)
    day = np.empty(0, dtype=np.int64)
    missing = wanted.copy()
    for _ in range(MAX_ROUNDS):
        new_user = np.repeat(np.arange(n_users), np.ceil(missing * OVERSAMPLE).astype(np.int64) + (missing > 0) * 2)
        new_day, new_track = draw_listens(rng, tastes, new_user, sampler)
        user = np.concatenate([user, new_user])
        track = np.concatenate([track, new_track])
        day = np.concatenate([day, new_day])
        first = np.sort(np.unique(user * len(sampler.tracks) + track, return_index=True)[1])
        by_user = np.argsort(user[first], kind="stable")  # keep draw order within each user
        first = first[by_user]
        user, track, day = user[first], track[first], day[first]
        rank = positions_in_groups(user)
        keep = rank < wanted[user]
        user, track, day = user[keep], track[keep], day[keep]
        missing = wanted - np.bincount(user, minlength=n_users)
        if not missing.any():
            break

    order = np.lexsort((rng.random(len(user)), day, user))
    user, track, day = user[order], track[order], day[order]
    seq = positions_in_groups(user) + 1
    return pd.DataFrame({
        "user_id": table["user_id"].to_numpy()[user].astype(np.int32),
        "track_id": sampler.tracks["track_id"].to_numpy()[track].astype(np.int32),
        "track_seq": seq.astype(np.int16),
        "started_at": (YEAR_START + day.astype("timedelta64[D]")).astype("datetime64[ns]"),
    })


def iter_events(rng: np.random.Generator, users: Users, catalog: Catalog, chunk_users: int) -> Iterator[pd.DataFrame]:
    sampler = TrackSampler(catalog)
    for begin in range(0, len(users.table), chunk_users):
        yield chunk_events(rng, users, slice(begin, min(begin + chunk_users, len(users.table))), sampler)
