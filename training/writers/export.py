"""The trained embedding model → `model.onnx` + `writer_manifest.json`, the service's writer contract.

The manifest is written as plain JSON from the contract's building blocks (training may import only
contract.manifest and contract.preprocessing); tests/training/test_writers.py validates it with the service's
own `contract.writer_manifest.WriterManifest`, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from contract.manifest import InputSpec, OnnxFile, TrainingInfo, sha256_of
from training.export import git_commit
from training.writers.config import WriterConfig
from training.writers.models import WriterEmbeddingNet

INPUT_NAME, OUTPUT_NAME = "image", "embedding"
WRITER_MANIFEST_FILE = "writer_manifest.json"  # = contract.writer_manifest.WRITER_MANIFEST_FILE
PARITY_ATOL = 1e-4


def export_embedding(
    model: WriterEmbeddingNet, cfg: WriterConfig, report: dict[str, float], out_dir: Path, command: str
) -> Path:
    if cfg.input != "service":
        raise ValueError("only a model trained on the service's preprocessing (input: service) can be served")
    size = cfg.preprocess.canvas_size
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(2, 1, size, size),),
        str(onnx_path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    check = np.random.default_rng(0).normal(size=(4, 1, size, size)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        diff = np.abs(
            session.run([OUTPUT_NAME], {INPUT_NAME: check})[0] - model(torch.from_numpy(check)).numpy()
        ).max()
    if diff > PARITY_ATOL:
        raise RuntimeError(f"torch ↔ ONNX Runtime mismatch: max |Δ| = {diff:.2e}")
    now = datetime.now(UTC)
    manifest = {
        "schema_version": 1,
        "name": cfg.name,
        "task": "writer",
        "version": f"{now:%Y.%m.%d.%H%M}",
        "created": now.isoformat(),
        "architecture": f"WriterEmbeddingNet(dim={cfg.embedding_dim}, {cfg.model_kwargs}) + ArcFace",
        "onnx": OnnxFile(file=onnx_path.name, sha256=sha256_of(onnx_path)).model_dump(),
        "input": InputSpec(name=INPUT_NAME, shape=(None, 1, size, size)).model_dump(),
        "preprocessing": dataclasses.asdict(cfg.preprocess),
        "embedding": {"output": OUTPUT_NAME, "dim": cfg.embedding_dim},
        "threshold": round(float(np.clip(report.get("val_eer_threshold", 0.5), -1, 1)), 4),
        "thresholds_by_query": {
            q: round(float(np.clip(report[f"val_q{q}_eer_threshold"], -1, 1)), 4)
            for q in cfg.query
            if f"val_q{q}_eer_threshold" in report
        },
        "metrics": {k: round(float(v), 5) for k, v in report.items() if np.isfinite(v)},
        "training": TrainingInfo(
            command=command, config=cfg.to_dict(), git_commit=git_commit(), torch_version=torch.__version__
        ).model_dump(),
    }
    path = out_dir / WRITER_MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
