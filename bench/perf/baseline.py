"""The seed-style baseline the benchmark compares against, built the way the seed application describes it.

    .venv/bin/python -m bench.perf.baseline --port 8100 [--task letter] [--n-init auto]

Per request: PIL decode → grayscale → resize to 300×300 → scikit-learn `KMeans(n_clusters=2)` on the
pixel intensities → the minority cluster is the ink → crop to its bounding box → resize to 28×28 →
Gaussian blur → normalise → the PyTorch model in eager mode, batch 1, under `torch.no_grad()`.
One uvicorn process; the endpoint is a plain `def` (FastAPI's thread pool, as its docs advise for
blocking work); torch and scikit-learn threads at their defaults.

The model is the committed one's architecture (`training.models.create_model` with the manifest's
name and kwargs), so the comparison measures the pipelines, not the networks. Its weights come from
the committed ONNX file when they map onto it (`load_onnx_weights`), else it stays randomly
initialised: speed does not depend on the weights, only the accuracy figure does.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import onnx
import torch
import uvicorn
from fastapi import FastAPI, File, HTTPException, UploadFile
from onnx import numpy_helper
from PIL import Image
from sklearn.cluster import KMeans
from torch import nn

from bench.server import REPO, Server, free_port, serving
from contract.manifest import Manifest
from training.models import create_model

SEED_SIDE = 300
MODEL_DIRS = {"letter": "letters", "digit": "digits"}


class NoInk(ValueError):
    """K-means found a single cluster: a blank image."""


def load_onnx_weights(model: nn.Module, onnx_path: Path) -> str:
    """Copy the ONNX file's weights into `model`; return how (or why it stayed random).

    The export folds each BatchNorm into the conv before it, so the initialisers are renamed and
    the BN layers gone. In graph order they still follow the module order: conv i gets the folded
    weight, its BN becomes the identity plus the folded bias. Any count or shape mismatch: random init.
    """
    graph = onnx.load(str(onnx_path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    folded = [
        (node.op_type, [arrays.get(name) for name in node.input[1:3]])
        for node in graph.node
        if node.op_type in ("Conv", "Gemm")
    ]
    modules = list(model.modules())
    layers = [
        (m, modules[i + 1] if i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm2d) else None)
        for i, m in enumerate(modules)
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    if len(folded) != len(layers):
        return f"random init: the ONNX graph has {len(folded)} conv/gemm layers, the model {len(layers)}"
    state: list[tuple[nn.Module, nn.Module | None, torch.Tensor, torch.Tensor | None]] = []
    for (op, (weight, bias)), (layer, bn) in zip(folded, layers, strict=True):
        expected = "Conv" if isinstance(layer, nn.Conv2d) else "Gemm"
        if op != expected or weight is None or tuple(weight.shape) != tuple(layer.weight.shape):
            return f"random init: ONNX {op} {getattr(weight, 'shape', None)} does not match {layer}"
        folded_bias = None if bias is None else torch.from_numpy(bias.copy())
        state.append((layer, bn, torch.from_numpy(weight.copy()), folded_bias))
    with torch.no_grad():
        for layer, bn, weight, bias in state:
            layer.weight.copy_(weight)
            target = bn.bias if bn is not None else layer.bias
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(var + eps) = x
            if target is not None:
                target.copy_(bias if bias is not None else torch.zeros_like(target))
    return f"weights from {onnx_path.parent.name}/{onnx_path.name} (BatchNorm folded into the convs)"


@dataclass
class SeedPipeline:
    """The seed's per-request pipeline around one eager PyTorch model."""

    model: nn.Module
    labels: list[str]
    mean: float
    std: float
    n_init: int | str = "auto"
    weights: str = ""

    @classmethod
    def load(cls, model_dir: Path, n_init: int | str = "auto") -> SeedPipeline:
        manifest = Manifest.load(model_dir)
        config = manifest.training.config
        heads = {head.name: len(head.labels) for head in manifest.heads}
        model = create_model(config["model"], heads=heads, **config.get("model_kwargs", {})).eval()
        weights = load_onnx_weights(model, model_dir / manifest.onnx.file)
        cfg = manifest.preprocessing
        return cls(model, manifest.heads[0].labels, cfg.mean, cfg.std, n_init, weights)

    def decode(self, data: bytes) -> np.ndarray:
        """PIL decode → grayscale → 300×300 (the seed's fixed size, aspect ratio not kept)."""
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("L").resize((SEED_SIDE, SEED_SIDE)), dtype=np.float32)

    def preprocess(self, gray: np.ndarray) -> np.ndarray:
        """300×300 grey → 1×1×28×28 model input via K-means (K = 2) on the pixel intensities."""
        kmeans = KMeans(n_clusters=2, n_init=self.n_init, random_state=0).fit(gray.reshape(-1, 1))
        clusters = kmeans.labels_.reshape(gray.shape)
        counts = np.bincount(clusters.ravel(), minlength=2)
        if counts.min() == 0:
            raise NoInk("K-means found one cluster only")
        mask = clusters == int(np.argmin(counts))  # the minority cluster is the ink
        ys, xs = np.nonzero(mask)
        ink = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
        small = cv2.GaussianBlur(cv2.resize(ink, (28, 28), interpolation=cv2.INTER_AREA), (3, 3), 0)
        return ((small - self.mean) / self.std)[None, None].astype(np.float32)

    def infer(self, x: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        with torch.no_grad():
            logits = next(iter(self.model(torch.from_numpy(x)).values()))[0]
        probabilities = torch.softmax(logits, dim=0)
        top = torch.topk(probabilities, min(k, len(self.labels)))
        return [(self.labels[int(i)], float(p)) for p, i in zip(top.values, top.indices, strict=True)]

    def predict(self, data: bytes, k: int = 5) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """Upload bytes → top-k (label, probability) and the stage timings in ms."""
        times = [time.perf_counter()]
        gray = self.decode(data)
        times.append(time.perf_counter())
        x = self.preprocess(gray)
        times.append(time.perf_counter())
        top = self.infer(x, k)
        times.append(time.perf_counter())
        stages = ("decode", "preprocess", "inference")
        timing = {name: (times[i + 1] - times[i]) * 1000 for i, name in enumerate(stages)}
        return top, timing | {"total": (times[-1] - times[0]) * 1000}


def create_app(pipeline: SeedPipeline, task: str) -> FastAPI:
    app = FastAPI(title="seed-style baseline")

    @app.get("/health/ready")
    def ready() -> dict[str, object]:
        return {"status": "ready", "tasks": [task]}

    @app.post("/predict/{name}")
    def predict(name: str, file: Annotated[UploadFile, File()]) -> dict[str, object]:
        if name != task:
            raise HTTPException(404, f"unknown task {name!r}")
        try:
            top, timing = pipeline.predict(file.file.read())
        except (OSError, NoInk) as exc:
            raise HTTPException(422, str(exc)) from exc
        return {
            "task": task,
            "predictions": [{"label": label, "probability": p} for label, p in top],
            "timing_ms": timing,
        }

    return app


@contextmanager
def running_baseline(log_path: Path, task: str = "letter", n_init: str = "auto") -> Iterator[Server]:
    """`python -m bench.perf.baseline` on a free loopback port, as bench.server runs our service."""
    port = free_port()
    command = [sys.executable, "-m", "bench.perf.baseline", "--port", str(port), "--task", task]
    command += ["--n-init", n_init]
    with serving(command, port, log_path) as server:
        yield server


def parse_n_init(value: str) -> int | str:
    return value if value == "auto" else int(value)


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--task", default="letter", choices=sorted(MODEL_DIRS))
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument(
        "--n-init", default="auto", help="KMeans n_init: scikit-learn's default 'auto' (1 run) or a count"
    )
    args = parser.parse_args(argv)
    pipeline = SeedPipeline.load(args.model_dir / MODEL_DIRS[args.task], parse_n_init(args.n_init))
    print(f"baseline model: {pipeline.weights}; torch threads {torch.get_num_threads()}", flush=True)
    uvicorn.run(create_app(pipeline, args.task), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
