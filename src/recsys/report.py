"""A pull-request report in markdown: params and headline metrics diffs, and every `dvc plots` plot of both
revisions rendered to PNG with matplotlib (no browser, no CI service, no network).

``python -m src.recsys.report [BASE] [--out reports/pr]`` (or ``bash scripts/report.sh [BASE]``) compares the
workspace with ``BASE`` (default ``main``): ``dvc params diff`` and ``dvc metrics diff --md`` give the tables,
the plot CSVs of ``BASE`` are read with ``git show`` and those of the workspace from disk, and each plot
declared in dvc.yaml becomes one image with both revisions (curves: dashed = base, solid = workspace; bars:
side by side). Plots whose data did not change are listed in a folded section.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from .headline import markdown_table  # noqa: E402

WORKSPACE = "workspace"


@dataclass
class PlotSpec:
    path: str
    x: str
    y: list[str]
    template: str
    title: str

    @property
    def is_bar(self) -> bool:
        return self.template.startswith("bar_horizontal")

    @property
    def image_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "_", Path(self.path).with_suffix("").as_posix()).strip("_") + ".png"


def plot_specs(dvc_yaml: dict) -> list[PlotSpec]:
    """The top-level ``plots`` of dvc.yaml (one CSV each, with x, y, template and title)."""
    specs = []
    for entry in dvc_yaml.get("plots", []):
        (path, props), = entry.items()
        props = props or {}
        y = props.get("y", [])
        specs.append(PlotSpec(path, props.get("x", "step"), [y] if isinstance(y, str) else list(y),
                              props.get("template", "linear"), props.get("title", path)))
    return specs


def read_csv_text(text: str | None) -> pd.DataFrame | None:
    return None if text is None else pd.read_csv(io.StringIO(text))


def git_show(root: Path, rev: str, path: str) -> str | None:
    """A file's text at ``rev``, or None where it does not exist there."""
    result = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def workspace_text(root: Path, path: str) -> str | None:
    file = root / path
    return file.read_text() if file.exists() else None


def render_plot(spec: PlotSpec, frames: dict[str, pd.DataFrame], target: Path) -> None:
    """One PNG with every revision in ``frames`` (label -> data): curves overlaid, bar charts side by side."""
    if spec.is_bar:
        fig, axes = plt.subplots(1, len(frames), figsize=(6 * len(frames), 0.3 * _max_rows(frames) + 1.5),
                                 squeeze=False)
        for ax, (label, frame) in zip(axes[0], frames.items()):
            data = frame[[spec.y[0], spec.x]].dropna()
            if spec.template.endswith("sorted"):
                data = data.sort_values(spec.x)
            else:
                data = data.iloc[::-1]
            ax.barh(data[spec.y[0]].astype(str), data[spec.x], color="#55A868" if label == WORKSPACE else "#8C8C8C")
            ax.set(title=label, xlabel=spec.x)
            ax.tick_params(axis="y", labelsize=8)
        fig.suptitle(spec.title)
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for style, (label, frame) in zip(("--", "-") if len(frames) == 2 else ("-",), frames.items()):
            x = frame[spec.x]
            if not pd.api.types.is_numeric_dtype(x):
                x = pd.to_datetime(x)
            for colour, column in zip(colours, spec.y):
                if column in frame and frame[column].notna().any():
                    ax.plot(x, frame[column], style, color=colour, marker="o" if len(frame) < 20 else None,
                            label=f"{column} ({label})")
        ax.set(title=spec.title, xlabel=spec.x)
        ax.legend(fontsize=8)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=90)
    plt.close(fig)


def _max_rows(frames: dict[str, pd.DataFrame]) -> int:
    return max(len(frame) for frame in frames.values())


def run_dvc(root: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        return f"`dvc {' '.join(args)}` failed:\n\n```\n{result.stderr.strip()}\n```\n"
    table = result.stdout.strip()
    return table if len(table.splitlines()) > 2 else "(no change)"  # a header alone: nothing differs


def plots_section(root: Path, base: str, out_dir: Path) -> list[str]:
    """Render every plot of dvc.yaml; markdown lines, changed plots first, unchanged ones folded."""
    specs = plot_specs(yaml.safe_load((root / "dvc.yaml").read_text()))
    changed, unchanged = [], []
    for spec in specs:
        texts = {base: git_show(root, base, spec.path), WORKSPACE: workspace_text(root, spec.path)}
        frames = {label: read_csv_text(text) for label, text in texts.items() if text is not None}
        if not frames:
            continue
        same = texts[base] == texts[WORKSPACE]
        if same:
            frames = {WORKSPACE: frames[WORKSPACE]}
        render_plot(spec, frames, out_dir / spec.image_name)
        note = "" if texts[base] is not None else f" (new: not in `{base}`)"
        if texts[WORKSPACE] is None:
            note = " (removed in the workspace)"
        line = f"#### {spec.title}{note}\n\n![{spec.title}]({spec.image_name})\n"
        (unchanged if same else changed).append(line)
    lines = ["## Plots", "", f"Curves: dashed = `{base}`, solid = workspace. Bars: `{base}` left, workspace right.", ""]
    lines += changed or ["No plot data changed.", ""]
    if unchanged:
        lines += [f"<details><summary>{len(unchanged)} unchanged plots</summary>", "", *unchanged, "</details>", ""]
    return lines


def headline_tables(root: Path) -> list[str]:
    """The workspace's declared metrics files, each as a recommender x metric table."""
    lines = []
    for stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].values():
        for entry in stage.get("metrics", []):
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if (root / path).exists():
                payload = json.loads((root / path).read_text())
                if all(isinstance(row, dict) for row in payload.values()):
                    lines += [f"Workspace `{path}`:", "", markdown_table(payload), ""]
    return lines


def build_report(root: Path, base: str, out_dir: Path) -> Path:
    """Write ``out_dir/report.md`` and its images; returns the markdown file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    lines = [
        f"# Pipeline report: workspace vs `{base}`", "",
        "## Parameters (`dvc params diff`)", "", run_dvc(root, "params", "diff", base, "--md"), "",
        "## Headline metrics (`dvc metrics diff --md`)", "", run_dvc(root, "metrics", "diff", base, "--md"), "",
        *headline_tables(root),
        "Full detail (every k, MAP, MIUF, counters, ranker internals): `git diff " + base +
        " -- metrics/`.", "",
        *plots_section(root, base, out_dir),
    ]
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="main", help="git revision to compare the workspace with")
    parser.add_argument("--out", default="reports/pr", help="folder for report.md and the PNG images")
    args = parser.parse_args(argv)
    print(build_report(Path.cwd(), args.base, Path(args.out)))


if __name__ == "__main__":
    main()
