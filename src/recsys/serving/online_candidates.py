"""Online candidates: what to play next, given the user's latest online listens.

Each of the last ``recent_listens`` listens (``j = 0`` the latest) contributes, weighted by
``recency_decay ** j``:

* its **played-next** row (the `played_next` stage: what listeners played after this track within a
  day), scaled so the row's best track scores 1;
* its **similar** tracks (ALS cosine similarity) times ``similar_weight``;
* for a track without a played-next row (a new release, or a track nobody continued in train), its
  **catalog continuation** instead: the next ``ALBUM_NEXT`` tracks of its album in album order
  (ascending track id) scoring ``1 / d`` for the ``d``-th next, then its artist's most played tracks
  scoring ``0.5 / r`` for the ``r``-th; a track in both adds up.

A track reached from several listens or sources adds up; best first, ties by lower track id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .blend_config import BlendConfig

if TYPE_CHECKING:  # the reader imports the re-ranker, which imports this module
    from .bundle_reader import ServingBundle

ONLINE_SOURCES = ("played_next", "continuation", "similar")
PLAYED_NEXT, CONTINUATION, SIMILAR = range(len(ONLINE_SOURCES))
ALBUM_NEXT = 10  # an album's tracks after the one listened to, in album order
ARTIST_SHARE = 0.5  # an artist's most played track against the album's next one
_EMPTY = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64))


@dataclass(frozen=True)
class OnlineCandidates:
    """Online candidates best first: the summed score and what each source contributed to it."""

    tracks: np.ndarray  # int32
    score: np.ndarray  # float32, descending
    by_source: np.ndarray  # float32 (len(ONLINE_SOURCES), len(tracks)): played next, catalog continuation, similar

    def __len__(self) -> int:
        return len(self.tracks)

    def keep(self, mask: np.ndarray | slice) -> "OnlineCandidates":
        return OnlineCandidates(self.tracks[mask], self.score[mask], self.by_source[:, mask])


NO_ONLINE_CANDIDATES = OnlineCandidates(np.empty(0, np.int32), np.empty(0, np.float32),
                                        np.empty((len(ONLINE_SOURCES), 0), np.float32))


def online_candidates(bundle: ServingBundle, online_listens: np.ndarray, config: BlendConfig) -> OnlineCandidates:
    """Tracks to play after ``online_listens`` (most recent first), best first, ties by lower track id."""
    recent = online_listens[: config.recent_listens]
    if len(recent) == 0:
        return NO_ONLINE_CANDIDATES
    recency = config.recency_decay ** np.arange(len(recent))
    owner, items, scores = bundle.played_next.rows(recent)
    best = np.zeros(len(recent), dtype=np.float64)
    best[owner[::-1]] = scores[::-1]  # each row's first (best) score: the last write per owner wins
    parts = [(items, scores * (recency / np.where(best > 0, best, 1.0))[owner], PLAYED_NEXT)]
    for j in np.flatnonzero(np.bincount(owner, minlength=len(recent)) == 0).tolist():
        continuation, weights = catalog_continuation(bundle, int(recent[j]))
        parts.append((continuation, weights * recency[j], CONTINUATION))
    if config.similar_weight > 0:
        owner, items, similarity = bundle.similar.rows(recent)
        parts.append((items, similarity * (recency * config.similar_weight)[owner], SIMILAR))
    tracks, inverse = np.unique(np.concatenate([part[0] for part in parts]), return_inverse=True)
    weights = np.concatenate([part[1] for part in parts]).astype(np.float64)
    source = np.concatenate([np.full(len(part[0]), part[2], dtype=np.int64) for part in parts])
    by_source = np.bincount(source * len(tracks) + inverse, weights=weights,
                            minlength=len(ONLINE_SOURCES) * len(tracks)).reshape(len(ONLINE_SOURCES), len(tracks))
    score = by_source.sum(axis=0)
    order = np.lexsort((tracks, -score))
    return OnlineCandidates(tracks[order].astype(np.int32), score[order].astype(np.float32),
                            by_source[:, order].astype(np.float32))


def catalog_continuation(bundle: ServingBundle, track: int) -> tuple[np.ndarray, np.ndarray]:
    """The album's next tracks and the artist's most played ones for ``track`` (see the module doc)."""
    code = bundle.catalog.codes(np.array([track], dtype=np.int32))[0]
    if code < 0:
        return _EMPTY
    album_next = next_in_album(bundle, track, int(bundle.catalog.albums[code]), ALBUM_NEXT)
    artist_top, _ = bundle.artist_tracks.row(int(bundle.catalog.artists[code]))
    artist_top = artist_top[artist_top != track]
    items = np.concatenate([album_next, artist_top])
    scores = np.concatenate([1.0 / np.arange(1, len(album_next) + 1), ARTIST_SHARE / np.arange(1, len(artist_top) + 1)])
    return items, scores


def next_in_album(bundle: ServingBundle, track: int, album: int, count: int) -> np.ndarray:
    """Up to ``count`` tracks after ``track`` in the order of ``album`` (-1: none), the nearest first."""
    if album < 0:
        return _EMPTY[0]
    row, _ = bundle.album_tracks.row(album)
    after = int(np.searchsorted(row, track, side="right"))
    return row[after: after + count]
