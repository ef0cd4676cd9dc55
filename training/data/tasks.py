"""What each task trains on: its heads, label lists and train/validation splits, with provenance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data.femnist import load_femnist, writer_split
from training.data.labels import LETTERS, merged_letter


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
    val: Split
    provenance: list[dict] = field(default_factory=list)


_TASKS: dict[str, Callable[..., TaskData]] = {}


def register_task(name: str) -> Callable[[Callable[..., TaskData]], Callable[..., TaskData]]:
    def decorate(fn: Callable[..., TaskData]) -> Callable[..., TaskData]:
        _TASKS[name] = fn
        return fn

    return decorate


def load_task(name: str, data_dir: Path, val_fraction: float, seed: int) -> TaskData:
    if name not in _TASKS:
        raise KeyError(f"unknown task {name!r}; known: {sorted(_TASKS)}")
    return _TASKS[name](data_dir=data_dir, val_fraction=val_fraction, seed=seed)


@register_task("letter")
def letters(data_dir: Path, val_fraction: float, seed: int) -> TaskData:
    """FEMNIST letters, upper and lower case merged (26 classes), split by writer."""
    path = data_dir / "femnist" / "femnist.npz"
    samples = load_femnist(path)
    targets = np.array([-1 if (t := merged_letter(c)) is None else t for c in samples.chars])
    samples = samples.subset(np.flatnonzero(targets >= 0))
    targets = targets[targets >= 0]
    train, val = writer_split(samples.writers, val_fraction, seed)
    note = f"writer-disjoint split, {val_fraction:.0%} of writers held out (seed {seed})"
    provenance = [
        {
            "name": "FEMNIST letters (NIST SD19, LEAF)",
            "path": str(path),
            "split": split_name,
            "samples": len(index),
            "license": "NIST SD19 (public); LEAF BSD-2",
            "notes": f"{note}; {len(np.unique(samples.writers[index]))} writers",
        }
        for split_name, index in (("train", train), ("validation", val))
    ]
    return TaskData(
        heads={"letter": LETTERS},
        train=Split(samples.images[train], {"letter": targets[train]}),
        val=Split(samples.images[val], {"letter": targets[val]}),
        provenance=provenance,
    )
