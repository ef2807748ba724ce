"""Test listens with session structure on a bundle, and the shipped blend search space: what the blend search,
the replay and the server are tested on."""
from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from src.recsys.serving.bundle_reader import ServingBundle
from src.recsys.serving.holdout import HoldoutConfig
from src.recsys.serving.search import BlendSearchConfig
from tests.helpers import REPO_ROOT

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def search_config(holdout: HoldoutConfig = HoldoutConfig(tune_share=0.5, seed=3), **space) -> BlendSearchConfig:
    """The shipped search space and training params, with ``holdout`` (the random worlds are small: half the users
    tune) and ``space`` overrides."""
    search = SHIPPED["blend_search"]
    params = {**SHIPPED, "blend_search": {**search, "tune_share": holdout.tune_share, "seed": holdout.seed,
                                          "space": {**search["space"], **space}}}
    return BlendSearchConfig.from_params(params)


def session_events(bundle: ServingBundle, follow_played_next: bool, seed: int = 0, users=None) -> pd.DataFrame:
    """Eight test listens per user on one day: each the best unheard played-next track of the previous one
    (when ``follow_played_next``), or random tracks. ``users`` defaults to every user with history but the
    one who heard the whole catalog (``random_frames``)."""
    rng = np.random.default_rng(seed)
    if users is None:
        users = bundle.history.keys[np.diff(bundle.history.offsets) < len(bundle.catalog.track_ids) // 2]
    rows = []
    for user in users.tolist():
        heard = set(bundle.history.row(user)[0].tolist())
        track = int(rng.choice(bundle.played_next.keys))
        for seq in range(8):
            rows.append((user, track, seq + 1))
            heard.add(track)
            following = [t for t in bundle.played_next.row(track)[0].tolist() if t not in heard]
            if follow_played_next and following:
                track = following[0]
            else:
                track = int(rng.choice([t for t in bundle.catalog.track_ids.tolist() if t not in heard]))
    frame = pd.DataFrame(rows, columns=["user_id", "track_id", "track_seq"])
    frame["started_at"] = pd.Timestamp("2022-12-20")
    return frame.astype({"user_id": np.int32, "track_id": np.int32, "track_seq": np.int16})
