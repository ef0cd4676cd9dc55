"""A tiny writer-embedding model for the tests: a fixed random projection of the 28×28 input.

Images of the same glyph embed alike and different glyphs apart, which is all the API tests need
to play "writers" with drawn letters; no training, no torch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from contract.manifest import InputSpec, OnnxFile, TrainingInfo, sha256_of
from contract.preprocessing import PreprocessConfig
from contract.writer_manifest import EmbeddingSpec, WriterManifest

DIM = 16


def write_writer_model(
    directory: Path,
    threshold: float = 0.5,
    version: str = "0.0.1",
    seed: int = 0,
    thresholds_by_query: dict[int, float] | None = None,
) -> Path:
    """`directory/{model.onnx, writer_manifest.json}`; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.1, size=(28 * 28, DIM)).astype(np.float32)
    b = np.zeros(DIM, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "w", "b"], ["embedding"]),
        ],
        "tiny-writer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", DIM])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = directory / "model.onnx"
    onnx.save(model, path)
    WriterManifest(
        name="tiny-writers",
        version=version,
        created=datetime(2024, 1, 1, tzinfo=UTC),
        architecture="linear projection",
        onnx=OnnxFile(file="model.onnx", sha256=sha256_of(path)),
        input=InputSpec(name="image", shape=(None, 1, 28, 28)),
        preprocessing=PreprocessConfig(),
        embedding=EmbeddingSpec(output="embedding", dim=DIM),
        threshold=threshold,
        thresholds_by_query=thresholds_by_query or {},
        training=TrainingInfo(command="pytest fixture", config={}),
    ).save(directory)
    return directory
