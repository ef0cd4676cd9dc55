"""The letter task: FEMNIST letters, upper and lower case merged (26 classes), split by writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.femnist import load_femnist, writer_split
from training.data.labels import LETTERS, merged_letter
from training.data.tasks import Split, TaskData, register_task


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
