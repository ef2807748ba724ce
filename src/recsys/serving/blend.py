"""One user's list: offline recommendations, online candidates from the latest listens, a blend, a backfill.

``blend_for_user`` is the only function that builds a served list. The service calls it per request and the
`replay` stage calls it per replayed user, so the replay metrics measure exactly what is served.

The rules, in order:

1. **Heard tracks never appear**: the user's train history (from the bundle) and every online listen
   are removed from all candidate lists before anything else.
2. **Offline candidates**: the user's final recommendations, best first. A user without them (cold)
   gets the popularity chart in their place, tagged ``popular``.
3. **Online candidates** (``online_candidates.py``): what listeners played next after the user's last
   ``recent_listens`` online listens, their similar tracks, and for a track nobody continued in train
   (a new release) its album's next tracks and its artist's most played ones, weighted by recency.
4. **Blend** (mode ``blended``), by ``strategy`` for users with offline recommendations and
   ``cold_strategy`` for users without (there the other list is the popular chart); the weight of
   the online list is ``online_weight`` and ``cold_online_weight`` respectively:

   * ``interleave``: the lists share the slots in the proportion ``online_weight : 1 - online_weight``.
     The ``j``-th item of a list sits at position ``(j + 0.5) / weight`` and the lists merge by
     position (online first on a tie): 0.5 alternates online, offline, online, ...
   * ``rrf``: weighted reciprocal-rank fusion, ``online_weight / (60 + online rank) +
     (1 - online_weight) / (60 + offline rank)``; a track in both lists gets both terms.

   * ``learned``: the bundle's re-ranker (``reranker.py``) scores the union of the offline list (for a
     cold user, the chart's first ``CHART_CANDIDATES``) and the best online candidates and orders them
     by that score; no weight.

   A track in both lists appears once, tagged with the list that placed it (``rrf``: the larger term;
   ``learned``: the offline list or chart).
   No candidate is dropped: with ``online_weight`` 0 (or 1) the other list comes first and this one
   follows it, still ahead of the popular backfill.

   The settings (``BlendConfig``) are not set by hand: the `serving` stage chooses them by replaying
   held-out users (``search.py``) and the bundle carries them (``bundle.blend``).
5. **Backfill**: the popularity order (every train track by distinct listeners) fills the list up to
   ``k``, so an answer has exactly ``k`` items whenever the catalog holds that many unheard tracks.

Without online listens (most requests) every strategy serves the offline list. Modes ``offline`` and
``online`` skip the blend and keep only that list (then the backfill): the
debugging views of the service and the two baselines of the replay evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..arrays import find_sorted
from .blend_config import BlendConfig
from .bundle_reader import ServingBundle
from .online_candidates import NO_ONLINE_CANDIDATES, OnlineCandidates, online_candidates
from .reranker import candidate_features

OFFLINE, ONLINE, POPULAR = 0, 1, 2
LIST_SOURCES = ("offline", "online", "popular")  # indexed by the codes above
MODES = ("blended", "offline", "online")
CHART_CANDIDATES = 30  # chart tracks the re-ranker weighs against the online candidates of a cold user
RRF_CONSTANT = 60  # the usual reciprocal-rank-fusion constant: damps the gap between the first ranks
_BACKFILL_CHUNK = 256


@dataclass(frozen=True)
class RankedList:
    """A served list: tracks best first, each with its own source's score and the source's code."""

    track_ids: np.ndarray  # int32
    scores: np.ndarray  # float32: ranker score (offline), online candidate score (online), listeners (popular)
    sources: np.ndarray  # int8 codes into LIST_SOURCES
    cold: bool  # the user has no offline recommendations


def blend_for_user(bundle: ServingBundle, user_id: int, online_listens: np.ndarray, k: int, config: BlendConfig,
              mode: str = "blended") -> RankedList:
    """The ``k`` tracks to serve ``user_id``, given their online listens (most recent first)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    found = candidate_lists(bundle, user_id, online_listens, k, config, mode)
    strategy, weight = found.strategy_and_weight(config)
    if mode == "offline" or (mode == "blended" and not len(found.online)):  # most requests: no online listens
        chosen = _first_occurrences(found.offline)
    elif mode == "blended" and strategy == "learned":
        chosen = learned_order(bundle, found)
    elif mode == "blended":
        chosen = blend(_tagged(found.online.tracks, found.online.score, ONLINE), found.offline, strategy, weight)
    else:
        chosen = _tagged(found.online.tracks, found.online.score, ONLINE)
    chosen = tuple(part[:k] for part in chosen)
    if len(chosen[0]) < k:
        extra = _popular_unheard(bundle, found.heard, chosen[0], k - len(chosen[0]))
        chosen = tuple(np.concatenate([a, b]) for a, b in zip(chosen, extra))
    track_ids, scores, sources = chosen
    return RankedList(track_ids.astype(np.int32), scores.astype(np.float32), sources.astype(np.int8), found.cold)


