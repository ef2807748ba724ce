"""Synthetic users and their listening sessions, drawn from the ``preferences`` model.

A user listens in sessions. Each session has a day (from the day density between the user's join
and leave days), a length (geometric, mean ``generate.sessions.mean_length``) and a thread, seeded
from the user's channel in ``preferences``:

* genre: independent weighted draws within one genre of the user's drifting taste;
* artist: weighted draws within one favourite artist (their best-known tracks);
* album (share ``album_share`` of artist-channel sessions): a start track of a favourite artist
  drawn by weight, then the artist's discography in album order from it (``Discographies``);
* chart: weighted draws over all tracks;
* new releases (share ``new_release_share`` of popular-channel sessions): weighted draws among the
  tracks released in the last ``new_release_days`` days (the chart when there are none).

A share ``continue_share`` of sessions continue the user's previous session's thread (same genre,
artist or chart; an album resumes where the previous session stopped), on the same day with
probability ``CONTINUE_SAME_DAY``, else on their own later day. Within a user, listens are ordered
by day, session and position in the session.

The seeds of the threads follow the ``preferences`` model, so the ground truth (and the oracle built
on it) still gives the user's taste P(track | user, day); it does not model the order within
sessions, which the generated files now carry on top of it.

Everything is vectorised per chunk of users: sessions are drawn in rounds (slightly oversampled),
repeated (user, track) pairs are dropped keeping the first listen, and users with too many listens
lose whole sessions in random order down to ``n_events``, so every row is a first listen, as in the
real file.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np
import pandas as pd

from ..arrays import positions_in_groups
from ..config import Config, integer, number, param
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
CONTINUE_SAME_DAY = 0.5  # a continuing session is played on the previous session's day with this chance
GENRE, ARTIST, ALBUM, CHART, NEW = range(5)  # session threads


@dataclasses.dataclass(frozen=True)
class SessionConfig(Config):
    """How listens group into sessions; ``mean_length`` 1 with ``continue_share`` 0 gives independent listens."""

    mean_length: float = param("generate.sessions.mean_length", number(1.0))
    continue_share: float = param("generate.sessions.continue_share", number(0.0, 1.0, high_open=True))
    album_share: float = param("generate.sessions.album_share", number(0.0, 1.0))
    new_release_share: float = param("generate.sessions.new_release_share", number(0.0, 1.0))
    new_release_days: int = param("generate.sessions.new_release_days", integer(1, DAYS_IN_YEAR))


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
        self.first_release = self._released_tail(self.release_day)
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

    @staticmethod
    def _released_tail(release_day: np.ndarray) -> int:
        """Start of the 2022 releases, which the catalog keeps sorted by day at the end of the table."""
        first = len(release_day) - int((release_day >= 0).sum())
        tail = release_day[first:]
        if (tail < 0).any() or (np.diff(tail) < 0).any():
            raise ValueError("catalog tracks released in 2022 must sit at the end of the table, sorted by release day")
        return first

    def new_releases(self, rng: np.random.Generator, day: np.ndarray, window_days: int) -> np.ndarray:
        """A track released in the ``window_days`` days up to each ``day``, by weight; the charts if none."""
        tail = self.release_day[self.first_release:]
        start = self.first_release + np.searchsorted(tail, day - window_days + 1, side="left")
        end = self.first_release + np.searchsorted(tail, day, side="right")
        chosen, ok = sample_within_segments(rng, self.global_cumulative, start, end)
        missing = ~ok
        chosen[missing] = self.popular(rng, int(missing.sum()))
        return chosen

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


def draw_days(rng: np.random.Generator, tastes: ChunkTastes, user: np.ndarray) -> np.ndarray:
    """A day per entry of ``user`` from the day density, between the user's join and leave days."""
    cdf = np.cumsum(day_density())
    join, leave = tastes.join_day[user], tastes.leave_day[user]
    low = np.where(join > 0, cdf[np.maximum(join - 1, 0)], 0.0)
    high = cdf[leave]
    return np.searchsorted(cdf, low + rng.random(len(user)) * (high - low), side="right").clip(join, leave)


