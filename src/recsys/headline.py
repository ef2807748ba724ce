"""The headline: the few rounded numbers a reviewer decides on, the only files declared as DVC ``metrics``.

Every stage keeps its full detail (all k, MAP, MIUF, counters, training internals) in git-tracked JSON or
CSV that is not a declared metric; ``headline`` picks a handful of numbers per row out of such a results
dict and rounds them to ``SIGNIFICANT_DIGITS``, so float noise in the last bits never shows in
``dvc metrics diff`` or ``dvc exp show``. A new evaluation (for example an online replay) adds its own
rows and keys through the same function; ``tests/test_headline.py`` keeps the declared total under
``MAX_DECLARED_NUMBERS``. ``python -m src.recsys.headline [FILE]`` prints a headline file as a table.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

SIGNIFICANT_DIGITS = 5
MAX_DECLARED_NUMBERS = 50

# full-detail key -> headline key: short, so `dvc exp show` columns read like "final.ndcg@10"
OFFLINE_METRICS = {"ndcg_at_10": "ndcg@10", "recall_at_10": "recall@10", "precision_at_10": "prec@10",
                   "coverage_at_10": "cov@10"}
OFFLINE_ROWS = {"top_popular": "popular", "personal_als": "als", "final": "final", "oracle": "oracle",
                "cold_users_top_popular": "cold_popular"}


def round_significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (integers and non-finite values pass through)."""
    if isinstance(value, bool) or isinstance(value, int) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def headline(results: Mapping[str, Mapping[str, float]], rows: Mapping[str, str] = OFFLINE_ROWS,
             metrics: Mapping[str, str] = OFFLINE_METRICS,
             digits: int = SIGNIFICANT_DIGITS) -> dict[str, dict[str, float]]:
    """``{row: {metric: rounded value}}`` under the headline names, for the rows and metrics present.

    ``rows`` and ``metrics`` map a key of ``results`` to its headline name, in the order to print. A row that
    was not computed (no oracle on real data) or a missing metric (k = 10 not evaluated) is left out rather
    than written as NaN, so the file stays valid JSON and small.
    """
    picked = {}
    for row, row_name in rows.items():
        values = results.get(row)
        if values is None:
            continue
        kept = {name: round_significant(float(values[key]), digits) for key, name in metrics.items() if key in values}
        if kept:
            picked[row_name] = kept
    return picked


def markdown_table(payload: Mapping[str, Mapping[str, float]]) -> str:
    """A headline as a markdown table: a row per recommender, a column per metric (fits a terminal)."""
    columns = list(dict.fromkeys(name for row in payload.values() for name in row))
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row, values in payload.items():
        lines.append(f"| {row} | " + " | ".join(f"{values[c]:g}" if c in values else "" for c in columns) + " |")
    return "\n".join(lines)


def count_numbers(payload: Any) -> int:
    """How many numbers a JSON-like payload holds (what `dvc metrics show` would print)."""
    if isinstance(payload, Mapping):
        return sum(count_numbers(value) for value in payload.values())
    if isinstance(payload, (list, tuple)):
        return sum(count_numbers(value) for value in payload)
    return int(isinstance(payload, (int, float)) and not isinstance(payload, bool))


if __name__ == "__main__":
    import json
    import sys

    print(markdown_table(json.loads(open(sys.argv[1] if len(sys.argv) > 1 else "metrics/evaluation.json").read())))
