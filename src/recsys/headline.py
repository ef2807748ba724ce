"""The headline: the few rounded numbers a reviewer decides on, the only files declared as DVC ``metrics``.

Every stage keeps its full detail (all k, MAP, MIUF, counters, training internals) in git-tracked JSON or
CSV that is not a declared metric; ``headline`` picks a handful of numbers per row out of such a results
dict and rounds them to ``SIGNIFICANT_DIGITS``, so float noise in the last bits never shows in
``dvc metrics diff`` or ``dvc exp show``. A new evaluation (for example an online replay) adds its own
rows and keys through the same function; ``tests/test_headline.py`` keeps the declared total under
``MAX_DECLARED_NUMBERS``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

SIGNIFICANT_DIGITS = 5
MAX_DECLARED_NUMBERS = 50

OFFLINE_METRICS = ("ndcg_at_10", "recall_at_10", "precision_at_10", "coverage_at_10")
OFFLINE_ROWS = ("top_popular", "personal_als", "final", "oracle", "cold_users_top_popular")


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (integers and non-finite values pass through)."""
    if isinstance(value, bool) or isinstance(value, int) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def headline(results: Mapping[str, Mapping[str, float]], rows: Sequence[str] = OFFLINE_ROWS,
             metrics: Sequence[str] = OFFLINE_METRICS, digits: int = SIGNIFICANT_DIGITS) -> dict[str, dict[str, float]]:
    """``{row: {metric: rounded value}}`` for the rows and metrics present in ``results``, in the given order.

    A row that was not computed (no oracle on real data) or a metric that is missing (k = 10 not evaluated)
    is left out rather than written as NaN, so the file stays valid JSON and small.
    """
    picked = {}
    for row in rows:
        values = results.get(row)
        if values is None:
            continue
        kept = {name: round_significant(float(values[name]), digits) for name in metrics if name in values}
        if kept:
            picked[row] = kept
    return picked


def count_numbers(payload: Any) -> int:
    """How many numbers a JSON-like payload holds (what `dvc metrics show` would print)."""
    if isinstance(payload, Mapping):
        return sum(count_numbers(value) for value in payload.values())
    if isinstance(payload, (list, tuple)):
        return sum(count_numbers(value) for value in payload)
    return int(isinstance(payload, (int, float)) and not isinstance(payload, bool))
