"""`python -m training export-triton`: the exported models as a Triton Inference Server model repository.

For every `models/<name>/` with a manifest it writes `<out>/<name>/config.pbtxt` (ONNX Runtime
backend, dynamic batching, dims from the manifest), `<name>/1/model.onnx` (the manifest's float
file, its sha256 checked), one label file per head (so Triton's classification extension answers
labels) and the manifest itself, which holds the preprocessing a client must apply first: Triton
serves the model, not our decoding and preprocessing (see docs/scaling.md).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from contract.manifest import MANIFEST_FILE, Head, Manifest, sha256_of

PLATFORM = "onnxruntime_onnx"
# Triton's versions are integers; the manifest's version string is recorded in the config's header.
VERSION_DIR = "1"
INSTANCE_KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
_DATA_TYPES = {"float32": "TYPE_FP32"}


@dataclass(frozen=True)
class TritonOptions:
    max_batch_size: int = 64
    # The service's own micro-batcher waits at most 2 ms (HWR_BATCH_MAX_WAIT_MS); the same here.
    max_queue_delay_us: int = 2000
    instance_kind: str = "auto"  # a key of INSTANCE_KINDS; auto: GPU where Triton has one, else CPU
    instance_count: int = 1


def label_filename(manifest: Manifest, head: Head) -> str:
    """`labels.txt` for the first head (the model's answer), `labels_<head>.txt` for the others."""
    return "labels.txt" if head is manifest.heads[0] else f"labels_{head.name}.txt"


def model_config(manifest: Manifest, options: TritonOptions) -> str:
    """config.pbtxt (protobuf text format of Triton's ModelConfig); dims exclude the batch dim."""
    if options.instance_kind not in INSTANCE_KINDS:
        raise ValueError(
            f"instance kind must be one of {sorted(INSTANCE_KINDS)}, got {options.instance_kind!r}"
        )
    data_type = _DATA_TYPES[manifest.input.dtype]
    outputs = ",\n".join(
        "  {\n"
        f'    name: "{head.output}"\n'
        "    data_type: TYPE_FP32\n"
        f"    dims: [ {len(head.labels)} ]\n"
        f'    label_filename: "{label_filename(manifest, head)}"\n'
        "  }"
        for head in manifest.heads
    )
    dims = ", ".join(str(d) for d in manifest.input.shape[1:])
    return (
        f"# {manifest.name} {manifest.version} (task {manifest.task}), from {MANIFEST_FILE} by\n"
        f"# `python -m training export-triton`; model.onnx sha256 {manifest.onnx.sha256}.\n"
        f"# The input is the preprocessed image: apply {MANIFEST_FILE}'s `preprocessing` first.\n"
        f'name: "{manifest.name}"\n'
        f'platform: "{PLATFORM}"\n'
        f"max_batch_size: {options.max_batch_size}\n"
        "input [\n"
        "  {\n"
        f'    name: "{manifest.input.name}"\n'
        f"    data_type: {data_type}\n"
        f"    dims: [ {dims} ]\n"
        "  }\n"
        "]\n"
        f"output [\n{outputs}\n]\n"
        "dynamic_batching {\n"
        f"  max_queue_delay_microseconds: {options.max_queue_delay_us}\n"
        "}\n"
        "instance_group [\n"
        "  {\n"
        f"    count: {options.instance_count}\n"
        f"    kind: {INSTANCE_KINDS[options.instance_kind]}\n"
        "  }\n"
        "]\n"
    )


def export_model(model_dir: Path, out_dir: Path, options: TritonOptions) -> Path:
    """One model directory → `out_dir/<manifest name>/`; returns that directory."""
    manifest = Manifest.load(model_dir)
    source = model_dir / manifest.onnx.file
    if sha256_of(source) != manifest.onnx.sha256:
        raise ValueError(f"{source}: sha256 does not match {model_dir / MANIFEST_FILE}")
    for head in manifest.heads:
        if any("\n" in label or "\r" in label for label in head.labels):
            raise ValueError(f"{model_dir}: head {head.name!r} has a label with a line break")
    target = out_dir / manifest.name
    if target.exists():
        shutil.rmtree(target)  # a stale version or label file must not survive a re-export
    (target / VERSION_DIR).mkdir(parents=True)
    shutil.copyfile(source, target / VERSION_DIR / "model.onnx")
    shutil.copyfile(model_dir / MANIFEST_FILE, target / MANIFEST_FILE)
    (target / "config.pbtxt").write_text(model_config(manifest, options), encoding="utf-8")
    for head in manifest.heads:
        labels = "".join(f"{label}\n" for label in head.labels)
        (target / label_filename(manifest, head)).write_text(labels, encoding="utf-8")
    return target


def export_repository(models_dir: Path, out_dir: Path, options: TritonOptions | None = None) -> list[Path]:
    """Every model under `models_dir` (a directory with a manifest) into the repository `out_dir`."""
    options = options or TritonOptions()
    model_dirs = sorted(p for p in models_dir.iterdir() if (p / MANIFEST_FILE).is_file())
    if not model_dirs:
        raise ValueError(f"no model directory with a {MANIFEST_FILE} under {models_dir}")
    names = [Manifest.load(model_dir).name for model_dir in model_dirs]
    if len(set(names)) != len(names):
        raise ValueError(f"two models share a name (Triton's model directory): {names}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [export_model(model_dir, out_dir, options) for model_dir in model_dirs]
