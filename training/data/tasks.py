"""What each task trains on: its heads, label lists and train/validation splits, with provenance."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # N×H×W uint8 (any convention: preprocessing finds the ink)
    targets: dict[str, np.ndarray]  # head name → N class ids

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class TaskData:
    heads: dict[str, tuple[str, ...]]  # head name → labels; the first head is the task's answer
    train: Split
    val: Split  # chooses the best epoch
    provenance: list[dict] = field(default_factory=list)
    # Held-out test sets, never used for choosing: measured and recorded at export only.
    tests: dict[str, Split] = field(default_factory=dict)
    # How the service turns the heads into one answer (contract.manifest.Manifest.composition);
    # None: the first head.
    composition: str | None = None


_TASKS: dict[str, Callable[..., TaskData]] = {}


def register_task(name: str) -> Callable[[Callable[..., TaskData]], Callable[..., TaskData]]:
    def decorate(fn: Callable[..., TaskData]) -> Callable[..., TaskData]:
        _TASKS[name] = fn
        return fn

    return decorate


def load_task(
    name: str,
    data_dir: Path,
    val_fraction: float,
    seed: int,
    evaluation_only: bool = False,
    **task_kwargs: Any,
) -> TaskData:
    """The task's data; `task_kwargs` are the builder's own options (TrainConfig.task_kwargs). With
    `evaluation_only`, a builder that takes that flag may leave its training split empty."""
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; known: {sorted(_TASKS)}")
    builder = _TASKS[name]
    if evaluation_only and "evaluation_only" in inspect.signature(builder).parameters:
        task_kwargs = {**task_kwargs, "evaluation_only": True}
    return builder(data_dir=data_dir, val_fraction=val_fraction, seed=seed, **task_kwargs)
