"""Offline replay of the online blend: reveal each user's first test listens as online events, score the rest.

For evaluated users with more than ``m`` test listens (in time order: day, then ``track_seq``), the
first ``m`` are handed to ``blend_for_user`` as online listens and the remaining test listens are the truth.
The three modes of ``blend_for_user`` (offline, online, blended) are scored on the same users with the
project's metric code, so the blend is compared with what each source alone would serve, and what is
scored is exactly what the service would answer after those ``m`` listens, with the bundle's blend.

The blend search (``search.py``) replays the tuning side of ``holdout.py``; the report replays the
other side only, so the users and listens it scores never shaped the settings it scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import headline
from ..arrays import positions_in_groups, segment_positions
from ..evaluation import EvaluationSet, build_evaluation_set, evaluate_recommendations
from ..io import Progress
from ..sequences import is_listening_order
from .blend import MODES, Heard, blend_for_user
from .blend_config import BlendConfig
from .bundle_reader import ServingBundle
from .holdout import HoldoutConfig, tuning_mask
from .ragged import RaggedTable

REPORTED = ("ndcg", "recall", "precision")


def listening_sequences(test: pd.DataFrame) -> RaggedTable:
    """Each test user's tracks in listening order (day, then the user's own sequence number).

    The split keeps the events' order, already this one on the data the pipeline runs on: a chunked check
    then skips the three-key sort (a stable sort of sorted rows is the identity)."""
    users, started, seqs = (test[column].to_numpy() for column in ("user_id", "started_at", "track_seq"))
    tracks = test["track_id"].to_numpy()
    if not is_listening_order(users, started.view(np.int64), seqs):
        order = np.lexsort((seqs, started, users))
        users, tracks = users[order], tracks[order]
    return RaggedTable.from_grouped(users, tracks)


def replay_users(sequences: RaggedTable, bundle: ServingBundle, reveal: int, max_users: int, seed: int,
                 cold: bool = False, allowed: np.ndarray | None = None) -> np.ndarray:
    """Users with more than ``reveal`` test listens and train history (without, if ``cold``); a seeded sample.

    ``allowed`` (a mask over ``sequences.keys``) limits the choice to one side of the holdout split.
    """
    lengths = np.diff(sequences.offsets)
    known = np.isin(sequences.keys, bundle.history.keys, assume_unique=True)
    chosen = (known != cold) & (lengths > reveal)
    users = sequences.keys[chosen if allowed is None else chosen & allowed]
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


@dataclass
class ReplayCase:
    """The users replayed at one ``m``: their revealed listens and the evaluation set of what is left to predict.

    Prepared once; every blend setting and mode is then scored on it (``score``), which is what lets the
    blend search try dozens of settings on the same users cheaply.
    """

    users: np.ndarray  # sorted int32
    online: list[np.ndarray]  # per user, the first ``reveal`` test listens, most recent first (as the store returns them)
    truth: list[np.ndarray]  # per user, the later test listens not heard before
    data: EvaluationSet
    k: int

    @classmethod
    def prepare(cls, bundle: ServingBundle, sequences: RaggedTable, users: np.ndarray, reveal: int, k: int) -> "ReplayCase":
        online, revealed, truth = [], [], []
        for user in users.tolist():
            listens, _ = sequences.row(user)
            online.append(listens[:reveal][::-1])
            revealed.append(listens[:reveal])
            later = listens[reveal:]  # what is left to predict: never a track already heard (none in this data)
            truth.append(later[~Heard.of(bundle, user, online[-1]).mask(later)])
        data = build_evaluation_set(_known_listens(bundle, users, revealed), _long_frame(users, truth))
        return cls(users, online, truth, data, k)

    def served(self, bundle: ServingBundle, config: BlendConfig, mode: str,
               progress: Progress | None = None) -> list[np.ndarray]:
        """The list ``blend_for_user`` serves each user after the revealed listens."""
        lists = []
        for done, (user, online) in enumerate(zip(self.users.tolist(), self.online), start=1):
            lists.append(blend_for_user(bundle, user, online, self.k, config, mode).track_ids)
            if progress and (done % 1000 == 0 or done == len(self.users)):
                progress(done, len(self.users))
        return lists

    def score(self, lists: list[np.ndarray]) -> dict[str, float]:
        """NDCG/recall/precision@k of one list per user (in ``users`` order)."""
        return _headline(evaluate_recommendations(_ranked_frame(self.users, lists), self.data, [self.k]), self.k)


def replay(bundle: ServingBundle, sequences: RaggedTable, users: np.ndarray, reveal: int, k: int,
           config: BlendConfig, modes: Sequence[str] = MODES,
           progress: Progress | None = None) -> dict[str, dict[str, float]]:
    """NDCG/recall/precision@k of every mode after revealing the first ``reveal`` test listens of ``users``."""
    case = ReplayCase.prepare(bundle, sequences, users, reveal, k)
    return {mode: case.score(case.served(bundle, config, mode, progress)) for mode in modes}


def _known_listens(bundle: ServingBundle, users: np.ndarray, revealed: list[np.ndarray]) -> pd.DataFrame:
    """Train history of ``users`` plus their revealed listens: what counts as already heard."""
    rows = np.array([bundle.history.row_index(user) for user in users.tolist()], dtype=np.int64)
    known = np.flatnonzero(rows >= 0)
    offsets = np.asarray(bundle.history.offsets)
    owner, position = segment_positions(offsets[rows[known]], offsets[rows[known] + 1])
    history = pd.DataFrame({"user_id": users[known][owner], "track_id": np.asarray(bundle.history.items)[position]})
    return pd.concat([history, _long_frame(users, revealed)], ignore_index=True)


def _long_frame(users: np.ndarray, per_user: Sequence[np.ndarray]) -> pd.DataFrame:
    lengths = np.array([len(tracks) for tracks in per_user], dtype=np.int64)
    tracks = np.concatenate(per_user) if len(per_user) else np.empty(0, dtype=np.int32)
    return pd.DataFrame({"user_id": np.repeat(users, lengths).astype(np.int32), "track_id": tracks.astype(np.int32)})


def _ranked_frame(users: np.ndarray, lists: list[np.ndarray]) -> pd.DataFrame:
    frame = _long_frame(users, lists)  # users are sorted, so each user's list is one run
    frame["rank"] = (positions_in_groups(frame["user_id"].to_numpy()) + 1).astype(np.int16)
    return frame


def _headline(scores: dict[str, float], k: int) -> dict[str, float]:
    return {f"{name}_at_{k}": scores[f"{name}_at_{k}"] for name in REPORTED}


def replay_report(bundle: ServingBundle, test: pd.DataFrame, reveals: Sequence[int], k: int, max_users: int,
                  seed: int, holdout: HoldoutConfig, progress: Progress | None = None) -> dict[str, dict]:
    """``{"reveal_<m>": {"users": n, "<mode>": {metric: value}}}`` for every ``m``, with the bundle's blend.

    Users with train history are the evaluated users; ``cold_reveal_<m>`` replays test users without
    any (their "offline" list is the popular chart), where online listens are all there is to go on.
    Only users off the tuning side of the holdout split are replayed.
    """
    sequences = listening_sequences(test)
    scored = ~tuning_mask(sequences.keys, holdout)
    report = {}
    for cold in (False, True):
        for reveal in sorted(reveals):
            users = replay_users(sequences, bundle, reveal, max_users, seed, cold=cold, allowed=scored)
            report[f"{'cold_' if cold else ''}reveal_{reveal}"] = {
                "users": int(len(users)), **replay(bundle, sequences, users, reveal, k, bundle.blend, MODES, progress)}
    return report


def replay_headline(report: dict[str, dict], k: int, reveal: int) -> dict[str, dict[str, float]]:
    """The declared replay metrics: NDCG@k of each mode at one ``m``, rounded like every headline.

    Rows read ``m3`` and ``cold_m3`` (users without history, where "offline" is the chart) with columns
    ``blended.ndcg@10``, ``offline.ndcg@10``, ``online.ndcg@10``; the other ``m`` values, recall,
    precision and user counts stay in the full report.
    """
    flat = {section: {f"{mode}_ndcg": modes[mode][f"ndcg_at_{k}"] for mode in MODES}
            for section, modes in report.items() if section.endswith(f"reveal_{reveal}")}
    rows = {section: section.replace("reveal_", "m") for section in flat}
    return headline.headline(flat, rows, {f"{mode}_ndcg": f"{mode}.ndcg@{k}" for mode in MODES})
