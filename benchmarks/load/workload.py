"""The request mix: recommendation reads (bundle users, cold users, users who wrote earlier) and listen writes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from src.recsys.serving.bundle_reader import ServingBundle

KINDS = ("recs_warm", "recs_cold", "recs_returning", "listen")  # request kinds, indexed by code
RECS_WARM, RECS_COLD, RECS_RETURNING, LISTEN = range(len(KINDS))


@dataclass(frozen=True)
class Mix:
    """Shares of the requests: writes of all; cold and returning readers of the reads."""

    write_share: float = 0.2
    cold_share: float = 0.1
    returning_share: float = 0.1
    k: int = 10


@dataclass
class Workload:
    """Pre-built requests (paths, bodies, kind codes), so the send loop does no per-request work."""

    paths: list[str]
    bodies: list[bytes | None]
    kinds: np.ndarray  # int8 codes into KINDS

    def __len__(self) -> int:
        return len(self.paths)


def cold_user_ids(known: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Ids the bundle has no recommendations for: gaps in its (sorted) id range and ids beyond its largest."""
    candidates = rng.integers(0, int(known[-1]) * 11 // 10 + count + 1, 4 * count + 16)
    position = np.searchsorted(known, candidates).clip(0, len(known) - 1)
    unknown = candidates[known[position] != candidates]
    return rng.choice(unknown, count)


def make_workload(bundle: ServingBundle, count: int, mix: Mix, rng: np.random.Generator) -> Workload:
    """``count`` requests of the mix, drawn with numpy; returning readers pick an earlier writer's id."""
    users = np.asarray(bundle.offline.keys)
    writes = rng.random(count) < mix.write_share
    kinds = np.where(writes, LISTEN, RECS_WARM).astype(np.int8)
    user_ids = rng.choice(users, count).astype(np.int64)
    draw = rng.random(count)
    cold = ~writes & (draw < mix.cold_share)
    kinds[cold] = RECS_COLD
    user_ids[cold] = cold_user_ids(users, int(cold.sum()), rng)
    writes_before = np.cumsum(writes) - writes  # writes scheduled before each request
    returning = ~writes & ~cold & (draw < mix.cold_share + mix.returning_share) & (writes_before > 0)
    kinds[returning] = RECS_RETURNING
    writer_ids = user_ids[writes]
    user_ids[returning] = writer_ids[(rng.random(int(returning.sum())) * writes_before[returning]).astype(np.int64)]
    tracks = rng.choice(np.asarray(bundle.catalog.track_ids), count)
    paths = [f"/users/{user}/listens" if write else f"/users/{user}/recommendations?k={mix.k}"
             for user, write in zip(user_ids.tolist(), writes.tolist())]
    bodies = [orjson.dumps({"track_id": track}) if write else None
              for track, write in zip(tracks.tolist(), writes.tolist())]
    return Workload(paths, bodies, kinds)
