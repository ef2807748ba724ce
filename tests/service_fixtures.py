"""Hand-made serving bundles and a real server process for the service tests.

``tiny_frames`` is small enough to reason about by hand (see its docstring); ``random_frames`` is a
seeded random catalog for the property tests. ``service_process`` runs ``python -m src.service`` on a
free loopback port (``src.service.process``, shared with the load benchmark).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.recsys.serving.bundle import ServingBundle
from src.service.process import REPO_ROOT, SERVICE_COMMAND, ServerProcess, free_port
from src.service.settings import Settings, settings_from

SERVICE_PARAMS = {"bundle_dir": "bundle", "events_db": "online/events.sqlite", "host": "127.0.0.1", "port": 8000,
                  "recent_listens": 3, "recency_decay": 0.5,
                  "blend": {"strategy": "interleave", "online_weight": 0.5, "cold_online_weight": 0.5}}

TOP_POPULAR = [1, 2, 3, 4, 5]
USER1_OFFLINE = list(range(20, 32))  # user 1's 12 personal recommendations, best first
USER2_OFFLINE = [30, 31, 32]  # user 2 has only 3: the rest is backfilled from popular
SIMILAR = {10: [11, 12, 13], 11: [14, 10, 15], 20: [21, 35]}
UNNAMED = 7  # a catalog track without a name
NOT_LISTENED = 40  # in the catalog, never in train: writable, never popular


def _ranked(rows: dict[int, list[int]], key: str, item: str) -> pd.DataFrame:
    keys, items, scores, ranks = [], [], [], []
    for owner, tracks in rows.items():
        for rank, track in enumerate(tracks, 1):
            keys.append(owner), items.append(track), scores.append(1.0 / rank), ranks.append(rank)
    return pd.DataFrame({key: keys, item: items, "score": np.array(scores, dtype=np.float32), "rank": ranks})


def tiny_frames() -> dict[str, pd.DataFrame]:
    """Tracks 1..40 (7 unnamed, 40 never heard); users 1, 2 (personal lists), 3 and 100-102 (none).

    Train: user 1 heard 1-3, user 2 heard 4-5, user 3 heard 1, 4, 6; user 100 heard 1-39, user 101
    1-10, user 102 1-5, so popularity is 1-5 (the chart), then 6-10, then 11-39 by id.
    """
    train = {1: [1, 2, 3], 2: [4, 5], 3: [1, 4, 6], 100: list(range(1, 40)), 101: list(range(1, 11)),
             102: list(range(1, 6))}
    users = [user for user, tracks in train.items() for _ in tracks]
    return {
        "recommendations": _ranked({1: USER1_OFFLINE, 2: USER2_OFFLINE}, "user_id", "track_id"),
        "similar": _ranked(SIMILAR, "track_id", "similar_track_id"),
        "top_popular": pd.DataFrame({"track_id": TOP_POPULAR}),
        "train": pd.DataFrame({"user_id": users, "track_id": [t for tracks in train.values() for t in tracks]}),
        "items": pd.DataFrame({"track_id": list(range(1, 41)),
                               "name": [None if t == UNNAMED else f"Track {t}" for t in range(1, 41)]}),
    }


def random_frames(seed: int, n_users: int = 60, n_tracks: int = 150) -> dict[str, pd.DataFrame]:
    """A random catalog where every track is listened to by someone; half the users have personal lists."""
    rng = np.random.default_rng(seed)
    tracks = np.arange(1000, 1000 + n_tracks)
    train_users = np.concatenate([np.arange(n_users).repeat(12), np.full(n_tracks, n_users)])
    train_tracks = np.concatenate([rng.choice(tracks, size=n_users * 12), tracks])
    recommended = {user: rng.choice(tracks, size=int(rng.integers(1, 25)), replace=False).tolist()
                   for user in range(0, n_users, 2)}
    similar = {int(track): rng.choice(tracks, size=int(rng.integers(1, 8)), replace=False).tolist()
               for track in tracks[: n_tracks // 2]}
    return {
        "recommendations": _ranked(recommended, "user_id", "track_id"),
        "similar": _ranked(similar, "track_id", "similar_track_id"),
        "top_popular": pd.DataFrame({"track_id": rng.choice(tracks, size=20, replace=False)}),
        "train": pd.DataFrame({"user_id": train_users, "track_id": train_tracks}),
        "items": pd.DataFrame({"track_id": tracks, "name": [f"Song {t}" if t % 5 else None for t in tracks]}),
    }


def save_bundle(frames: dict[str, pd.DataFrame], folder: Path) -> ServingBundle:
    """Build, save and reopen (memory-mapped) a bundle, as the service would see it."""
    folder.mkdir(parents=True, exist_ok=True)
    ServingBundle.build(**frames).save(folder)
    return ServingBundle.open(folder)


def settings_for(base: Path, **overrides) -> Settings:
    """Settings as params.yaml would give them for a workdir ``base`` holding ``bundle/``."""
    env = {key: str(value) for key, value in overrides.items()}
    return settings_from(SERVICE_PARAMS, base, env)


def write_params(base: Path) -> Path:
    path = base / "params.yaml"
    path.write_text(yaml.safe_dump({"service": SERVICE_PARAMS}), encoding="utf-8")
    return path


def service_command(base: Path, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``python -m src.service`` to completion (for settings that must make it refuse to start)."""
    return subprocess.run(SERVICE_COMMAND, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "RECSYS_PARAMS": str(write_params(base)), **(env or {})})


def service_process(base: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """``python -m src.service`` for a workdir ``base`` (params.yaml written there), on a free port."""
    port = free_port()
    return ServerProcess(SERVICE_COMMAND, port, base / "server.log",
                         {"RECSYS_PARAMS": str(write_params(base)), "RECSYS_PORT": str(port), **(env or {})})
