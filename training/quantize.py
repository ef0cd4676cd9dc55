"""`python -m training quantize MODEL_DIR`: a static int8 copy of an exported model, kept only on merit.

The float model is quantised with ONNX Runtime (QDQ, uint8 activations, int8 per-channel weights),
calibrated on the task's own training images preprocessed as in training. Float and int8 are then scored
by the same function on the same validation and test samples; `model.int8.onnx` and a `variants.int8`
manifest entry record the result. The entry says whether the primary validation metric dropped by at
most `max_drop` points: the service serves int8 (HWR_MODEL_VARIANT=int8) only when it did. Re-running
replaces file and entry.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from contract.manifest import Manifest, ModelVariant, sha256_of
from contract.preprocessing import normalise
from training.config import config_from_dict
from training.data.datasets import CanvasDataset
from training.data.loading import load_data
from training.data.tasks import Split
from training.scoring import Scored, score_splits

VARIANT = "int8"
INT8_FILE = "model.int8.onnx"
DEFAULT_CALIBRATION = 2000
DEFAULT_MAX_DROP = 0.3  # percentage points of the primary validation metric
CALIBRATION_BATCH = 64


@dataclass(frozen=True)
class QuantizationData:
    calibration: np.ndarray  # N×S×S canvases from the training split
    splits: dict[str, Scored]  # "val" first, then the task's test sets


@dataclass(frozen=True)
class QuantizationResult:
    manifest: Manifest
    variant: ModelVariant
    float_metrics: dict[str, float]


def load_quantization_data(
    model_dir: Path, data_dir: Path | None, calibration: int = DEFAULT_CALIBRATION, seed: int = 0
) -> QuantizationData:
    """A random `calibration`-sample subset of the training split, and the validation and test splits,
    preprocessed as at export (only the subset is rendered: the whole training set would take minutes)."""
    manifest = Manifest.load(model_dir)
    cfg = config_from_dict(manifest.training.config)
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    data = load_data(cfg)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(data.train), size=min(calibration, len(data.train)), replace=False))
    subset = Split(data.train.images[chosen], {h: t[chosen] for h, t in data.train.targets.items()})
    splits = {name: Scored.of(split, manifest) for name, split in {"val": data.val, **data.tests}.items()}
    return QuantizationData(CanvasDataset(subset, manifest.preprocessing).canvases, splits)


class _CanvasReader(CalibrationDataReader):
    """Feeds the calibrator normalised batches, exactly what the service would feed the model."""

    def __init__(self, manifest: Manifest, canvases: np.ndarray) -> None:
        self._x = normalise(canvases, manifest.preprocessing)
        self._name = manifest.input.name
        self._batches: Iterator[dict[str, np.ndarray]] = self._iterate()

    def _iterate(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(0, len(self._x), CALIBRATION_BATCH):
            yield {self._name: self._x[i : i + CALIBRATION_BATCH]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = self._iterate()


def primary_metric(manifest: Manifest) -> str:
    """The validation metric that picked the training epoch (training.train: select_metric)."""
    chosen = manifest.training.config.get("select_metric") or f"{manifest.heads[0].name}_top1"
    return f"val_{chosen}"


def quantize_onnx(manifest: Manifest, source: Path, target: Path, calibration: np.ndarray) -> None:
    """Static QDQ int8 of `source`: unsigned activations × signed per-channel weights, min–max calibrated.

    U8S8 because x86 runs it on VNNI / VPMADDUBSW kernels: on our Xeon S8S8 was 1.3× slower than float,
    U8S8 2.7× faster (docs/quantization.md)."""
    if len(calibration) == 0:
        raise ValueError("no calibration samples")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference + graph optimisation first, as ONNX Runtime's quantisation guide advises.
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            prepared,
            target,
            _CanvasReader(manifest, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )


def cpu_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def check_same_signature(reference: ort.InferenceSession, candidate: ort.InferenceSession) -> None:
    """The served contract (app.inference.OnnxClassifier) checks names, types and shapes: keep them."""

    def signature(session: ort.InferenceSession) -> list[tuple[str, str, str]]:
        args = [*session.get_inputs(), *session.get_outputs()]
        return [(a.name, a.type, str(a.shape)) for a in args]

    if signature(reference) != signature(candidate):
        raise RuntimeError(f"int8 graph {signature(candidate)} differs from float {signature(reference)}")


def quantize_model(
    model_dir: Path, data: QuantizationData, max_drop: float = DEFAULT_MAX_DROP, command: str = ""
) -> QuantizationResult:
    """Quantise, score float and int8 alike, write `model.int8.onnx` and the manifest's `variants.int8`."""
    manifest = Manifest.load(model_dir)
    source = model_dir / manifest.onnx.file
    if sha256_of(source) != manifest.onnx.sha256:
        raise RuntimeError(f"{source}: sha256 does not match its manifest; re-export before quantising")
    target = model_dir / INT8_FILE
    # Written beside the target and renamed once all checks pass: a reader never sees half a file.
    partial = target.with_suffix(".partial")
    try:
        quantize_onnx(manifest, source, partial, data.calibration)
        float_session, int8_session = cpu_session(source), cpu_session(partial)
        check_same_signature(float_session, int8_session)
        float_metrics = score_splits(float_session, manifest, data.splits)
        int8_metrics = score_splits(int8_session, manifest, data.splits)
        samples = len(data.calibration)
        variant = _variant(manifest, partial, float_metrics, int8_metrics, max_drop, samples, command)
        # Re-read: refuse to attach the variant to a model exported while this ran.
        current = Manifest.load(model_dir)
        if current.onnx.sha256 != manifest.onnx.sha256:
            raise RuntimeError(f"{model_dir}: {manifest.onnx.file} was replaced while quantising; run again")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    updated = current.model_copy(update={"variants": {**current.variants, VARIANT: variant}})
    updated = Manifest.model_validate(updated.model_dump())  # model_copy skips validation
    updated.save(model_dir)
    return QuantizationResult(updated, variant, float_metrics)


