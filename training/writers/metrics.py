"""Writer-identification metrics, numpy only.

Closed set: accuracy per character and over groups of g characters of one writer (their
log-probabilities summed, i.e. the product of probabilities; or a majority vote). Open set: enrol k
characters of each held-out writer (mean embedding), identify queries of q other characters (mean
embedding) among all of them by cosine; top-1 / top-5, and the verification equal-error rate of the
same scores (a query against its own writer: genuine; against every other writer: impostor).
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def writer_groups(y: np.ndarray, size: int, seed: int) -> list[np.ndarray]:
    """Each writer's samples shuffled and cut into disjoint groups of `size` (a remainder is dropped)."""
    rng = np.random.default_rng(seed)
    groups = []
    for writer in np.unique(y):
        own = rng.permutation(np.flatnonzero(y == writer))
        groups += [own[i : i + size] for i in range(0, len(own) - size + 1, size)]
    return groups


def grouped_accuracy(
    logits: np.ndarray, y: np.ndarray, size: int, vote: bool = False, seed: int = 0
) -> float:
    """Accuracy when `size` samples of one writer are judged together; nan when no writer has enough."""
    log_probs = log_softmax(logits)
    hits = []
    for group in writer_groups(y, size, seed):
        if vote:
            guess = np.bincount(log_probs[group].argmax(axis=1), minlength=logits.shape[1]).argmax()
        else:
            guess = log_probs[group].sum(axis=0).argmax()
        hits.append(guess == y[group[0]])
    return float(np.mean(hits)) if hits else float("nan")


def closed_set_report(
    logits: np.ndarray, y: np.ndarray, sizes: tuple[int, ...], seed: int = 0
) -> dict[str, float]:
    report = {"top1": float((logits.argmax(axis=1) == y).mean())}
    top5 = np.argsort(-logits, axis=1)[:, :5]
    report["top5"] = float((top5 == y[:, None]).any(axis=1).mean())
    for size in sizes:
        report[f"top1_over_{size}"] = grouped_accuracy(logits, y, size, seed=seed)
        report[f"top1_over_{size}_vote"] = grouped_accuracy(logits, y, size, vote=True, seed=seed)
    return report


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false-accept rate (impostor ≥ t) meets the false-reject rate
    (genuine < t), scanning every observed score as the threshold."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    genuine, impostor = np.sort(genuine), np.sort(impostor)
    frr = np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    far = 1 - np.searchsorted(impostor, thresholds, side="left") / len(impostor)
    best = int(np.argmin(np.abs(far - frr)))
    return float((far[best] + frr[best]) / 2), float(thresholds[best])


def enrol_identify(
    embeddings: np.ndarray, writers: np.ndarray, enrol: int, query: int, seed: int = 0
) -> dict[str, float]:
    """One (k enrolled, q per query) cell: every writer with ≥ k + q samples enrols its first k
    (after a seeded shuffle) and is queried with each disjoint group of q of the rest."""
    rng = np.random.default_rng(seed)
    gallery, queries, truth = [], [], []
    for writer in np.unique(writers):
        own = rng.permutation(np.flatnonzero(writers == writer))
        if len(own) < enrol + query:
            continue
        index = len(gallery)
        gallery.append(unit(embeddings[own[:enrol]].mean(axis=0)))
        rest = own[enrol:]
        for i in range(0, len(rest) - query + 1, query):
            queries.append(unit(embeddings[rest[i : i + query]].mean(axis=0)))
            truth.append(index)
    if len(gallery) < 2 or not queries:
        return {"writers": float(len(gallery)), "queries": float(len(queries))}
    scores = np.stack(queries) @ np.stack(gallery).T
    truth_arr = np.asarray(truth)
    ranked = np.argsort(-scores, axis=1)
    genuine_mask = np.zeros_like(scores, dtype=bool)
    genuine_mask[np.arange(len(truth_arr)), truth_arr] = True
    eer, threshold = equal_error_rate(scores[genuine_mask], scores[~genuine_mask])
    return {
        "writers": float(len(gallery)),
        "queries": float(len(queries)),
        "top1": float((ranked[:, 0] == truth_arr).mean()),
        "top5": float((ranked[:, :5] == truth_arr[:, None]).any(axis=1).mean()),
        "eer": eer,
        "eer_threshold": threshold,
    }


def open_set_report(
    embeddings: np.ndarray,
    writers: np.ndarray,
    enrols: tuple[int, ...],
    queries: tuple[int, ...],
    seed: int = 0,
) -> dict[str, float]:
    """`k{enrol}_q{query}_{metric}` for every cell of the grid."""
    report = {}
    for k in enrols:
        for q in queries:
            for name, value in enrol_identify(embeddings, writers, k, q, seed).items():
                report[f"k{k}_q{q}_{name}"] = value
    return report
