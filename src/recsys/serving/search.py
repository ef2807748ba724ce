"""The blend learned from data: the `serving` stage replays held-out tuning users and keeps what scores best.

params.yaml holds only the search space (``blend_search.space``); the chosen settings travel in the
serving bundle (``bundle.blend``), so every data version serves its own. Each step scores a setting by
NDCG@k averaged over the replay's ``m`` values, on the tuning users of ``holdout.py`` (never the users
the `replay` stage reports on), exactly as the replay does: their first ``m`` test listens are posted,
the rest is the truth.

The tuning users split again, by the same kind of hash: the **fit half** trains the re-ranker, the
**selection half** scores every setting (so the learned strategy competes on users it never saw).

1. **Online candidates** (``recent_listens``, ``recency_decay``, ``similar_weight``): coordinate ascent
   (``sweeps`` passes, one setting at a time) on the online-only list of users with history: how well
   the online candidates alone predict what comes next.
2. **The re-ranker** (``reranker.py``, ``blend_search.reranker``) is fit on the fit half's candidates.
3. **Users with history**: every ``strategy`` x ``online_weight`` pair, and ``learned``, on the blended
   list. A weight of 0 (the offline list first) is always tried, and a setting below the offline list
   alone at any ``m`` is not eligible, so the blend does not serve worse than the offline list on the
   selection users.
4. **Users without history**: the same for ``cold_strategy`` x ``cold_online_weight``, against the chart.

A tie keeps the option tried first (the space's order).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..config import Config, choices, increasing_integers, integer, numbers, param, section
from .blend import candidate_lists
from .blend_config import STRATEGIES, BlendConfig
from .bundle_reader import ServingBundle
from .holdout import HoldoutConfig, tuning_mask
from .ragged import RaggedTable
from .online_replay import ReplayCase, replay_users
from .reranker import RERANKER_FEATURES, RerankerConfig, candidate_features, fit_reranker
from .trees import TreeEnsemble

Log = Callable[[str], None]


@dataclass(frozen=True)
class SearchSpace(Config):
    """The values tried per setting (``blend_search.space``); the first listed wins a tie."""

    recent_listens: tuple[int, ...] = param("blend_search.space.recent_listens", increasing_integers(1))
    recency_decay: tuple[float, ...] = param("blend_search.space.recency_decay", numbers(0.0, 1.0, low_open=True))
    similar_weight: tuple[float, ...] = param("blend_search.space.similar_weight", numbers(0.0, 10.0))
    strategy: tuple[str, ...] = param("blend_search.space.strategy", choices(STRATEGIES))
    online_weight: tuple[float, ...] = param("blend_search.space.online_weight", numbers(0.0, 1.0))
    cold_strategy: tuple[str, ...] = param("blend_search.space.cold_strategy", choices(STRATEGIES))
    cold_online_weight: tuple[float, ...] = param("blend_search.space.cold_online_weight", numbers(0.0, 1.0))


@dataclass(frozen=True)
class BlendSearchConfig(Config):
    holdout: HoldoutConfig = section(HoldoutConfig)
    max_users: int = param("blend_search.max_users", integer(1))  # tuning users replayed per m (bounds the cost)
    sweeps: int = param("blend_search.sweeps", integer(1))
    reveal: tuple[int, ...] = param("replay.reveal", increasing_integers(1))  # the replay's m values
    k: int = param("replay.k", integer(1))
    space: SearchSpace = section(SearchSpace)
    reranker: RerankerConfig = section(RerankerConfig)


class Scorer:
    """NDCG@k per ``m`` of a setting in one mode on prepared replay cases, memoised (steps share settings;
    the bundle gains its re-ranker once, before any learned setting is scored)."""

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
                 log: Log = lambda message: None) -> tuple[BlendConfig, TreeEnsemble, dict]:
    """The chosen settings, the re-ranker and a report of every trial (``metrics/blend_search.json``)."""
    tuning = tuning_mask(sequences.keys, cfg.holdout)
    fitting = tuning & tuning_mask(sequences.keys, HoldoutConfig(tune_share=0.5, seed=cfg.holdout.seed + 1))

    def cases(allowed: np.ndarray, cold: bool) -> dict[int, ReplayCase]:
        return {m: ReplayCase.prepare(bundle, sequences, replay_users(
            sequences, bundle, m, cfg.max_users, cfg.holdout.seed, cold=cold, allowed=allowed), m, cfg.k)
            for m in cfg.reveal}

    warm, cold = Scorer(bundle, cases(tuning & ~fitting, False)), Scorer(bundle, cases(tuning & ~fitting, True))
    space, trials = cfg.space, []
    current = BlendConfig(recent_listens=space.recent_listens[0], recency_decay=space.recency_decay[0],
                          similar_weight=space.similar_weight[0], strategy="interleave", online_weight=0.0,
                          cold_strategy="interleave", cold_online_weight=0.0)
    for sweep in range(cfg.sweeps):
        for name in ("recent_listens", "recency_decay", "similar_weight"):
            options = [dataclasses.replace(current, **{name: value}) for value in getattr(space, name)]
            current = _best(options, warm, "online", None, trials, f"online candidates, sweep {sweep + 1}: {name}")
        log(f"online candidates after sweep {sweep + 1}: {current}")

    reranker, fitted = TreeEnsemble.empty(), {}
    if "learned" in space.strategy or "learned" in space.cold_strategy:
        fit_cases = [*cases(fitting, False).values(), *cases(fitting, True).values()]
        rows, labels, groups = reranker_rows(bundle, fit_cases, current)
        reranker, importance = fit_reranker(rows, labels, groups, cfg.reranker)
        fitted = {"replayed_users": int(sum(len(case.users) for case in fit_cases)), "rows": int(len(rows)),
                  "positive_share": float(labels.mean()) if len(labels) else 0.0, "importance": importance}
        log(f"re-ranker: {len(reranker)} trees on {len(rows)} candidate rows of the fit half")
        warm.bundle = cold.bundle = bundle.with_blend(current, reranker)

    offline = warm.ndcg(current, "offline")
    options = _strategies(current, space.strategy, space.online_weight, "strategy", "online_weight")
    current = _best(options, warm, "blended", offline, trials, "users with history: strategy, online_weight")
    chart = cold.ndcg(current, "offline")
    options = _strategies(current, space.cold_strategy, space.cold_online_weight, "cold_strategy", "cold_online_weight")
    current = _best(options, cold, "blended", chart, trials, "users without history: cold_strategy, cold_online_weight")
    log(f"chosen: {current}")
    report = {
        "chosen": current.to_dict(),
        "selection_users": {"with_history": warm.users, "without_history": cold.users},
        "reranker": {"trees": len(reranker), **fitted},
        "baselines": {"offline": offline, "chart": chart, "online_only": warm.ndcg(current, "online"),
                      "cold_online_only": cold.ndcg(current, "online")},
        "chosen_ndcg": {"with_history": warm.ndcg(current, "blended"), "without_history": cold.ndcg(current, "blended")},
        "trials": trials,
    }
    learned = "learned" in (current.strategy, current.cold_strategy)
    return current, reranker if learned else TreeEnsemble.empty(), report


def reranker_rows(bundle: ServingBundle, cases: Iterable[ReplayCase],
                  config: BlendConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(feature rows, labels, group per (user, m)) of the candidates ``blend_for_user`` would re-rank for each user."""
    learned = dataclasses.replace(config, strategy="learned", cold_strategy="learned")
    rows, labels, groups = [], [], []
    for case in cases:
        for user, online, truth in zip(case.users.tolist(), case.online, case.truth):
            found = candidate_lists(bundle, user, online, case.k, learned)
            if not len(found.online):
                continue
            tracks, _, features = candidate_features(bundle, found.offline[:2], found.online, found.recent, found.cold)
            rows.append(features)
            labels.append(np.isin(tracks, truth))
            groups.append(np.full(len(tracks), len(groups), dtype=np.int64))
    if not rows:
        return np.empty((0, len(RERANKER_FEATURES)), np.float32), np.empty(0, bool), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(labels), np.concatenate(groups)


def _strategies(current: BlendConfig, strategies: Iterable[str], weights: Iterable[float], strategy_name: str,
                weight_name: str) -> list[BlendConfig]:
    """Every (strategy, weight) option; ``learned`` once (it has no weight), when a re-ranker was fit."""
    options = []
    for strategy in strategies:
        for weight in ([0.0] if strategy == "learned" else _with_zero(weights)):
            options.append(dataclasses.replace(current, **{strategy_name: strategy, weight_name: weight}))
    return options


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
