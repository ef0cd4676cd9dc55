"""FEMNIST by writer: the closed-set split within each writer and the open-set split between writers.

Images become model inputs here, once: through the service's own preprocessing (`input: service`,
what the API feeds the embedding model) or as the raw 28×28 scan (`input: raw`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.preprocessing import normalise
from training.data.datasets import render_canvases
from training.data.femnist import WriterSamples, load_femnist
from training.data.handwritten_graphemes import load_banglalekha
from training.writers.config import WriterConfig

RAW_MEAN, RAW_STD = 0.1, 0.3  # of FEMNIST scans in [0, 1]: ink is sparse


@dataclass(frozen=True)
class WriterSet:
    """Model inputs (N×1×S×S float32) and their writer, as class indices and as original ids."""

    x: np.ndarray
    y: np.ndarray  # int64 class index of the writer within this experiment
    writer_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> WriterSet:
        return WriterSet(self.x[index], self.y[index], self.writer_ids[index])


def prepare_inputs(images: np.ndarray, cfg: WriterConfig) -> tuple[np.ndarray, np.ndarray]:
    """Images → model inputs and the indices kept (the service's preprocessing drops blank ones)."""
    if cfg.input == "raw":
        x = (images.astype(np.float32) / 255.0 - RAW_MEAN) / RAW_STD
        return x[:, None], np.arange(len(images))
    if cfg.input != "service":
        raise ValueError(f"input must be 'service' or 'raw', got {cfg.input!r}")
    canvases, kept = render_canvases(images, cfg.preprocess)
    return normalise(canvases, cfg.preprocess), kept


def limit_samples(samples: WriterSamples, cfg: WriterConfig, writers: np.ndarray) -> WriterSamples:
    """Only these writers, and at most `limit_per_writer` samples of each (smoke runs)."""
    index = np.flatnonzero(np.isin(samples.writers, writers))
    if cfg.limit_per_writer > 0:
        rng = np.random.default_rng(cfg.seed)
        index = np.concatenate(
            [rng.permutation(index[samples.writers[index] == w])[: cfg.limit_per_writer] for w in writers]
        )
    return samples.subset(np.sort(index))


def most_prolific(writers: np.ndarray, n: int) -> np.ndarray:
    """The n writers with the most samples (ties broken by id, so the choice is reproducible)."""
    ids, counts = np.unique(writers, return_counts=True)
    order = np.lexsort((ids, -counts))
    return ids[order[:n]]


def split_within_writers(y: np.ndarray, fractions: tuple[float, float, float], seed: int) -> list[np.ndarray]:
    """Indices of train / val / test: each writer's own samples shuffled and cut at the fractions,
    so every writer is in every split (the study's writer-internal protocol)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    cuts = np.cumsum(fractions)[:2] / sum(fractions)
    for writer in np.unique(y):
        index = rng.permutation(np.flatnonzero(y == writer))
        bounds = np.round(cuts * len(index)).astype(int)
        for part, chunk in zip(parts, np.split(index, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def split_writers(writers: np.ndarray, train: float, val: float, seed: int) -> list[np.ndarray]:
    """Writer ids for train / val / held-out: no writer in two of them."""
    ids = np.random.default_rng(seed).permutation(np.unique(writers))
    n_train, n_val = round(len(ids) * train), round(len(ids) * val)
    return [ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]]


def to_writer_set(samples: WriterSamples, cfg: WriterConfig, classes: np.ndarray) -> WriterSet:
    x, kept = prepare_inputs(samples.images, cfg)
    writer_ids = samples.writers[kept]
    return WriterSet(x, np.searchsorted(classes, writer_ids).astype(np.int64), writer_ids)


def femnist_closed(cfg: WriterConfig) -> tuple[WriterSet, WriterSet, WriterSet, np.ndarray]:
    """(train, val, test, writer ids by class) for the top-N writers, split within each writer."""
    samples = load_femnist(cfg.data_path / "femnist" / "femnist.npz")
    classes = np.sort(most_prolific(samples.writers, cfg.limit_writers or cfg.top_writers))
    data = to_writer_set(limit_samples(samples, cfg, classes), cfg, classes)
    train, val, test = split_within_writers(data.y, cfg.split, cfg.seed)
    return data.subset(train), data.subset(val), data.subset(test), classes


def extra_writers(cfg: WriterConfig) -> WriterSamples | None:
    """The extra training hands `cfg.extra_writers` names (ids prefixed so none meets a FEMNIST id)."""
    if not cfg.extra_writers:
        return None
    if cfg.extra_writers != "banglalekha":
        raise ValueError(f"extra_writers must be '' or 'banglalekha', got {cfg.extra_writers!r}")
    roots = load_banglalekha(cfg.data_path)
    keep = np.arange(len(roots.writers))
    if cfg.extra_per_writer > 0:  # a seeded `extra_per_writer` of each writer's characters
        order = np.random.default_rng(cfg.seed).permutation(len(keep))
        order = order[np.argsort(roots.writers[order], kind="stable")]
        starts = np.searchsorted(roots.writers[order], roots.writers[order], side="left")
        keep = np.sort(order[np.arange(len(order)) - starts < cfg.extra_per_writer])
    writers = np.char.add("bl", roots.writers[keep].astype(str))
    return WriterSamples(roots.images[keep], roots.roots[keep].astype(str), writers)


def femnist_open(cfg: WriterConfig) -> tuple[WriterSet, WriterSet, WriterSet]:
    """(train, val, held-out) by writer; labels index the training writers (others: their rank).
    Extra hands (`extra_writers`) only ever join the training writers."""
    samples = load_femnist(cfg.data_path / "femnist" / "femnist.npz")
    writers = np.unique(samples.writers)
    if cfg.limit_writers:
        writers = np.random.default_rng(cfg.seed).permutation(writers)[: cfg.limit_writers]
    samples = limit_samples(samples, cfg, writers)
    parts = split_writers(samples.writers, cfg.train_writers, cfg.val_writers, cfg.seed)
    extra = extra_writers(cfg)
    if extra is not None:  # their ids join the training writers', so one label space covers both
        parts[0] = np.concatenate([parts[0], np.unique(extra.writers)])
    sets = []
    for ids in parts:
        ids = np.sort(ids)
        sets.append(to_writer_set(samples.subset(np.flatnonzero(np.isin(samples.writers, ids))), cfg, ids))
    if extra is None:
        return sets[0], sets[1], sets[2]
    # Rendered apart: their images are another size than FEMNIST's until preprocessing.
    joined = to_writer_set(extra, cfg, np.sort(parts[0]))
    train = WriterSet(
        np.concatenate([sets[0].x, joined.x]),
        np.concatenate([sets[0].y, joined.y]),
        np.concatenate([sets[0].writer_ids, joined.writer_ids]),
    )
    return train, sets[1], sets[2]