def _variant(
    manifest: Manifest,
    path: Path,
    float_metrics: dict[str, float],
    int8_metrics: dict[str, float],
    max_drop: float,
    calibration_samples: int,
    command: str,
) -> ModelVariant:
    primary = primary_metric(manifest)
    if primary not in int8_metrics:
        raise RuntimeError(f"primary metric {primary} not measured: {sorted(int8_metrics)}")
    # Every metric the scorer gives: the manifest's names, plus e.g. whole-grapheme top-1.
    delta = {k: round(v - float_metrics[k], 5) for k, v in int8_metrics.items() if not k.endswith("_samples")}
    return ModelVariant(
        file=INT8_FILE,
        sha256=sha256_of(path),
        metrics=int8_metrics,
        delta=delta,
        primary_metric=primary,
        max_drop_points=max_drop,
        # A drop of at most max_drop points (1e-9: float noise in the comparison, not in the metric).
        within_tolerance=-delta[primary] * 100 <= max_drop + 1e-9,
        calibration_samples=calibration_samples,
        command=command,
    )


def median_latency_ms(session: ort.InferenceSession, x: np.ndarray, runs: int) -> float:
    name = session.get_inputs()[0].name
    for _ in range(10):  # warm-up: allocations, kernel selection
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def compare_speed(
    model_dir: Path, batch_sizes: tuple[int, ...] = (1, 8), runs: int = 300, threads: int = 1
) -> dict[int, tuple[float, float]]:
    """Batch size → (float, int8) median milliseconds per call, in this process, runs interleaved so
    that the load of a busy machine hits both alike."""
    manifest = Manifest.load(model_dir)
    variant = manifest.variants[VARIANT]
    sessions = [cpu_session(model_dir / f, threads) for f in (manifest.onnx.file, variant.file)]
    rng = np.random.default_rng(0)
    size = manifest.preprocessing.canvas_size
    results = {}
    for n in batch_sizes:
        x = normalise(rng.random((n, size, size), dtype=np.float32), manifest.preprocessing)
        rounds = [[median_latency_ms(s, x, max(1, runs // 5)) for s in sessions] for _ in range(5)]
        float_ms, int8_ms = (statistics.median(r[i] for r in rounds) for i in range(2))
        results[n] = (float_ms, int8_ms)
    return results


def summary(result: QuantizationResult, speed: dict[int, tuple[float, float]]) -> str:
    variant = result.variant
    lines = [f"{result.manifest.name}: {variant.file} ({variant.calibration_samples} calibration images)"]
    lines.append(f"  {'metric':46s} {'float':>8s} {'int8':>8s} {'delta':>8s}")
    for key, value in variant.metrics.items():
        if key in variant.delta:
            float_value = result.float_metrics[key]
            lines.append(f"  {key:46s} {float_value:8.4f} {value:8.4f} {variant.delta[key] * 100:+7.2f}pt")
    drop = -variant.delta[variant.primary_metric] * 100
    verdict = "within" if variant.within_tolerance else "NOT within"
    lines.append(
        f"  {variant.primary_metric} drop {drop:.2f} points: {verdict} the {variant.max_drop_points} point "
        f"tolerance" + ("" if variant.within_tolerance else " — the service will keep serving float")
    )
    for n, (float_ms, int8_ms) in speed.items():
        ratio = int8_ms / float_ms
        timing = f"float {float_ms:.3f} ms, int8 {int8_ms:.3f} ms (int8/float {ratio:.2f}×)"
        lines.append(f"  batch {n}, 1 thread: {timing}")
    return "\n".join(lines)
