"""The blend learned from data: the `serving` stage replays held-out tuning users and keeps what scores best.

params.yaml holds only the search space (``blend_search.space``); the chosen settings travel in the
serving bundle (``bundle.blend``), so every data version serves its own. Each step scores a setting by
NDCG@k averaged over the replay's ``m`` values, on the tuning users of ``holdout.py`` (never the users
the `replay` stage reports on), exactly as the replay does: their first ``m`` test listens are posted,
the rest is the truth.

1. **Online candidates** (``recent_listens``, ``recency_decay``, ``similar_weight``): coordinate ascent
   (``sweeps`` passes, one setting at a time) on the online-only list of users with history: how well
   the online candidates alone predict what comes next.
2. **Users with history** (``strategy`` x ``online_weight``, every pair) on the blended list. A weight of
   0 (the offline list alone) is always tried, and a setting below it at any ``m`` is not eligible, so
   the blend never serves worse than the offline list on the tuning users.
3. **Users without history** (``cold_online_weight``, with the chosen strategy) on the blended list
   against the chart, under the same rule against the chart alone.

A tie keeps the value listed first in the space.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..config import Config, choices, increasing_integers, integer, numbers, param, section
from .blend_config import STRATEGIES, BlendConfig
from .bundle import ServingBundle
from .holdout import HoldoutConfig, tuning_mask
from .ragged import RaggedTable
from .replay import ReplayCase, replay_users

Log = Callable[[str], None]


@dataclass(frozen=True)
class SearchSpace(Config):
    """The values tried per setting (``blend_search.space``); the first listed wins a tie."""

    recent_listens: tuple[int, ...] = param("blend_search.space.recent_listens", increasing_integers(1))
    recency_decay: tuple[float, ...] = param("blend_search.space.recency_decay", numbers(0.0, 1.0, low_open=True))
    similar_weight: tuple[float, ...] = param("blend_search.space.similar_weight", numbers(0.0, 10.0))
    strategy: tuple[str, ...] = param("blend_search.space.strategy", choices(STRATEGIES))
    online_weight: tuple[float, ...] = param("blend_search.space.online_weight", numbers(0.0, 1.0))
    cold_online_weight: tuple[float, ...] = param("blend_search.space.cold_online_weight", numbers(0.0, 1.0))


@dataclass(frozen=True)
class BlendSearchConfig(Config):
    holdout: HoldoutConfig = section(HoldoutConfig)
    max_users: int = param("blend_search.max_users", integer(1))  # tuning users replayed per m (bounds the cost)
    sweeps: int = param("blend_search.sweeps", integer(1))
    reveal: tuple[int, ...] = param("replay.reveal", increasing_integers(1))  # the replay's m values
    k: int = param("replay.k", integer(1))
    space: SearchSpace = section(SearchSpace)


class Scorer:
    """NDCG@k per ``m`` of a setting in one mode on prepared replay cases, memoised (steps share settings)."""

    def __init__(self, bundle: ServingBundle, cases: dict[int, ReplayCase]):
        self.bundle = bundle
        self.cases = {m: case for m, case in cases.items() if len(case.users)}
        self.users = {m: int(len(case.users)) for m, case in cases.items()}
        self._memo: dict[tuple[BlendConfig, str], dict[int, float]] = {}

    def ndcg(self, config: BlendConfig, mode: str) -> dict[int, float]:
        key = (config, mode)
        if key not in self._memo:
            self._memo[key] = {m: case.score(case.served(self.bundle, config, mode))[f"ndcg_at_{case.k}"]
                               for m, case in self.cases.items()}
        return self._memo[key]


def search_blend(bundle: ServingBundle, sequences: RaggedTable, cfg: BlendSearchConfig,
                 log: Log = lambda message: None) -> tuple[BlendConfig, dict]:
    """The chosen settings and a report of every trial (``metrics/blend_search.json``)."""
    tuning = tuning_mask(sequences.keys, cfg.holdout)
    warm, cold = (Scorer(bundle, {m: ReplayCase.prepare(bundle, sequences, replay_users(
        sequences, bundle, m, cfg.max_users, cfg.holdout.seed, cold=is_cold, allowed=tuning), m, cfg.k)
        for m in cfg.reveal}) for is_cold in (False, True))
    space, trials = cfg.space, []
    current = BlendConfig(recent_listens=space.recent_listens[0], recency_decay=space.recency_decay[0],
                          similar_weight=space.similar_weight[0], strategy=space.strategy[0], online_weight=0.0,
                          cold_online_weight=0.0)
    for sweep in range(cfg.sweeps):
        for name in ("recent_listens", "recency_decay", "similar_weight"):
            options = [dataclasses.replace(current, **{name: value}) for value in getattr(space, name)]
            current = _best(options, warm, "online", None, trials, f"online candidates, sweep {sweep + 1}: {name}")
        log(f"online candidates after sweep {sweep + 1}: {current}")
    offline = warm.ndcg(current, "offline")
    options = [dataclasses.replace(current, strategy=strategy, online_weight=weight)
               for strategy in space.strategy for weight in _with_zero(space.online_weight)]
    current = _best(options, warm, "blended", offline, trials, "users with history: strategy, online_weight")
    chart = cold.ndcg(current, "offline")
    options = [dataclasses.replace(current, cold_online_weight=weight) for weight in _with_zero(space.cold_online_weight)]
    current = _best(options, cold, "blended", chart, trials, "users without history: cold_online_weight")
    log(f"chosen: {current}")
    report = {
        "chosen": current.to_dict(),
        "tuning_users": {"with_history": warm.users, "without_history": cold.users},
        "baselines": {"offline": offline, "chart": chart, "online_only": warm.ndcg(current, "online"),
                      "cold_online_only": cold.ndcg(current, "online")},
        "chosen_ndcg": {"with_history": warm.ndcg(current, "blended"), "without_history": cold.ndcg(current, "blended")},
        "trials": trials,
    }
    return current, report


def _best(options: list[BlendConfig], scorer: Scorer, mode: str, baseline: dict[int, float] | None,
          trials: list[dict], step: str) -> BlendConfig:
    """The option with the best mean NDCG among those never below ``baseline`` at any m (first wins a tie).

    Weight 0 serves the baseline list first and is eligible whenever that list fills the ``k`` slots (the
    ranker's lists are ``rank.n`` long); should no option be, the best of all is taken.
    """
    scored = []
    for option in options:
        scores = scorer.ndcg(option, mode)
        mean = float(np.mean(list(scores.values()))) if scores else 0.0
        eligible = baseline is None or all(scores[m] >= baseline[m] for m in scores)
        trials.append({"step": step, "settings": option.to_dict(), "ndcg": scores, "mean_ndcg": mean,
                       "eligible": eligible})
        scored.append((not eligible, -mean, len(scored), option))
    return min(scored)[-1]


def _with_zero(weights: Iterable[float]) -> list[float]:
    """The weights to try: 0 (the other list alone, the baseline) first, then the space's values."""
    return [0.0] + [weight for weight in weights if weight != 0.0]
