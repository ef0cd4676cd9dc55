"""Who wrote it: the query's mean embedding against each enrolled writer's mean, by cosine. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.writers.embedder import l2_normalise


@dataclass(frozen=True)
class Match:
    writer_id: int
    score: float  # cosine similarity in [-1, 1]


def mean_embedding(embeddings: np.ndarray) -> np.ndarray:
    """Unit vectors (N×dim) → their mean direction (unit length): a writer's or a query's profile."""
    return l2_normalise(embeddings.mean(axis=0))


def rank_writers(query: np.ndarray, writer_ids: list[int], means: np.ndarray, k: int) -> list[Match]:
    """The k enrolled writers whose mean is closest to the query's, best first."""
    if not writer_ids:
        return []
    scores = means @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [Match(writer_ids[i], float(scores[i])) for i in order]
