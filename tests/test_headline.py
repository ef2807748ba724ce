"""The declared DVC metrics are the small rounded headline; everything else stays out of `dvc metrics`."""
from __future__ import annotations

import json

import yaml

from tests.helpers import REPO_ROOT
from src.recsys.headline import (
    MAX_DECLARED_NUMBERS, OFFLINE_METRICS, SIGNIFICANT_DIGITS, count_numbers, headline, markdown_table,
    round_significant,
)


def declared_metric_files() -> list[str]:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for entry in stage.get("metrics", []):
            files.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return files


def test_round_significant():
    assert round_significant(0.322424999) == 0.32242
    assert round_significant(0.0049548557) == 0.0049549
    assert round_significant(123456.7) == 123460.0
    assert round_significant(0.0) == 0.0
    assert round_significant(15014) == 15014
    assert round_significant(0.1234567, 3) == 0.123


def test_headline_picks_rounds_and_skips_missing():
    results = {
        "final": {"ndcg_at_10": 0.32242417, "recall_at_10": 0.19361234, "map_at_10": 0.2, "ndcg_at_5": 0.3},
        "top_popular": {"ndcg_at_10": 0.0908821750630},
        "something_else": {"ndcg_at_10": 1.0},
    }
    assert headline(results) == {
        "popular": {"ndcg@10": 0.090882},
        "final": {"ndcg@10": 0.32242, "recall@10": 0.19361},
    }
    assert list(headline(results)) == ["popular", "final"]  # the documented row order
    assert markdown_table(headline(results)).splitlines() == [
        "| | ndcg@10 | recall@10 |", "|---|---|---|", "| popular | 0.090882 |  |", "| final | 0.32242 | 0.19361 |",
    ]


def test_float_noise_does_not_reach_the_headline():
    value = 0.25249063672779470
    assert headline({"final": {"ndcg_at_10": value}}) == headline({"final": {"ndcg_at_10": value * (1 + 1e-12)}})


def test_count_numbers():
    assert count_numbers({"a": {"x": 1.0, "y": 2}, "b": [1, 2.5], "c": "text", "d": True}) == 4


# written by src.recsys.headline.headline, with the metric names each may hold
HEADLINE_FILES = {"metrics/evaluation.json": set(OFFLINE_METRICS.values()), "metrics/replay.json": {"blended.ndcg@10", "offline.ndcg@10", "online.ndcg@10"}}


def test_declared_metrics_stay_a_headline():
    """Every declared metrics file together holds at most MAX_DECLARED_NUMBERS numbers (what `dvc metrics show`
    and `dvc exp show` print); the headline files hold only rounded headline metrics."""
    files = declared_metric_files()
    assert set(HEADLINE_FILES) <= set(files)
    total = 0
    for name in files:
        if (REPO_ROOT / name).exists():
            total += count_numbers(json.loads((REPO_ROOT / name).read_text()))
    assert 0 < total <= MAX_DECLARED_NUMBERS
    for name, allowed in HEADLINE_FILES.items():
        for row in json.loads((REPO_ROOT / name).read_text()).values():
            assert set(row) <= allowed, name
            for value in row.values():
                assert value == round_significant(value, SIGNIFICANT_DIGITS)