@dataclass(frozen=True)
class CandidateLists:
    """What a list is built from: the user's heard tracks, the offline list (the chart for a cold user) and
    the online candidates, both without heard tracks; a mode leaves out the list it does not use."""

    heard: "Heard"
    cold: bool
    offline: "Candidates"
    online: OnlineCandidates
    recent: np.ndarray  # the online listens the candidates came from, most recent first

    def strategy_and_weight(self, config: BlendConfig) -> tuple[str, float]:
        return (config.cold_strategy, config.cold_online_weight) if self.cold else (config.strategy, config.online_weight)


def candidate_lists(bundle: ServingBundle, user_id: int, online_listens: np.ndarray, k: int, config: BlendConfig,
                    mode: str = "blended") -> CandidateLists:
    """The candidate lists ``blend_for_user`` combines (and the blend search trains the re-ranker on)."""
    online_listens = np.asarray(online_listens, dtype=np.int32)
    heard = Heard.of(bundle, user_id, online_listens)
    offline_items, offline_scores = bundle.offline.row(user_id)
    cold = len(offline_items) == 0
    online = NO_ONLINE_CANDIDATES
    if mode in ("blended", "online"):
        online = online_candidates(bundle, online_listens, config)
        if len(online):
            online = online.keep(~heard.mask(online.tracks))
    offline = _tagged(offline_items[:0], offline_scores[:0], OFFLINE)
    if mode in ("blended", "offline"):
        if cold:  # the learned re-ranker gets a longer chart to choose from
            learned = mode == "blended" and config.cold_strategy == "learned" and len(online)
            offline = _popular_unheard(bundle, heard, np.empty(0, dtype=np.int32), max(k, CHART_CANDIDATES) if learned else k)
        else:
            offline = heard.drop(_tagged(offline_items, offline_scores, OFFLINE))
    return CandidateLists(heard, cold, offline, online, online_listens[: config.recent_listens])


def learned_order(bundle: ServingBundle, found: CandidateLists) -> "Candidates":
    """The union of both lists in the order of the bundle's re-ranker (ties by lower track id); a track in the
    offline list (the chart for a cold user) keeps that source, the rest are online."""
    tracks, in_offline, rows = candidate_features(bundle, found.offline[:2], found.online, found.recent, found.cold)
    score = bundle.reranker.score(rows)
    order = np.lexsort((tracks, -score))
    sources = np.where(in_offline, POPULAR if found.cold else OFFLINE, ONLINE).astype(np.int8)
    return tracks[order], score[order].astype(np.float32), sources[order]


Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]  # (track ids, scores, source codes), best first


def blend(online: Candidates, offline: Candidates, strategy: str, online_weight: float) -> Candidates:
    """Merge the two lists by ``strategy``, giving ``online_weight`` to the online one; every track once."""
    if strategy == "interleave":
        return _interleave(online, offline, online_weight)
    return _reciprocal_rank_fusion(online, offline, online_weight)


