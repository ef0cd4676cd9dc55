"""Checkpoint → ONNX + manifest.json in models/<name>/, checked against torch and measured with ORT."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from contract.manifest import DataSource, Head, InputSpec, Manifest, OnnxFile, TrainingInfo, sha256_of
from contract.preprocessing import normalise
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import REPO_ROOT, config_from_dict
from training.data.loading import load_data
from training.data.tasks import TaskData
from training.scoring import Scored, manifest_logits, metrics_of

INPUT_NAME = "image"
PARITY_ATOL = 1e-3


class _TupleOutputs(nn.Module):
    """ONNX wants positional outputs: the heads in a fixed order."""

    def __init__(self, model: nn.Module, heads: list[str]) -> None:
        super().__init__()
        self.model, self.heads = model, heads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[h] for h in self.heads)


def output_name(head: str) -> str:
    return f"{head}_logits"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip()


def describe_architecture(name: str, kwargs: dict) -> str:
    """e.g. "char_resnet(widths=[32, 64, 128], blocks=[2, 2, 2])"; heads are listed separately."""
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items() if k != 'heads')})"


def export_onnx(model: nn.Module, heads: list[str], size: int, path: Path) -> None:
    wrapper = _TupleOutputs(model, heads).eval()
    dummy = torch.zeros(2, 1, size, size)
    outputs = [output_name(h) for h in heads]
    torch.onnx.export(
        wrapper,
        (dummy,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=outputs,
        dynamic_axes={INPUT_NAME: {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
        opset_version=17,
        dynamo=False,
    )


def check_parity(model: nn.Module, x: np.ndarray, ort_logits: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x))
    for head, value in ort_logits.items():
        diff = float(np.abs(torch_out[head].numpy() - value).max())
        if diff > PARITY_ATOL:
            raise RuntimeError(f"torch ↔ ONNX Runtime mismatch on head {head}: max |Δ| = {diff:.2e}")


def export_checkpoint(
    checkpoint_path: Path, out_dir: Path, command: str, data: TaskData | None = None
) -> Manifest:
    """ONNX + manifest of a checkpoint, scored on the validation and test splits (training.scoring).

    `data`: the run's already loaded task data (`train --export`); otherwise the checkpoint's config
    loads only what is scored."""
    checkpoint = load_checkpoint(checkpoint_path)
    cfg = config_from_dict(checkpoint["config"])
    model = model_from_checkpoint(checkpoint)
    heads = list(checkpoint["heads"])
    size = cfg.preprocess.canvas_size
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "model.onnx"
    export_onnx(model, heads, size, onnx_path)
    if data is None:
        data = load_data(cfg, evaluation_only=True)

    manifest = Manifest(
        name=cfg.name,
        task=cfg.task,
        version=f"{datetime.now(UTC):%Y.%m.%d}-e{checkpoint['epoch']}",
        created=datetime.now(UTC),
        architecture=describe_architecture(checkpoint["model_name"], checkpoint["model_kwargs"]),
        onnx=OnnxFile(file=onnx_path.name, sha256=sha256_of(onnx_path)),
        input=InputSpec(name=INPUT_NAME, shape=(None, 1, size, size)),
        preprocessing=cfg.preprocess,
        heads=[Head(name=h, output=output_name(h), labels=checkpoint["heads"][h]) for h in heads],
        # Older checkpoints did not record it; their task data knows it.
        composition=checkpoint.get("composition", data.composition),
        data=[DataSource(**source) for source in checkpoint["provenance"]],
        training=TrainingInfo(
            command=checkpoint.get("command") or command,
            export_command=command if checkpoint.get("command") not in (None, "", command) else "",
            config=checkpoint["config"],
            git_commit=git_commit(),
            torch_version=torch.__version__,
            device=checkpoint.get("device", ""),
            duration_s=round(checkpoint.get("train_seconds", 0.0), 1),
        ),
    )
    # Measure the exported artefact itself, the way evaluate and quantize do; check it against torch.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    metrics: dict[str, float] = {}
    for split_name, split in {"val": data.val, **data.tests}.items():
        scored = Scored.of(split, manifest)
        logits = manifest_logits(session, manifest, scored.canvases)
        if split_name == "val":
            x = normalise(scored.canvases[:512], manifest.preprocessing)
            check_parity(model, x, {h: v[:512] for h, v in logits.items()})
        found = metrics_of(manifest, logits, scored.targets)
        metrics |= {f"{split_name}_{k}": round(v, 5) for k, v in found.items()}
        metrics[f"{split_name}_samples"] = float(len(scored.canvases))
    manifest = Manifest.model_validate(manifest.model_dump() | {"metrics": metrics})
    manifest.save(out_dir)
    return manifest