@dataclass
class Sessions:
    """One round of sessions of a chunk, sorted by user and then in time (index order = listening order)."""

    user: np.ndarray  # chunk-local user index
    day: np.ndarray
    length: np.ndarray  # planned listens; an album thread may stop earlier at the end of the discography
    thread: np.ndarray  # GENRE, ARTIST, ALBUM, CHART or NEW
    group: np.ndarray  # genre_idx of a GENRE thread, artist_idx of an ARTIST or ALBUM thread
    root: np.ndarray  # the session that started the thread (itself unless it continues the previous one)
    offset: np.ndarray  # listens played in the thread before this session: where an album thread resumes


def pick_threads(rng: np.random.Generator, tastes: ChunkTastes, user: np.ndarray, day: np.ndarray,
                 cfg: SessionConfig) -> tuple[np.ndarray, np.ndarray]:
    """(thread, group) of fresh sessions: the user's channel, then the thread within it."""
    n = len(user)
    channel = pick_slot(rng, tastes.channels[user])
    share = (day / (DAYS_IN_YEAR - 1))[:, None]
    taste = (1.0 - share) * tastes.genre_start[user] + share * tastes.genre_end[user]
    genre = tastes.genre[user, pick_slot(rng, taste)]
    artist = tastes.artist[user, pick_slot(rng, tastes.artist_weight[user])]
    variant = rng.random(n)
    thread = np.array([GENRE, ARTIST, CHART], dtype=np.int8)[channel]
    thread[(channel == 1) & (variant < cfg.album_share)] = ALBUM
    thread[(channel == 2) & (variant < cfg.new_release_share)] = NEW
    return thread, np.where(channel == 0, genre, artist).astype(np.int64)


def last_index_where(flag: np.ndarray) -> np.ndarray:
    """For each position, the latest position at or before it where ``flag`` is True (flag[0] must be True)."""
    return np.maximum.accumulate(np.where(flag, np.arange(len(flag)), 0))


def draw_sessions(rng: np.random.Generator, tastes: ChunkTastes, user: np.ndarray, cfg: SessionConfig) -> Sessions:
    """Sessions for the entries of ``user`` (sorted chunk-local indices), continuations resolved.

    A continuing session takes the thread of the user's previous session; chains resolve at once
    because every continuation points back to the latest session that started a thread.
    """
    n = len(user)
    own_day = draw_days(rng, tastes, user)
    order = np.argsort(user * DAYS_IN_YEAR + own_day, kind="stable")  # draws are iid: ties stay in random order
    user, own_day = user[order], own_day[order]
    length = rng.geometric(1.0 / cfg.mean_length, n).astype(np.int64)
    thread, group = pick_threads(rng, tastes, user, own_day, cfg)

    first_of_user = np.ones(n, dtype=bool)
    first_of_user[1:] = user[1:] != user[:-1]
    continues = (rng.random(n) < cfg.continue_share) & ~first_of_user
    root = last_index_where(~continues)
    played_before = np.cumsum(length) - length
    # a continuation is played on the previous session's day (CONTINUE_SAME_DAY) or on its own, later day;
    # days stay in index order because own days are sorted and a same-day session copies an earlier one
    same_day = continues & (rng.random(n) < CONTINUE_SAME_DAY)
    day = own_day[last_index_where(~same_day)]
    return Sessions(user=user, day=day, length=length, thread=thread[root], group=group[root], root=root,
                    offset=played_before - played_before[root])