def _interleave(online: Candidates, offline: Candidates, weight: float) -> Candidates:
    positions = np.concatenate([_slot_positions(len(online[0]), weight), _slot_positions(len(offline[0]), 1.0 - weight)])
    tie = np.repeat([0, 1], [len(online[0]), len(offline[0])])
    order = np.lexsort((tie, positions))  # stable: a list with no share keeps its order after the other
    merged = tuple(np.concatenate([a, b])[order] for a, b in zip(online, offline))
    return _first_occurrences(merged)


def _slot_positions(length: int, weight: float) -> np.ndarray:
    """Where each item of a list sits when the list gets ``weight`` of the slots (inf: after the other list)."""
    if weight <= 0.0:
        return np.full(length, np.inf)
    return (np.arange(length) + 0.5) / weight


def _reciprocal_rank_fusion(online: Candidates, offline: Candidates, weight: float) -> Candidates:
    terms = np.concatenate([weight / (RRF_CONSTANT + np.arange(1, len(online[0]) + 1)),
                            (1.0 - weight) / (RRF_CONSTANT + np.arange(1, len(offline[0]) + 1))])
    items, scores, sources = (np.concatenate([a, b]) for a, b in zip(online, offline))
    tracks, inverse = np.unique(items, return_inverse=True)
    fused = np.bincount(inverse, weights=terms, minlength=len(tracks))
    dominant = np.lexsort((-terms, inverse))  # per track, its larger term first
    first = dominant[np.r_[True, inverse[dominant][1:] != inverse[dominant][:-1]]] if len(dominant) else dominant
    picked = first[np.lexsort((first, -fused))]  # equal fused scores (a list with no weight) keep list order
    return items[picked], scores[picked], sources[picked]


def _first_occurrences(candidates: Candidates) -> Candidates:
    """Keep each track's first (best) entry, in order."""
    _, first = np.unique(candidates[0], return_index=True)
    keep = np.sort(first)
    return tuple(part[keep] for part in candidates)


class Heard:
    """What the user has listened to: train history (sorted, from the bundle) and online listens.

    Served lists drop these tracks; the replay drops them from the truth it scores against.
    """

    @classmethod
    def of(cls, bundle: ServingBundle, user_id: int, online: np.ndarray) -> "Heard":
        return cls(bundle.history.row(user_id)[0], online)

    def __init__(self, history: np.ndarray, online: np.ndarray):
        self.history = history
        self.online = np.sort(online)  # binary search: np.isin costs more than the lookup on a few ids

    def mask(self, track_ids: np.ndarray) -> np.ndarray:
        in_history = find_sorted(self.history, track_ids) >= 0
        if len(self.online) == 0:  # most requests: each numpy call on a tiny array costs microseconds
            return in_history
        return (find_sorted(self.online, track_ids) >= 0) | in_history

    def drop(self, candidates: Candidates) -> Candidates:
        if len(candidates[0]) == 0:
            return candidates
        keep = ~self.mask(candidates[0])
        return tuple(part[keep] for part in candidates)


def _popular_unheard(bundle: ServingBundle, heard: Heard, taken: np.ndarray, count: int) -> Candidates:
    """The first ``count`` tracks of the popularity order that are neither heard nor ``taken``."""
    found: list[np.ndarray] = []
    need, start, size = count, 0, max(_BACKFILL_CHUNK, 4 * count)
    taken = np.sort(taken)
    while need > 0 and start < len(bundle.popular):
        chunk = np.asarray(bundle.popular[start:start + size])
        keep = np.flatnonzero(~heard.mask(chunk) & (find_sorted(taken, chunk) < 0))[:need] + start
        found.append(keep)
        need -= len(keep)
        start += size
        size *= 2  # a user who heard most of the chart is served in a few chunks, not thousands
    positions = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
    return _tagged(bundle.popular[positions], bundle.popular_listeners[positions], POPULAR)


def _tagged(track_ids: np.ndarray, scores: np.ndarray, source: int) -> Candidates:
    """A candidate list whose every entry comes from ``source``."""
    return (np.asarray(track_ids), np.asarray(scores, dtype=np.float32), np.full(len(track_ids), source, dtype=np.int8))
