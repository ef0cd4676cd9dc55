"""Logits → probabilities → top-k labels. Pure numpy; labels come from the manifest only."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from contract.graphemes import grapheme_space, top_graphemes
from contract.manifest import Head

# A manifest's `composition` → how the heads' probabilities become whole answers, best first.
Composer = Callable[[Mapping[str, np.ndarray], Mapping[str, Sequence[str]], int], list[tuple[str, float]]]
COMPOSERS: dict[str, Composer] = {"bengali_grapheme": top_graphemes}
# … and every whole answer it can build, with the head indices of each (answers × heads).
Space = Callable[[Mapping[str, Sequence[str]]], tuple[list[str], np.ndarray]]
ANSWER_SPACES: dict[str, Space] = {"bengali_grapheme": grapheme_space}


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (shifted by the max, so large logits never overflow)."""
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=axis, keepdims=True)


def top_k_indexed(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[int, str, float]]:
    """The k most probable (class index, label, probability) of one sample, best first.

    Ties keep label order (stable sort), so the answer is deterministic.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 1 or probs.shape[0] != len(labels):
        raise ValueError(f"expected {len(labels)} probabilities, got shape {probs.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), labels[i], float(probs[i])) for i in order]


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k most probable (label, probability) pairs of one sample, best first."""
    return [(label, p) for _, label, p in top_k_indexed(probabilities, labels, k)]


def rank_heads(
    logits: Mapping[str, np.ndarray], heads: Sequence[Head], k: int, index: int = 0
) -> dict[str, list[tuple[str, float]]]:
    """Top-k of sample `index` for every head (k capped by each head's label count), in head order."""
    return {
        head.name: top_k(softmax(logits[head.name][index]), head.labels, min(k, len(head.labels)))
        for head in heads
    }


def head_probabilities(
    logits: Mapping[str, np.ndarray], heads: Sequence[Head], index: int = 0
) -> dict[str, np.ndarray]:
    """Softmax of sample `index` for every head, in head order."""
    return {head.name: softmax(logits[head.name][index]) for head in heads}


def compose_top_k(
    composition: str, probabilities: Mapping[str, np.ndarray], heads: Sequence[Head], k: int
) -> list[tuple[str, float]]:
    """The k best whole answers that `composition` builds from the heads (e.g. Bengali graphemes)."""
    return COMPOSERS[composition](probabilities, {head.name: head.labels for head in heads}, k)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def answer_log_probabilities(
    logits: Mapping[str, np.ndarray], heads: Sequence[Head], composition: str | None
) -> tuple[list[str], np.ndarray]:
    """Every whole answer's label and log-probability for each sample (N×answers): the first
    head's labels, or every answer the manifest's `composition` builds (the heads' log-probabilities
    summed, as `compose_top_k` multiplies their probabilities)."""
    if composition is None:
        return list(heads[0].labels), log_softmax(logits[heads[0].name])
    answers, indices = _answer_space(composition, tuple((head.name, tuple(head.labels)) for head in heads))
    total = sum(log_softmax(logits[head.name])[:, indices[:, h]] for h, head in enumerate(heads))
    return answers, np.asarray(total)


@functools.lru_cache(maxsize=8)
def _answer_space(
    composition: str, labels: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[list[str], np.ndarray]:
    """Built once per model: enumerating a composition's answers costs milliseconds."""
    return ANSWER_SPACES[composition](dict(labels))
