"""``recommend`` gives bit-identical lists to its previous version (``tests/helpers/blend_reference.py``,
the code before the shortcuts for requests without online listens), on random bundles and requests.

The replay stage scores exactly what ``recommend`` serves, so a speed-up there must not move one item.
"""
from __future__ import annotations

import numpy as np
import pytest

from src.recsys.serving.blend import BlendConfig, recommend
from src.recsys.serving.bundle import ServingBundle
from tests.helpers import blend_reference
from tests.helpers.bundles import random_frames


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recommend_matches_the_reference_implementation(seed):
    bundle, rng = ServingBundle.build(**random_frames(seed)), np.random.default_rng(seed)
    tracks = np.asarray(bundle.catalog.track_ids)
    users = np.concatenate([np.asarray(bundle.offline.keys), [1, 3, 59, 60, 10**6]])  # with lists, without, unknown
    for _ in range(600):  # ~0.3 s
        user = int(rng.choice(users))
        listens = rng.choice(tracks, size=int(rng.choice([0, 0, 0, 1, 2, 5, 40]))).astype(np.int32)
        k = int(rng.choice([1, 3, 10, 30, 100]))
        values = dict(recent_listens=int(rng.integers(1, 4)), recency_decay=float(rng.choice([0.5, 1.0])),
                      strategy=str(rng.choice(["interleave", "rrf"])),
                      online_weight=float(rng.choice([0.0, 0.2, 0.5, 1.0])),
                      cold_online_weight=float(rng.choice([0.0, 0.2, 1.0])))
        mode = str(rng.choice(["blended", "blended", "offline", "online"]))
        new = recommend(bundle, user, listens, k, BlendConfig(**values), mode)
        old = blend_reference.recommend(bundle, user, listens, k, blend_reference.BlendConfig(**values), mode)
        for part in ("track_ids", "scores", "sources"):
            a, b = getattr(new, part), getattr(old, part)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (user, listens, k, values, mode, part)
        assert new.cold == old.cold
