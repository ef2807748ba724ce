"""PNG figures for the EDA report (matplotlib without a display)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402


def save(fig: plt.Figure, target: Path) -> None:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def histogram_figure(hist: pd.DataFrame, title: str, xlabel: str, target: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(range(len(hist)), hist["count"], color="#4C72B0")
    ticks = range(0, len(hist), max(1, len(hist) // 10))
    ax.set_xticks(list(ticks), [str(hist["listens_from"].iloc[i]) for i in ticks], rotation=45)
    ax.set(title=title, xlabel=xlabel, ylabel="count", yscale="log")
    save(fig, target)


def line_figure(frame: pd.DataFrame, x: str, y: str, title: str, target: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(pd.to_datetime(frame[x]), frame[y], color="#4C72B0")
    ax.set(title=title, xlabel=x, ylabel=y)
    save(fig, target)


def bar_figure(frame: pd.DataFrame, label: str, value: str, title: str, target: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(frame[label].astype(str)[::-1], frame[value][::-1], color="#55A868")
    ax.set(title=title, xlabel=value)
    save(fig, target)
