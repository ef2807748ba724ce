"""Offline replay of the online blend: reveal each user's first test listens as online events, score the rest.

For evaluated users with more than ``m`` test listens (in time order: day, then ``track_seq``), the
first ``m`` are handed to ``recommend`` as online listens and the remaining test listens are the truth.
The three modes of ``recommend`` (offline, online, blended) are scored on the same users with the
project's metric code, so the blend is compared with what each source alone would serve, and what is
scored is exactly what the service would answer after those ``m`` listens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import headline
from ..arrays import positions_in_groups, segment_positions
from ..config import Config, increasing_integers, integer, param, section
from ..evaluation import build_evaluation_set, evaluate_recommendations
from ..io import Progress
from .blend import MODES, BlendConfig, Heard, recommend
from .bundle import ServingBundle
from .ragged import RaggedTable

REPORTED = ("ndcg", "recall", "precision")


@dataclass(frozen=True)
class ReplayConfig(Config):
    """The `replay` section and the `service` blend the replay scores."""

    reveal: tuple[int, ...] = param("replay.reveal", increasing_integers(1))  # m values
    k: int = param("replay.k", integer(1))
    max_users: int = param("replay.max_users", integer(1))  # users sampled per m above this many
    seed: int = param("replay.seed", integer(0))
    blend: BlendConfig = section(BlendConfig)


def listening_sequences(test: pd.DataFrame) -> RaggedTable:
    """Each test user's tracks in listening order (day, then the user's own sequence number)."""
    order = np.lexsort((test["track_seq"].to_numpy(), test["started_at"].to_numpy(), test["user_id"].to_numpy()))
    return RaggedTable.from_grouped(test["user_id"].to_numpy()[order], test["track_id"].to_numpy()[order])


def replay_users(sequences: RaggedTable, bundle: ServingBundle, reveal: int, max_users: int, seed: int,
                 cold: bool = False) -> np.ndarray:
    """Users with more than ``reveal`` test listens and train history (without, if ``cold``); a seeded sample."""
    lengths = np.diff(sequences.offsets)
    known = np.isin(sequences.keys, bundle.history.keys, assume_unique=True)
    users = sequences.keys[(known != cold) & (lengths > reveal)]
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def replay(bundle: ServingBundle, sequences: RaggedTable, users: np.ndarray, reveal: int, k: int,
           config: BlendConfig, progress: Progress | None = None) -> dict[str, dict[str, float]]:
    """NDCG/recall/precision@k of every mode after revealing the first ``reveal`` test listens of ``users``."""
    lists: dict[str, list[np.ndarray]] = {mode: [] for mode in MODES}
    revealed, truth = [], []
    for done, user in enumerate(users.tolist(), start=1):
        listens, _ = sequences.row(user)
        online = listens[:reveal][::-1]  # most recent first, as the event store returns them
        for mode in MODES:
            lists[mode].append(recommend(bundle, user, online, k, config, mode).track_ids)
        revealed.append(listens[:reveal])
        later = listens[reveal:]  # what is left to predict: never a track already heard (none in this data)
        truth.append(later[~Heard.of(bundle, user, online).mask(later)])
        if progress and (done % 1000 == 0 or done == len(users)):
            progress(done, len(users))
    data = build_evaluation_set(_known_listens(bundle, users, revealed), _long_frame(users, truth))
    return {mode: _headline(evaluate_recommendations(_ranked_frame(users, found), data, [k]), k)
            for mode, found in lists.items()}


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
                  seed: int, config: BlendConfig, progress: Progress | None = None) -> dict[str, dict]:
    """``{"reveal_<m>": {"users": n, "<mode>": {metric: value}}}`` for every ``m`` in ``reveals``.

    Users with train history are the evaluated users; ``cold_reveal_<m>`` replays test users without
    any (their "offline" list is the popular fallback), where online listens are all there is to go on.
    """
    sequences = listening_sequences(test)
    report = {}
    for cold in (False, True):
        for reveal in sorted(reveals):
            users = replay_users(sequences, bundle, reveal, max_users, seed, cold=cold)
            report[f"{'cold_' if cold else ''}reveal_{reveal}"] = {
                "users": int(len(users)), **replay(bundle, sequences, users, reveal, k, config, progress)}
    return report


def replay_headline(report: dict[str, dict], k: int) -> dict[str, dict[str, float]]:
    """The declared replay metrics: NDCG@k of each mode per ``m``, rounded like every headline.

    Rows read ``m3`` (``cold_m3`` for users without history) with columns ``blended.ndcg@10``,
    ``offline.ndcg@10``, ``online.ndcg@10``; recall, precision and user counts stay in the full report.
    """
    flat = {section: {f"{mode}_ndcg": modes[mode][f"ndcg_at_{k}"] for mode in MODES}
            for section, modes in report.items()}
    rows = {section: section.replace("reveal_", "m") for section in report}
    return headline.headline(flat, rows, {f"{mode}_ndcg": f"{mode}.ndcg@{k}" for mode in MODES})
