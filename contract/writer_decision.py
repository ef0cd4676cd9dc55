"""Who wrote it, and whether it is anyone enrolled: the writer decision, shared by the service and
the calibration that sets it (training/writers/calibrate.py).

A query of q characters by one hand is the mean direction of their embeddings; each enrolled writer
is the mean direction of their k enrolled characters; the score is the cosine of the two. The best
writer is named when its score reaches a threshold, else the answer is "unknown".

Why the threshold depends on both counts: a mean over more characters is a steadier estimate of a
hand, so its cosine to the right writer and to the closest wrong one both rise with q and with k.
One threshold for every count either rejects most short queries of enrolled writers or accepts
nearly every long query of a stranger. The calibration measures, on writers the embedder never
trained on, the threshold that rejects a fixed share of enrolled writers' queries (the false-reject
rate) for each (k, q) on a grid, and serving interpolates that table in (log k, log q).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

# The enrolment size assumed when a caller cannot say how many characters the best writer has.
DEFAULT_ENROLLED = 20


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length; a zero vector stays zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def profile(embeddings: np.ndarray) -> np.ndarray:
    """Unit embeddings (N×dim) of one writer's characters → their mean direction (unit length):
    an enrolled writer's profile or a query's. The same as the service's `mean_embedding`."""
    return unit(np.asarray(embeddings, np.float32).mean(axis=0))


def scores(query: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Cosine of a query's profile to each enrolled writer's (K×dim unit rows)."""
    if len(means) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(means @ query, np.float32)


class OpenSetCalibration(BaseModel):
    """Thresholds on the best writer's score, one per (enrolled, query) character count, each set
    so that `false_reject` of enrolled writers' queries score below it on the calibration writers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    false_reject: float = Field(gt=0.0, lt=1.0)
    enrolled: tuple[int, ...] = Field(min_length=1)  # ascending
    query: tuple[int, ...] = Field(min_length=1)  # ascending
    thresholds: tuple[tuple[float, ...], ...]  # thresholds[i][j]: enrolled[i], query[j]
    default_enrolled: int = Field(default=DEFAULT_ENROLLED, ge=1)
    writers: int = Field(default=0, ge=0)  # calibration writers (none of them trained on)
    source: str = ""  # how the table was measured (data, split, seed, command)

    @model_validator(mode="after")
    def _grid(self) -> OpenSetCalibration:
        for name in ("enrolled", "query"):
            counts = getattr(self, name)
            if counts[0] < 1 or any(b <= a for a, b in itertools.pairwise(counts)):
                raise ValueError(f"{name} must be positive and strictly ascending, got {counts}")
        shape = (len(self.enrolled), len(self.query))
        if len(self.thresholds) != shape[0] or any(len(row) != shape[1] for row in self.thresholds):
            raise ValueError(f"thresholds must be {shape[0]}×{shape[1]} (enrolled × query)")
        if any(not -1.0 <= t <= 1.0 for row in self.thresholds for t in row):
            raise ValueError("thresholds are cosine scores, within [-1, 1]")
        return self

    def threshold(self, characters: int, enrolled: int | None = None) -> float:
        """The table bilinearly interpolated in (log enrolled, log characters), held at its edges;
        `default_enrolled` when the caller does not know the best writer's enrolment size."""
        k = np.log(max(enrolled if enrolled is not None else self.default_enrolled, 1))
        q = np.log(max(characters, 1))
        table = np.asarray(self.thresholds, np.float64)
        log_k, log_q = np.log(self.enrolled), np.log(self.query)
        by_query = [float(np.interp(q, log_q, row)) for row in table]  # along q, per enrolled row
        return float(np.interp(k, log_k, by_query))


@dataclass(frozen=True)
class Decision:
    order: np.ndarray  # indices into the enrolled writers, best first
    scores: np.ndarray  # cosine per enrolled writer, in their given order
    threshold: float
    known: bool  # the best writer reached the threshold


def decide(best: float | None, threshold: float) -> bool:
    """Known when there is a best writer and its score reaches the threshold."""
    return best is not None and best >= threshold


def identify(
    query_embeddings: np.ndarray,
    means: np.ndarray,
    calibration: OpenSetCalibration,
    enrolled: np.ndarray | None = None,
) -> Decision:
    """The whole decision for one query: its profile, its score to each enrolled writer, and
    whether the best of them is known at that writer's enrolment size (`enrolled`, one count per
    writer; the calibration's default size when absent)."""
    s = scores(profile(query_embeddings), means)
    order = np.argsort(-s, kind="stable")
    if len(order) == 0:
        return Decision(order, s, calibration.threshold(len(query_embeddings)), False)
    k = None if enrolled is None else int(enrolled[order[0]])
    threshold = calibration.threshold(len(query_embeddings), k)
    return Decision(order, s, threshold, decide(float(s[order[0]]), threshold))
