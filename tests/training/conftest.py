"""A tiny FEMNIST-format data directory drawn in code (the real data is never needed by tests)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from contract.manifest import Manifest
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.data.labels import FEMNIST_CLASSES

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
)


def glyph(char: str, font: int, rng: np.random.Generator) -> np.ndarray:
    """28×28 ink-high (MNIST convention) image of `char`, slightly off-centre like FEMNIST."""
    image = np.zeros((28, 28), np.uint8)
    x, y = rng.integers(3, 9), rng.integers(19, 24)
    cv2.putText(image, char, (int(x), int(y)), font, 0.7, 255, int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def write_fake_femnist(root: Path, writers: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images, labels, writer_ids = [], [], []
    for w in range(writers):
        for label, char in enumerate(FEMNIST_CLASSES):
            images.append(glyph(char, FONTS[w % len(FONTS)], rng))
            labels.append(label)
            writer_ids.append(f"f{w:04d}")
    path = root / "femnist" / "femnist.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        images=np.stack(images),
        labels=np.array(labels, np.uint8),
        writers=np.array(writer_ids),
        classes=np.array(FEMNIST_CLASSES),
    )
    return root


def write_idx(path: Path, array: np.ndarray) -> Path:
    """The official MNIST IDX format (uint8), gzip-compressed."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path


def write_fake_mnist(root: Path, per_digit: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", per_digit), ("t10k", per_digit // 2)):
        labels = np.repeat(np.arange(10), n)
        images = np.stack([glyph(str(d), FONTS[i % len(FONTS)], rng) for i, d in enumerate(labels)])
        write_idx(root / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory) -> Path:
    """femnist/femnist.npz and mnist/*-ubyte.gz in their official formats, drawn in code."""
    root = tmp_path_factory.mktemp("data")
    write_fake_femnist(root)
    return write_fake_mnist(root)


def assert_onnx_matches_torch(run_dir: Path, model_dir: Path) -> None:
    """The exported model (`model_dir`) gives the run's best checkpoint's logits, head by head."""
    manifest = Manifest.load(model_dir)
    model = model_from_checkpoint(load_checkpoint(run_dir / "best.pt"))
    x = np.random.default_rng(0).normal(size=(5, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run([h.output for h in manifest.heads], {manifest.input.name: x})
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x))
    for head, value in zip(manifest.heads, onnx_out, strict=True):
        np.testing.assert_allclose(value, torch_out[head.name].numpy(), atol=1e-4, err_msg=head.name)


def tiny_open_set_config(tmp_path: Path, *overrides: str):
    """The committed open-set writer config on a fake FEMNIST of 10 writers, shrunk to train in
    seconds (one epoch, 8-wide blocks, 16-d embeddings), with `overrides` on top."""
    from training.writers.config import load_writer_config

    data_dir = write_fake_femnist(tmp_path / "data", writers=10)
    settings = [
        f"data_dir={data_dir}",
        "epochs=1",
        "threads=1",
        "train_writers=0.6",
        "val_writers=0.2",
        "model_kwargs.widths=[8, 8, 8]",
        "embedding_dim=16",
        "extra_writers=''",  # the fake data has FEMNIST only
        *overrides,
    ]
    return load_writer_config(
        Path(__file__).resolve().parents[2] / "training/configs/writers_open.yaml", settings
    )
