"""The PR report renders every dvc.yaml plot of two revisions to PNG without a browser."""
from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from src.recsys import report
from src.recsys.report import PlotSpec, plot_specs, read_csv_text, render_plot
from tests.helpers import REPO_ROOT

DPI = 90  # render_plot's
CURVES = PlotSpec("metrics/evaluation/ndcg.csv", "k", ["als", "final"], "linear", "NDCG@k")
BARS = PlotSpec("metrics/eda/top.csv", "listens", ["name"], "bar_horizontal_sorted", "Top")


@pytest.fixture
def figures(monkeypatch) -> list:
    """Every figure render_plot draws, kept for inspection (it closes each one after saving)."""
    drawn, close = [], report.plt.close

    def keep(fig):
        drawn.append(fig)
        close(fig)

    monkeypatch.setattr(report.plt, "close", keep)
    return drawn


def pixels(path) -> np.ndarray:
    assert path.read_bytes()[:4] == b"\x89PNG"
    return matplotlib.image.imread(path)


def test_plot_specs_of_the_pipeline():
    specs = {spec.path: spec for spec in plot_specs(yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text()))}
    assert specs["metrics/evaluation/ndcg.csv"].y == ["top_popular", "personal_als", "final", "oracle"]
    importance = specs["metrics/ranker/feature_importance.csv"]
    assert importance.is_bar and importance.y == ["feature"]
    assert importance.image_name == "metrics_ranker_feature_importance.png"


def test_curves_overlay_both_revisions_and_leave_out_empty_series(tmp_path, figures):
    base = read_csv_text("k,als,final\n5,0.2,0.3\n10,0.18,0.28\n")
    head = pd.DataFrame({"k": [5, 10], "als": [0.21, 0.19], "final": [float("nan")] * 2})
    render_plot(CURVES, {"main": base, "workspace": head}, tmp_path / "curves.png")
    assert pixels(tmp_path / "curves.png").shape[:2] == (round(4.5 * DPI), 8 * DPI)
    (ax,) = figures[-1].axes
    lines = {line.get_label(): (line.get_linestyle(), line.get_ydata().tolist()) for line in ax.get_lines()}
    assert lines == {"als (main)": ("--", [0.2, 0.18]), "final (main)": ("--", [0.3, 0.28]),
                     "als (workspace)": ("-", [0.21, 0.19])}  # the all-NaN workspace "final" is not drawn
    assert ax.get_title() == "NDCG@k" and ax.get_xlabel() == "k"


def test_bars_put_revisions_side_by_side_sorted_by_value(tmp_path, figures):
    render_plot(BARS, {"workspace": pd.DataFrame({"name": ["b", "a", "c"], "listens": [5, 3, 4]})}, tmp_path / "one.png")
    (ax,) = figures[-1].axes
    assert [bar.get_width() for bar in ax.patches] == [3, 4, 5]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["a", "c", "b"]
    one = pixels(tmp_path / "one.png")
    two_revisions = {"main": pd.DataFrame({"name": ["a"], "listens": [1]}),
                     "workspace": pd.DataFrame({"name": ["b", "a", "c"], "listens": [5, 3, 4]})}
    render_plot(BARS, two_revisions, tmp_path / "two.png")
    assert [ax.get_title() for ax in figures[-1].axes] == ["main", "workspace"]
    two = pixels(tmp_path / "two.png")
    assert one.shape[:2] == (round((0.3 * 3 + 1.5) * DPI), 6 * DPI) and two.shape[:2] == (one.shape[0], 12 * DPI)


def test_the_image_shows_the_data_same_input_same_pixels(tmp_path):
    days = PlotSpec("metrics/eda/events_per_day.csv", "date", ["events"], "linear", "Events")
    data = "date,events\n2022-01-01,3\n2022-01-02,4\n"
    render_plot(days, {"main": read_csv_text(data)}, tmp_path / "a.png")
    render_plot(days, {"main": read_csv_text(data)}, tmp_path / "b.png")
    render_plot(days, {"main": read_csv_text(data.replace(",4\n", ",9\n"))}, tmp_path / "c.png")
    a, b, c = (pixels(tmp_path / name) for name in ("a.png", "b.png", "c.png"))
    assert np.array_equal(a, b) and a.shape == c.shape and not np.array_equal(a, c)
