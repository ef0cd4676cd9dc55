"""Logits → probabilities → top-k labels. Pure numpy; labels come from the manifest only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from app.manifest import Head


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (shifted by the max, so large logits never overflow)."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k most probable (label, probability) pairs of one sample, best first.

    Ties keep label order (stable sort), so the answer is deterministic.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 1 or probs.shape[0] != len(labels):
        raise ValueError(f"expected {len(labels)} probabilities, got shape {probs.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


def rank_heads(
    logits: Mapping[str, np.ndarray], heads: Sequence[Head], k: int, index: int = 0
) -> dict[str, list[tuple[str, float]]]:
    """Top-k of sample `index` for every head (k capped by each head's label count), in head order."""
    return {
        head.name: top_k(softmax(logits[head.name][index]), head.labels, min(k, len(head.labels)))
        for head in heads
    }
