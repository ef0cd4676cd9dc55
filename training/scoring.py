"""One way to score an ONNX model: export, evaluate and quantize all measure with `score_splits`, so
the manifest's metrics (float and int8 alike) carry one set of names.

Scores the artefact the service runs (ONNX Runtime) on canvases preprocessed by the contract, with the
contract's own softmax and grapheme composition: what is measured is what a client gets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from contract.graphemes import compose, top_graphemes
from contract.manifest import Manifest
from contract.postprocessing import softmax
from contract.preprocessing import normalise
from training.data.datasets import CanvasDataset
from training.data.tasks import Split
from training.engine import classification_metrics

ONNX_BATCH = 512


@dataclass(frozen=True)
class Scored:
    """Canvases (N×S×S in [0, 1], before normalisation) and their targets per head."""

    canvases: np.ndarray
    targets: dict[str, np.ndarray]

    @classmethod
    def of(cls, split: Split, manifest: Manifest) -> Scored:
        """The split's images through the manifest's preprocessing."""
        dataset = CanvasDataset(split, manifest.preprocessing)
        return cls(dataset.canvases, {h: t.numpy() for h, t in dataset.targets.items()})


def onnx_logits(
    session: ort.InferenceSession, x: np.ndarray, input_name: str, outputs: dict[str, str]
) -> dict[str, np.ndarray]:
    """Logits per head (`outputs`: head → ONNX output name) over normalised `x`, run in batches."""
    chunks = [
        session.run(list(outputs.values()), {input_name: x[i : i + ONNX_BATCH]})
        for i in range(0, len(x), ONNX_BATCH)
    ]
    return {head: np.concatenate([c[j] for c in chunks]) for j, head in enumerate(outputs)}


def manifest_logits(
    session: ort.InferenceSession, manifest: Manifest, canvases: np.ndarray
) -> dict[str, np.ndarray]:
    """Logits per head of canvases in [0, 1], normalised as the manifest says."""
    outputs = {head.name: head.output for head in manifest.heads}
    return onnx_logits(session, normalise(canvases, manifest.preprocessing), manifest.input.name, outputs)


def score(
    session: ort.InferenceSession, manifest: Manifest, canvases: np.ndarray, targets: dict
) -> dict[str, float]:
    """classification_metrics (with the run's head weights) and, for graphemes, whole-grapheme top-1."""
    logits = manifest_logits(session, manifest, canvases)
    return metrics_of(manifest, logits, targets)


def metrics_of(manifest: Manifest, logits: dict[str, np.ndarray], targets: dict) -> dict[str, float]:
    """The metrics of given logits: what `score` reports, for callers that already ran the model."""
    metrics = classification_metrics(logits, targets, manifest.training.config.get("head_weights"))
    if manifest.composition == "bengali_grapheme":
        metrics["grapheme_top1"] = whole_grapheme_accuracy(manifest, logits, targets)
    return metrics


def whole_grapheme_accuracy(manifest: Manifest, logits: dict, targets: dict) -> float:
    """How often the service's first answer (top_graphemes) is the whole true grapheme, over the
    samples that know every head."""
    labels = {head.name: head.labels for head in manifest.heads}
    known = np.all([np.asarray(targets[h]) >= 0 for h in labels], axis=0)
    probabilities = {head: softmax(value[known], axis=1) for head, value in logits.items()}
    truth = [
        compose(*(labels[h][int(np.asarray(targets[h])[i])] for h in labels)) for i in np.flatnonzero(known)
    ]
    answers = [
        top_graphemes({h: p[i] for h, p in probabilities.items()}, labels, 1)[0][0] for i in range(len(truth))
    ]
    return float(np.mean([a == t for a, t in zip(answers, truth, strict=True)])) if truth else float("nan")


def score_splits(
    session: ort.InferenceSession, manifest: Manifest, splits: dict[str, Scored]
) -> dict[str, float]:
    """Metrics named as in the manifest (`val_letter_top1`, `mnist_test_samples`, …)."""
    metrics: dict[str, float] = {}
    for name, split in splits.items():
        found = score(session, manifest, split.canvases, split.targets)
        metrics |= {f"{name}_{k}": round(v, 5) for k, v in found.items()}
        metrics[f"{name}_samples"] = float(len(split.canvases))
    return metrics
