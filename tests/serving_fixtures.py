"""A hand-made serving bundle small enough to reason about in a test.

Catalog: tracks 1..12 (track 12 has no name). Train history: user 100 heard 1, 2; user 101 heard 3;
user 102 heard 1. Popularity by distinct listeners: 1 (2 listeners), then 2 and 3 (1 each, lower id
first); the `popular` stage's chart is [1, 2, 3]. Offline lists: user 100 -> 4, 5, 6; user 101 -> 7, 8.
User 102 has history but no offline list; any other user id is unknown (cold).
Similar tracks: 1 -> 9, 10; 2 -> 10, 11; 4 -> 12.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from src.recsys.serving.bundle import ServingBundle


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
        "top_popular": frame(track_id=np.array([1, 2, 3], np.int32)),
        "train": frame(user_id=np.array([100, 100, 101, 102, 100], np.int32),
                       track_id=np.array([1, 2, 3, 1, 1], np.int32)),  # (100, 1) repeats
        "items": pd.DataFrame({"track_id": np.arange(1, 13, dtype=np.int32),
                               "name": [f"Song {i}" for i in range(1, 12)] + [None]}),
    }


def tiny_bundle(folder=None) -> ServingBundle:
    """The bundle built in memory, or saved to ``folder`` and memory-mapped back when one is given."""
    bundle = ServingBundle.build(**tiny_frames())
    if folder is None:
        return bundle
    folder.mkdir(parents=True)
    bundle.save(folder)
    return ServingBundle.open(folder)
