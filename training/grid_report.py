"""A grid's report: docs/experiments/<grid>.csv, <grid>.md and the study's charts (PNG)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or in CI
import matplotlib.pyplot as plt
import numpy as np
import yaml

from training.grid import GridSpec


def by_level(rows: list[dict[str, Any]], axis: str, key: str) -> dict[str, list[float]]:
    """The values of `key` grouped by the levels of `axis`, in first-seen order."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        groups.setdefault(row[axis], []).append(row[key])
    return groups


def plot_scores(rows: list[dict[str, Any]], axis: str, metric: str, path: Path) -> None:
    """Best and mean validation metric per level of one axis (the study's bar charts)."""
    groups = by_level(rows, axis, f"val_{metric}")
    levels = list(groups)
    positions = np.arange(len(levels))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(levels)), 4))
    ax.bar(positions - 0.2, [max(v) for v in groups.values()], 0.4, label="best")
    ax.bar(positions + 0.2, [float(np.mean(v)) for v in groups.values()], 0.4, label="mean")
    ax.set_xticks(positions, levels, rotation=30, ha="right")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"validation {metric} by {axis}")
    values = [r[f"val_{metric}"] for r in rows]
    ax.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.03))
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_overfitting(rows: list[dict[str, Any]], axes: list[str], metric: str, path: Path) -> None:
    """Mean overfitting gap (train − validation) per level of every axis."""
    fig, panels = plt.subplots(1, len(axes), figsize=(5.5 * len(axes), 4), squeeze=False)
    for ax, axis in zip(panels[0], axes, strict=True):
        groups = by_level(rows, axis, "gap")
        ax.bar(list(groups), [float(np.mean(v)) for v in groups.values()], color="tab:red")
        ax.set_title(f"mean overfitting by {axis}")
        ax.set_ylabel(f"train − val {metric}")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines)


def level_summary(rows: list[dict[str, Any]], axis: str, metric: str) -> list[dict[str, Any]]:
    scores, gaps = by_level(rows, axis, f"val_{metric}"), by_level(rows, axis, "gap")
    return [
        {
            axis: level,
            f"best val_{metric}": round(max(v), 4),
            f"mean val_{metric}": round(float(np.mean(v)), 4),
            "mean gap": round(float(np.mean(gaps[level])), 4),
        }
        for level, v in scores.items()
    ]


def write_report(spec: GridSpec, rows: list[dict[str, Any]], out_dir: Path, command: str = "") -> Path:
    """<grid>.csv (one row per run), <grid>_by_<axis>.png, <grid>_overfitting.png and <grid>.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{spec.name}.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    axes = list(spec.axes)
    charts = []
    for axis in axes:
        chart = f"{spec.name}_by_{axis}.png"
        plot_scores(rows, axis, spec.metric, out_dir / chart)
        charts.append(chart)
    charts.append(f"{spec.name}_overfitting.png")
    plot_overfitting(rows, axes, spec.metric, out_dir / charts[-1])

    ranked = sorted(rows, key=lambda r: r[f"val_{spec.metric}"], reverse=True)
    sections = [
        f"# Experiment grid: {spec.name}",
        spec.notes.strip(),
        f"Base config `{spec.base}`; shared by every run:\n\n```yaml\n"
        + yaml.safe_dump(spec.fixed, sort_keys=False).strip()
        + "\n```",
        f"Reproduce: `{command}`" if command else "",
        f"## Runs, best validation `{spec.metric}` first\n\n"
        f"`gap` = train − validation `{spec.metric}` at the best epoch (train measured on a fixed "
        "un-augmented subset of the training split).\n\n" + markdown_table(ranked),
        *(f"## By {axis}\n\n" + markdown_table(level_summary(rows, axis, spec.metric)) for axis in axes),
        "## Charts\n\n" + "\n".join(f"![{chart}]({chart})" for chart in charts),
    ]
    path = out_dir / f"{spec.name}.md"
    path.write_text("\n\n".join(s for s in sections if s) + "\n", encoding="utf-8")
    return path
