"""Hand-made serving bundles: ``tiny_frames``, small enough to reason about by hand (the library and the
HTTP tests share it, and ``COURSE_CASES`` states the course's three cases on it once), and
``random_frames``, a seeded random catalog for the property tests.

The tiny bundle. Catalog: tracks 1..12 (track 12 has no name). Train history: user 100 heard 1, 2;
user 101 heard 3; user 102 heard 1. Popularity by distinct listeners: 1 (2 listeners), then 2 and 3
(1 each, lower id first); the `popular` stage's chart is [1, 2, 3], and unheard tracks follow by id.
Offline lists: user 100 -> 4, 5, 6; user 101 -> 7, 8. User 102 has history but no offline list; any
other user id is unknown (cold). Similar tracks: 1 -> 9 (0.9), 10 (0.5); 2 -> 10 (0.8), 11 (0.7); 4 -> 12 (0.6).
Played next: 2 -> 11 (0.6), 10 (0.3); 4 -> 12 (0.4). Album 500 holds 9, 10, 11 (album order) and artist
900 sings 9, 10, 11 and 1 (the only one with train listeners); the other tracks list no album or artist.
The default blend (``BlendConfig()``) applies unless a test passes another.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from src.recsys.serving.bundle_builder import build_bundle, save_bundle
from src.recsys.serving.bundle_reader import ServingBundle

TOP_POPULAR = [1, 2, 3]
UNNAMED = 12  # a catalog track without a name
NOT_LISTENED = 9  # in the catalog, never in train: writable, never in the chart
NO_SIMILAR = 3  # in the catalog, no similar tracks


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({name: np.asarray(values) for name, values in columns.items()})


def tiny_frames() -> dict[str, pd.DataFrame]:
    return {
        "recommendations": frame(user_id=np.array([100, 100, 100, 101, 101], np.int32),
                                 track_id=np.array([4, 5, 6, 7, 8], np.int32),
                                 score=np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32),
                                 rank=np.array([1, 2, 3, 1, 2], np.int16)),
        "similar": frame(track_id=np.array([1, 1, 2, 2, 4], np.int32),
                         similar_track_id=np.array([9, 10, 10, 11, 12], np.int32),
                         score=np.array([0.9, 0.5, 0.8, 0.7, 0.6], np.float32),
                         rank=np.array([1, 2, 1, 2, 1], np.int16)),
        "played_next": frame(track_id=np.array([2, 2, 4], np.int32), next_track_id=np.array([11, 10, 12], np.int32),
                             score=np.array([0.6, 0.3, 0.4], np.float32), rank=np.array([1, 2, 1], np.int16)),
        "top_popular": frame(track_id=np.array(TOP_POPULAR, np.int32)),
        "train": frame(user_id=np.array([100, 100, 101, 102, 100], np.int32),
                       track_id=np.array([1, 2, 3, 1, 1], np.int32)),  # (100, 1) repeats
        "items": pd.DataFrame({"track_id": np.arange(1, 13, dtype=np.int32),
                               "name": [f"Song {i}" for i in range(1, 12)] + [None],
                               "albums": [[]] * 8 + [[500], [500, 7], [500], []],
                               "artists": [[900]] + [[]] * 7 + [[900], [900], [900, 3], None]}),
    }


def save_and_open(bundle: ServingBundle, folder: Path) -> ServingBundle:
    """Save a bundle and reopen it (memory-mapped), as the service would see it."""
    folder.mkdir(parents=True, exist_ok=True)
    save_bundle(bundle, folder)
    return ServingBundle.open(folder)


def tiny_bundle(folder: Path | None = None) -> ServingBundle:
    """The tiny bundle built in memory, or saved to ``folder`` and memory-mapped back when one is given."""
    bundle = build_bundle(**tiny_frames())
    return bundle if folder is None else save_and_open(bundle, folder)


@dataclass(frozen=True)
class CourseCase:
    """A user, their online listens (oldest first) and the blended list they get (the service's default blend)."""

    user_id: int
    listens: tuple[int, ...]
    k: int
    tracks: list[int]
    sources: list[str]
    cold: bool


COURSE_CASES = {
    # no personal recommendations: the chart
    "cold": CourseCase(999, (), 3, TOP_POPULAR, ["popular"] * 3, True),
    # personal recommendations, no online listens: the offline list, then the chart minus train history (1, 2)
    "offline only": CourseCase(100, (), 4, [4, 5, 6, 3], ["offline"] * 3 + ["popular"], False),
    # both: after the latest listen 4, 12 (played next 1, similar 0.6 x 0.5); after 2 at half weight,
    # 11 (played next 1 x 0.5, similar 0.7 x 0.25) and 10 (0.5 x 0.5, 0.8 x 0.25); interleaved with 7, 8
    "offline and online": CourseCase(101, (2, 4), 4, [12, 7, 11, 8], ["online", "offline"] * 2, False),
}


def random_frames(seed: int, n_users: int = 60, n_tracks: int = 150,
                  list_lengths: tuple[int, int] = (1, 25)) -> dict[str, pd.DataFrame]:
    """A random catalog where every track is listened to by someone; half the users have personal lists
    (of ``list_lengths`` tracks, low included, high excluded)."""
    rng = np.random.default_rng(seed)
    tracks = np.arange(1000, 1000 + n_tracks)
    train_users = np.concatenate([np.arange(n_users).repeat(12), np.full(n_tracks, n_users)])
    train_tracks = np.concatenate([rng.choice(tracks, size=n_users * 12), tracks])
    recommended = {user: rng.choice(tracks, size=int(rng.integers(*list_lengths)), replace=False).tolist()
                   for user in range(0, n_users, 2)}
    similar = {int(track): rng.choice(tracks, size=int(rng.integers(1, 8)), replace=False).tolist()
               for track in tracks[: n_tracks // 2]}
    played_next = {int(track): rng.choice(tracks, size=int(rng.integers(1, 8)), replace=False).tolist()
                   for track in tracks[n_tracks // 4: 3 * n_tracks // 4]}
    return {
        "recommendations": _ranked(recommended, "user_id", "track_id"),
        "similar": _ranked(similar, "track_id", "similar_track_id"),
        "played_next": _ranked(played_next, "track_id", "next_track_id"),
        "top_popular": pd.DataFrame({"track_id": rng.choice(tracks, size=20, replace=False)}),
        "train": pd.DataFrame({"user_id": train_users, "track_id": train_tracks}),
        "items": pd.DataFrame({"track_id": tracks, "name": [f"Song {t}" if t % 5 else None for t in tracks],
                               "albums": [[int(t) // 4] for t in tracks], "artists": [[int(t) // 10] for t in tracks]}),
    }


def _ranked(rows: dict[int, list[int]], key: str, item: str) -> pd.DataFrame:
    keys, items, scores, ranks = [], [], [], []
    for owner, tracks in rows.items():
        for rank, track in enumerate(tracks, 1):
            keys.append(owner), items.append(track), scores.append(1.0 / rank), ranks.append(rank)
    return pd.DataFrame({key: keys, item: items, "score": np.array(scores, dtype=np.float32), "rank": ranks})
