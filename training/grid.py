"""Experiment grids: every combination of named config variants, trained, then collected into a table.

A grid file (training/grids/*.yaml) names a base experiment config, the settings every run shares (the
documented reduced scale) and its axes — level name → config overrides. Each combination trains
(no export) in runs/grids/<grid>/<levels>/; a run already finished with the same config is reused, so a
long grid continues where it stopped. The report goes to docs/experiments/<grid>.{md,csv} + charts.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training import distributed
from training.config import REPO_ROOT, TrainConfig, apply_overrides, config_from_dict, merge, plain
from training.train import fit


@dataclass(frozen=True)
class GridSpec:
    name: str
    metric: str  # validation metric compared across runs, without the val_ prefix (e.g. score)
    axes: dict[str, dict[str, dict[str, Any]]]  # axis → level → config overrides
    base: str = ""  # experiment YAML, relative to the repository root
    fixed: dict[str, Any] = field(default_factory=dict)  # overrides shared by every run
    notes: str = ""


@dataclass(frozen=True)
class GridRun:
    levels: dict[str, str]  # axis → level
    config: TrainConfig

    @property
    def slug(self) -> str:
        return "__".join(
            re.sub(r"[^a-z0-9]+", "-", level.lower()).strip("-") for level in self.levels.values()
        )


def load_grid(path: Path) -> GridSpec:
    return GridSpec(**yaml.safe_load(path.read_text(encoding="utf-8")))


def expand(spec: GridSpec, overrides: list[str] | None = None) -> list[GridRun]:
    """The cartesian product of the axes' levels, in file order; `overrides` (key=value) apply last."""
    base = yaml.safe_load((REPO_ROOT / spec.base).read_text()) if spec.base else {}
    runs = []
    for combination in itertools.product(*(levels.items() for levels in spec.axes.values())):
        values = merge(base or {}, spec.fixed)
        for _, level_overrides in combination:
            values = merge(values, level_overrides or {})
        levels = {axis: level for axis, (level, _) in zip(spec.axes, combination, strict=True)}
        values["name"] = f"{spec.name}/" + " + ".join(levels.values())
        runs.append(GridRun(levels, config_from_dict(apply_overrides(values, list(overrides or [])))))
    return runs


def finished(run_dir: Path, cfg: TrainConfig) -> bool:
    """A summary exists and was made with this very config."""
    if not (run_dir / "summary.json").exists() or not (run_dir / "config.yaml").exists():
        return False
    return yaml.safe_load((run_dir / "config.yaml").read_text()) == plain(cfg.to_dict())


def result_row(run: GridRun, summary: dict[str, Any], metric: str) -> dict[str, Any]:
    train, val = summary[f"train_{metric}"], summary[f"val_{metric}"]
    return {
        **run.levels,
        f"val_{metric}": round(val, 4),
        f"train_{metric}": round(train, 4),
        "gap": round(train - val, 4),  # overfitting: train minus validation at the best epoch
        "best_epoch": summary["best_epoch"],
        "epochs": run.config.epochs,
        "train_minutes": round(summary.get("train_minutes", 0.0), 1),
        "hardware": summary.get("hardware", ""),
    }


def run_grid(
    spec: GridSpec, runs_dir: Path, overrides: list[str] | None = None, force: bool = False, command: str = ""
) -> list[dict[str, Any]]:
    """Train every run of the grid (skipping finished ones unless `force`); one result row per run."""
    rows = []
    runs = expand(spec, overrides)
    for i, run in enumerate(runs, 1):
        run_dir = runs_dir / spec.name / run.slug
        if distributed.current().is_main:
            print(f"[{i}/{len(runs)}] {run.config.name}")
        if force or not finished(run_dir, run.config):
            started = time.time()
            fit(run.config, run_dir, command=command)
            if distributed.current().is_main:
                summary = json.loads((run_dir / "summary.json").read_text())
                summary["train_minutes"] = (time.time() - started) / 60
                (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if distributed.current().is_main:
            rows.append(result_row(run, json.loads((run_dir / "summary.json").read_text()), spec.metric))
    return rows