class Discographies:
    """Each artist's tracks in album order: by album, then by track id within the album."""

    def __init__(self, catalog: Catalog):
        tracks = catalog.tracks
        artist = tracks["artist_idx"].to_numpy()
        self.order = np.lexsort((tracks["track_id"].to_numpy(), tracks["album_idx"].to_numpy(), artist))
        self.rank = np.empty(len(tracks), dtype=np.int64)
        self.rank[self.order] = np.arange(len(tracks))
        self.end = np.searchsorted(artist[self.order], artist, side="right")  # per track: its artist's last rank + 1

    def play(self, start_track: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The track ``steps`` after ``start_track`` in its artist's discography; -1 past the end."""
        rank = self.rank[start_track] + steps
        inside = rank < self.end[start_track]
        return np.where(inside, self.order[np.where(inside, rank, 0)], -1)


def period_segments(period: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(period, indices of the entries in it) for every period present, sorting once."""
    order = np.argsort(period, kind="stable")
    present, starts = np.unique(period[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for current, start, end in zip(present, starts, ends):
        yield int(current), order[start:end]


def session_listens(rng: np.random.Generator, sessions: Sessions, sampler: "TrackSampler",
                    discographies: Discographies, cfg: SessionConfig) -> tuple[np.ndarray, ...]:
    """(session, position, day, track) of every listen the sessions play, in listening order.

    Weighted draws are made week by week (the weights change weekly); album threads draw only their
    start track, in the week their first session is played, and then follow the discography.
    """
    n_sessions = len(sessions.user)
    session = np.repeat(np.arange(n_sessions), sessions.length)
    played_before = np.cumsum(sessions.length) - sessions.length
    position = np.arange(len(session)) - played_before[session]
    day = sessions.day[session]
    thread, group = sessions.thread[session], sessions.group[session]
    track = np.full(len(session), -1, dtype=np.int64)
    start_track = np.zeros(n_sessions, dtype=np.int64)
    album_root = np.flatnonzero((sessions.thread == ALBUM) & (sessions.root == np.arange(n_sessions)))
    root_period = sessions.day[album_root] // PERIOD_DAYS
    for current, here in period_segments(day // PERIOD_DAYS):
        sampler.set_period(current)
        roots = album_root[root_period == current]
        start_track[roots] = sampler.within(rng, "artist_idx", sessions.group[roots])
        kind = thread[here]
        for code, column in ((GENRE, "genre_idx"), (ARTIST, "artist_idx")):
            chosen = here[kind == code]
            track[chosen] = sampler.within(rng, column, group[chosen])
        chosen = here[kind == CHART]
        track[chosen] = sampler.popular(rng, len(chosen))
        chosen = here[kind == NEW]
        track[chosen] = sampler.new_releases(rng, day[chosen], cfg.new_release_days)

    album = np.flatnonzero(thread == ALBUM)
    in_album = session[album]
    track[album] = discographies.play(start_track[sessions.root[in_album]], sessions.offset[in_album] + position[album])
    played = track >= 0
    played[album] &= sampler.release_day[np.maximum(track[album], 0)] <= day[album]  # not yet released: stop
    session, position, day, track = session[played], position[played], day[played], track[played]
    # a listen cannot precede the release; weekly weights may place one a few days early
    return session, position, np.maximum(day, sampler.release_day[track]), track


def ordered(keys: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """Order of the rows sorted by ``keys`` (most significant first, each in [0, size)): one int64 key when it fits."""
    if np.prod([float(s) for s in sizes]) < 2.0 ** 62:
        combined = np.zeros(len(keys[0]), dtype=np.int64)
        for key, size in zip(keys, sizes):
            combined = combined * size + key
        return np.argsort(combined)
    return np.lexsort(keys[::-1])


@dataclass
class ChunkListens:
    """Kept listens of one chunk in listening order, with the keys that order and trim them."""

    user: np.ndarray
    day: np.ndarray
    track: np.ndarray
    serial: np.ndarray  # drawing sequence: listening order within a day (sessions are drawn in time order)
    trim_key: np.ndarray  # the session's random rank, rounds in order: whole sessions are kept in this order
    position: np.ndarray  # within the session

    def take(self, rows: np.ndarray) -> "ChunkListens":
        return ChunkListens(*(getattr(self, f.name)[rows] for f in fields(self)))

    @staticmethod
    def concat(parts: list["ChunkListens"]) -> "ChunkListens":
        return ChunkListens(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ChunkListens)))


def first_listens(listens: ChunkListens, wanted: np.ndarray, n_tracks: int) -> ChunkListens:
    """Chronologically first listen of each (user, track), then each user's first ``wanted`` in trim order."""
    n_users = len(wanted)
    serials = int(listens.serial.max()) + 1 if len(listens.serial) else 1
    listens = listens.take(ordered([listens.user, listens.day, listens.serial], [n_users, DAYS_IN_YEAR, serials]))
    first = np.sort(np.unique(listens.user * n_tracks + listens.track, return_index=True)[1])
    listens = listens.take(first)
    trim_keys = int(listens.trim_key.max()) + 1 if len(first) else 1
    positions = int(listens.position.max()) + 1 if len(first) else 1
    trim_order = ordered([listens.user, listens.trim_key, listens.position], [n_users, trim_keys, positions])
    keep = np.empty(len(first), dtype=bool)
    keep[trim_order] = positions_in_groups(listens.user[trim_order]) < wanted[listens.user[trim_order]]
    return listens.take(np.flatnonzero(keep))


def chunk_events(rng: np.random.Generator, users: Users, rows: slice, sampler: "TrackSampler",
                 discographies: Discographies, cfg: SessionConfig) -> pd.DataFrame:
    """Listening events of one chunk of users, sorted by user and time, with track_seq.

    Sessions are drawn in rounds: repeated (user, track) pairs are dropped and users still short of
    their count draw more sessions, so heavy users reach their size. Users with too many listens lose
    whole sessions in random order, so the trimming does not favour any part of the year.
    """
    table = users.table.iloc[rows]
    n_users = len(table)
    tastes = ChunkTastes.of(users, rows)
    wanted = table["n_events"].to_numpy()
    kept = ChunkListens(*(np.empty(0, dtype=np.int64) for _ in fields(ChunkListens)))
    missing = wanted.copy()
    serial_base = trim_base = 0
    for _ in range(MAX_ROUNDS):
        n_sessions = np.ceil(missing * OVERSAMPLE / cfg.mean_length).astype(np.int64) + (missing > 0)
        sessions = draw_sessions(rng, tastes, np.repeat(np.arange(n_users), n_sessions), cfg)
        session, position, day, track = session_listens(rng, sessions, sampler, discographies, cfg)
        trim_rank = rng.permutation(len(sessions.user)) + trim_base
        new = ChunkListens(user=sessions.user[session], day=day, track=track,
                           serial=serial_base + np.arange(len(session)), trim_key=trim_rank[session],
                           position=position)
        serial_base += len(session)
        trim_base += len(sessions.user)
        kept = first_listens(ChunkListens.concat([kept, new]), wanted, len(sampler.tracks))
        missing = wanted - np.bincount(kept.user, minlength=n_users)
        if not missing.any():
            break

    return pd.DataFrame({
        "user_id": table["user_id"].to_numpy()[kept.user].astype(np.int32),
        "track_id": sampler.tracks["track_id"].to_numpy()[kept.track].astype(np.int32),
        "track_seq": (positions_in_groups(kept.user) + 1).astype(np.int16),
        "started_at": (YEAR_START + kept.day.astype("timedelta64[D]")).astype("datetime64[ns]"),
    })

def iter_events(rng: np.random.Generator, users: Users, catalog: Catalog, chunk_users: int,
                cfg: SessionConfig) -> Iterator[pd.DataFrame]:
    sampler = TrackSampler(catalog)
    discographies = Discographies(catalog)
    for begin in range(0, len(users.table), chunk_users):
        rows = slice(begin, min(begin + chunk_users, len(users.table)))
        yield chunk_events(rng, users, rows, sampler, discographies, cfg)
