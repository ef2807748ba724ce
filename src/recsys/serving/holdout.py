"""Which test users tune the blend and which ones the replay scores: two disjoint sets, fixed by a seeded hash.

The `serving` stage chooses the blend settings by replaying the **tuning users** (``blend_search.tune_share``
of the test users); the `replay` stage reports only on the others. A user's side depends on their id and
the seed alone (not on the data, the sample sizes or the other users), so both stages draw the same line.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Config, integer, number, param

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class HoldoutConfig(Config):
    tune_share: float = param("blend_search.tune_share", number(0.0, 1.0, low_open=True, high_open=True))
    seed: int = param("blend_search.seed", integer(0))


def tuning_mask(user_ids: np.ndarray, holdout: HoldoutConfig) -> np.ndarray:
    """True for the users whose listens may tune the blend (about ``tune_share`` of any set of ids)."""
    with np.errstate(over="ignore"):
        mixed = _splitmix64(np.asarray(user_ids).astype(np.uint64) + np.uint64(holdout.seed) * _GOLDEN)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53) < holdout.tune_share


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash (SplitMix64's finaliser): neighbouring ids land on unrelated sides."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
