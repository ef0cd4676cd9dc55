"""Who wrote it: the query's mean embedding against each enrolled writer's mean, by cosine. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Match:
    writer_id: int
    score: float  # cosine similarity in [-1, 1]


def rank_writers(query: np.ndarray, writer_ids: list[int], means: np.ndarray, k: int) -> list[Match]:
    """The k enrolled writers whose mean is closest to the query's, best first."""
    if not writer_ids:
        return []
    scores = means @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [Match(writer_ids[i], float(scores[i])) for i in order]
