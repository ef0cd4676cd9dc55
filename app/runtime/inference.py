"""ONNX Runtime session + manifest → logits per head. Pure (no web framework).

Input and output names and shapes are read from the graph and checked against the manifest
when the classifier is built, so a model that does not honour its contract never serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.manifest import Manifest

# ONNX Runtime's element type names for the dtypes a manifest may declare.
_ORT_TYPES = {"float32": "tensor(float)"}
# Inputs per ONNX Runtime call unless the caller says otherwise (HWR_INFERENCE_MAX_BATCH).
DEFAULT_MAX_BATCH = 64


class ModelMismatch(ValueError):
    """The ONNX graph does not match what its manifest promises."""


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build offers it; CPU always as the fallback."""
    available = ort.get_available_providers()
    gpu = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
    return [*gpu, "CPUExecutionProvider"]


def create_session(
    path: Path,
    intra_op_threads: int = 0,
    providers: Sequence[str] | None = None,
    cpu_mem_arena: bool = False,
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads > 0:
        options.intra_op_num_threads = intra_op_threads
    # Idle ORT threads sleep instead of spinning: a spinning thread takes a core from the
    # requests decoding and preprocessing beside it, and a 28×28 model's ops are too short to gain.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Errors only: ORT's warnings about unused initialisers etc. are noise in the service log.
    options.log_severity_level = 3
    # No CPU memory arena by default: an arena grows to the largest batch the session has run and
    # keeps that memory for the life of the process (3,584 inputs in one call left the letters
    # model's process 0.8 GB larger). Chunks (`run_in_chunks`) bound the peak; this gives it back.
    # A setting, so its latency cost can be measured (docs/reliability.md).
    options.enable_cpu_mem_arena = cpu_mem_arena
    return ort.InferenceSession(
        str(path), sess_options=options, providers=list(providers or default_providers())
    )


def run_in_chunks(
    run: Callable[[np.ndarray], Sequence[np.ndarray]], batch: np.ndarray, max_batch: int
) -> list[np.ndarray]:
    """`run` on at most `max_batch` rows of `batch` at a time, its outputs joined row-wise: what
    one call would return, with the memory of one chunk. An empty batch is still one call."""
    if len(batch) <= max_batch:
        return [np.asarray(values) for values in run(batch)]
    chunks = [run(batch[start : start + max_batch]) for start in range(0, len(batch), max_batch)]
    return [np.concatenate(outputs) for outputs in zip(*chunks, strict=True)]


def _dims_match(graph_dim: object, manifest_dim: int | None) -> bool:
    # A dynamic graph dim is a symbol (str) or None; the manifest writes dynamic dims as None.
    if manifest_dim is None:
        return graph_dim is None or isinstance(graph_dim, str)
    return graph_dim == manifest_dim


class OnnxClassifier:
    """One model: `predict(batch)` → {head name: NxC logits}, at most `max_batch` inputs per ONNX
    Runtime call. Thread-safe (ORT sessions are)."""

    def __init__(
        self, session: ort.InferenceSession, manifest: Manifest, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.session = session
        self.manifest = manifest
        self.max_batch = max_batch
        self._check_input()
        self._check_outputs()
        self.input_name = manifest.input.name
        self.output_names = [head.output for head in manifest.heads]

    def _check_input(self) -> None:
        spec = self.manifest.input
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelMismatch(f"graph has {len(inputs)} inputs, expected exactly one ({spec.name!r})")
        graph = inputs[0]
        if graph.name != spec.name:
            raise ModelMismatch(f"graph input is {graph.name!r}, manifest says {spec.name!r}")
        expected_type = _ORT_TYPES.get(spec.dtype)
        if expected_type is None or graph.type != expected_type:
            raise ModelMismatch(f"graph input type is {graph.type}, manifest says {spec.dtype}")
        shape = list(graph.shape)
        if len(shape) != len(spec.shape) or not all(map(_dims_match, shape, spec.shape)):
            raise ModelMismatch(f"graph input shape is {shape}, manifest says {list(spec.shape)}")

    def _check_outputs(self) -> None:
        outputs = {o.name: o for o in self.session.get_outputs()}
        for head in self.manifest.heads:
            graph = outputs.get(head.output)
            if graph is None:
                raise ModelMismatch(
                    f"head {head.name!r}: output {head.output!r} not in graph outputs {sorted(outputs)}"
                )
            shape = list(graph.shape)
            if len(shape) != 2 or not _dims_match(shape[1], len(head.labels)):
                raise ModelMismatch(
                    f"head {head.name!r}: output shape {shape}, expected [N, {len(head.labels)}]"
                )

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """NxCxHxW float32 → {head name: Nxnum_labels logits}."""
        expected = tuple(self.manifest.input.shape[1:])
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected or batch.dtype != np.float32:
            raise ValueError(f"expected float32 Nx{expected} batch, got {batch.dtype} {batch.shape}")
        results = run_in_chunks(
            lambda chunk: self.session.run(self.output_names, {self.input_name: chunk}), batch, self.max_batch
        )
        logits = {}
        for head, values in zip(self.manifest.heads, results, strict=True):
            values = np.asarray(values)
            if values.shape != (batch.shape[0], len(head.labels)):
                raise ModelMismatch(f"head {head.name!r} returned shape {values.shape}")
            logits[head.name] = values
        return logits
