"""The PR report renders every dvc.yaml plot of two revisions to PNG without a browser."""
from __future__ import annotations

import pandas as pd
import yaml

from tests.helpers import REPO_ROOT
from src.recsys.report import PlotSpec, plot_specs, read_csv_text, render_plot

PNG = b"\x89PNG"


def test_plot_specs_of_the_pipeline():
    specs = {spec.path: spec for spec in plot_specs(yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text()))}
    assert specs["metrics/evaluation/ndcg.csv"].y == ["top_popular", "personal_als", "final", "oracle"]
    importance = specs["metrics/ranker/feature_importance.csv"]
    assert importance.is_bar and importance.y == ["feature"]
    assert importance.image_name == "metrics_ranker_feature_importance.png"


def test_render_curves_and_bars_of_two_revisions(tmp_path):
    curves = PlotSpec("metrics/evaluation/ndcg.csv", "k", ["als", "final"], "linear", "NDCG@k")
    base = read_csv_text("k,als,final\n5,0.2,0.3\n10,0.18,0.28\n")
    head = pd.DataFrame({"k": [5, 10], "als": [0.21, 0.19], "final": [float("nan")] * 2})
    render_plot(curves, {"main": base, "workspace": head}, tmp_path / "curves.png")
    bars = PlotSpec("metrics/eda/top.csv", "listens", ["name"], "bar_horizontal_sorted", "Top")
    render_plot(bars, {"workspace": pd.DataFrame({"name": ["a", "b"], "listens": [3, 5]})}, tmp_path / "bars.png")
    events = PlotSpec("metrics/eda/events_per_day.csv", "date", ["events"], "linear", "Events")
    render_plot(events, {"main": read_csv_text("date,events\n2022-01-01,3\n2022-01-02,4\n")}, tmp_path / "days.png")
    for name in ("curves.png", "bars.png", "days.png"):
        assert (tmp_path / name).read_bytes()[:4] == PNG
