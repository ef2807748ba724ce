"""The oracle: each user's unseen train tracks ranked by the generator's true preference.

Only generated data has a ground truth; the oracle is the ceiling any model can
reach on it, so the results table shows how far each model is from it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .arrays import encode
from .evaluation import EvaluationSet
from .metrics import EMPTY, ranking_metrics
from .synthetic.preferences import YEAR_START, DayPreferences, GroundTruth


def test_period_day(test_dates: np.ndarray) -> int:
    """Day index (0 = 2022-01-01) of the middle of the test period."""
    first, last = test_dates.min().astype("datetime64[D]"), test_dates.max().astype("datetime64[D]")
    return int(((first - YEAR_START) + (last - YEAR_START)).astype(int) // 2)


def sample_rows(n_rows: int, max_rows: int, seed: int) -> np.ndarray:
    """All rows, or a seeded sample of ``max_rows`` of them (sorted), to bound the oracle's cost."""
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, max_rows, replace=False))


def oracle_top_items(truth: GroundTruth, data: EvaluationSet, rows: np.ndarray, day: int, k: int,
                     max_batch_cells: int = 2_000_000,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(len(rows), k) item codes of ``data``: top unseen train tracks by true preference on ``day``.

    Users are scored in batches of at most ``max_batch_cells`` (user, track) scores (16 MB of float64;
    at least one user), so 1M tracks cost a few MB per batch instead of gigabytes. Each row is scored on its
    own, so the batch size never changes the result; below glibc's 32 MB mmap threshold the batch arrays are
    reused from the heap, where 160 MB ones were mapped and page-faulted in afresh every batch (at scale
    0.3: 129 s user + 103 s system with 20M cells, 130 s user + 0 s system with 2M).
    """
    batch_size = max(1, max_batch_cells // max(len(truth.tracks), data.n_items, 1))
    candidates = np.flatnonzero(data.item_listeners > 0)  # tracks a model trained on train can recommend
    truth_columns = encode(data.item_ids[candidates], truth.tracks["track_id"].to_numpy())
    known = truth_columns >= 0
    candidates, truth_columns = candidates[known], truth_columns[known]
    top = np.full((len(rows), k), EMPTY, dtype=np.int64)
    preferences = DayPreferences(truth, day)
    # one buffer for every batch, negated in place instead of a negated copy: argpartition and argsort see
    # the same values
    buffer = np.empty((min(batch_size, len(rows)), data.n_items))
    for begin in range(0, len(rows), batch_size):
        batch = rows[begin:begin + batch_size]
        scores = buffer[:len(batch)]
        scores.fill(-np.inf)
        scores[:, candidates] = preferences.scores(data.users[batch])[:, truth_columns]
        seen = data.train[batch]
        scores[np.repeat(np.arange(len(batch)), np.diff(seen.indptr)), seen.indices] = -np.inf
        negated = np.negative(scores, out=scores)
        width = min(k, data.n_items)
        part = np.argpartition(negated, width - 1, axis=1)[:, :width]
        order = np.argsort(np.take_along_axis(negated, part, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best[~np.isfinite(np.take_along_axis(negated, best, axis=1))] = EMPTY
        top[begin:begin + len(batch), :width] = best
        if progress:
            progress(begin + len(batch), len(rows))
    return top


def oracle_metrics(truth: GroundTruth, data: EvaluationSet, rows: np.ndarray, day: int, ks,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Metrics of the true preferences on the evaluated users at ``rows`` (a sample bounds the cost)."""
    top = oracle_top_items(truth, data, rows, day, max(ks), progress=progress)
    return ranking_metrics(top, data.truth[rows], data.train[rows], data.item_listeners,
                           data.n_train_users, data.n_train_items, ks)
