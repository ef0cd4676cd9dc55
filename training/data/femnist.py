"""FEMNIST (LEAF): NIST SD19 characters grouped by writer, split by writer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class WriterSamples:
    images: np.ndarray  # N×28×28 uint8, ink-high
    chars: np.ndarray  # N, the character of each image ('A', 'a', '7', …)
    writers: np.ndarray  # N, writer ids

    def subset(self, index: np.ndarray) -> WriterSamples:
        return WriterSamples(self.images[index], self.chars[index], self.writers[index])


def load_femnist(path: Path) -> WriterSamples:
    with np.load(path, allow_pickle=False) as data:
        classes = data["classes"]
        return WriterSamples(data["images"], classes[data["labels"]], data["writers"])


def writer_split(writers: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (train, validation) with no writer in both; the same seed gives the same split."""
    unique = np.unique(writers)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(len(unique) * val_fraction))
    val_writers = rng.permutation(unique)[:n_val]
    is_val = np.isin(writers, val_writers)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
