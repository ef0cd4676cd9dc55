"""The digit task: MNIST train + FEMNIST digits (split by writer); the official MNIST test set is held out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.femnist import load_femnist, writer_split
from training.data.idx import load_idx_pair
from training.data.labels import DIGITS
from training.data.tasks import Split, TaskData, register_task

MNIST_LICENSE = "CC BY-SA 3.0"
FEMNIST_LICENSE = "NIST SD19 (public); LEAF BSD-2"


def load_mnist(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = {"train": "train", "test": "t10k"}[split]
    root = data_dir / "mnist"
    return load_idx_pair(root / f"{prefix}-images-idx3-ubyte.gz", root / f"{prefix}-labels-idx1-ubyte.gz")


@register_task("digit")
def digits(data_dir: Path, val_fraction: float, seed: int) -> TaskData:
    femnist_path = data_dir / "femnist" / "femnist.npz"
    samples = load_femnist(femnist_path)
    samples = samples.subset(np.flatnonzero(np.isin(samples.chars, DIGITS)))
    targets = np.array([DIGITS.index(c) for c in samples.chars])
    train, val = writer_split(samples.writers, val_fraction, seed)
    mnist_x, mnist_y = load_mnist(data_dir, "train")
    test_x, test_y = load_mnist(data_dir, "test")

    def femnist_record(split: str, index: np.ndarray) -> dict:
        writers = len(np.unique(samples.writers[index]))
        note = f"FEMNIST digits, writer-disjoint split, {val_fraction:.0%} of writers held out (seed {seed})"
        return {
            "name": "FEMNIST digits (NIST SD19, LEAF)",
            "path": str(femnist_path),
            "split": split,
            "samples": len(index),
            "license": FEMNIST_LICENSE,
            "notes": f"{note}; {writers} writers",
        }

    provenance = [
        {
            "name": "MNIST",
            "path": str(data_dir / "mnist"),
            "split": "train",
            "samples": len(mnist_x),
            "license": MNIST_LICENSE,
            "notes": "official training set (grey levels recovered through a tone curve, labels exact)",
        },
        femnist_record("train", train),
        femnist_record("validation", val),
        {
            "name": "MNIST",
            "path": str(data_dir / "mnist"),
            "split": "test (mnist_test)",
            "samples": len(test_x),
            "license": MNIST_LICENSE,
            "notes": "official test set: held out, measured only at export",
        },
    ]
    return TaskData(
        heads={"digit": DIGITS},
        train=Split(
            np.concatenate([mnist_x, samples.images[train]]),
            {"digit": np.concatenate([mnist_y, targets[train]])},
        ),
        val=Split(samples.images[val], {"digit": targets[val]}),
        provenance=provenance,
        tests={"mnist_test": Split(test_x, {"digit": test_y})},
    )
