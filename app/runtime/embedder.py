"""The writer-embedding model: verified against its manifest, images in, unit vectors out. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.runtime.inference import DEFAULT_MAX_BATCH, create_session, run_in_chunks
from contract.manifest import sha256_of
from contract.writer_manifest import WRITER_MANIFEST_FILE, WriterManifest


class WriterModelError(Exception):
    """No usable writer model: missing, checksum or graph not matching its manifest."""


@dataclass(frozen=True)
class WriterEmbedder:
    manifest: WriterManifest
    session: ort.InferenceSession
    max_batch: int = DEFAULT_MAX_BATCH  # inputs per ONNX Runtime call

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """N×1×S×S preprocessed inputs → N×dim float32, each row of unit length."""
        output, name = self.manifest.embedding.output, self.manifest.input.name
        (out,) = run_in_chunks(lambda chunk: self.session.run([output], {name: chunk}), batch, self.max_batch)
        return l2_normalise(np.asarray(out, np.float32))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def mean_embedding(embeddings: np.ndarray) -> np.ndarray:
    """Unit vectors (N×dim) → their mean direction (unit length): a writer's or a query's profile."""
    return l2_normalise(embeddings.mean(axis=0))


def load_embedder(
    directory: Path,
    intra_op_threads: int = 0,
    max_batch: int = DEFAULT_MAX_BATCH,
    cpu_mem_arena: bool = False,
) -> WriterEmbedder:
    """Raises WriterModelError with a reason a person can act on."""
    if not (directory / WRITER_MANIFEST_FILE).is_file():
        raise WriterModelError(f"no writer model: {directory / WRITER_MANIFEST_FILE} does not exist")
    try:
        manifest = WriterManifest.load(directory)
    except ValueError as exc:
        raise WriterModelError(f"invalid {WRITER_MANIFEST_FILE}: {exc}") from exc
    path = directory / manifest.onnx.file
    if not path.is_file() or sha256_of(path) != manifest.onnx.sha256:
        raise WriterModelError(f"{path} is missing or does not match its manifest's sha256")
    session = create_session(path, intra_op_threads, cpu_mem_arena=cpu_mem_arena)
    inputs, outputs = session.get_inputs(), {o.name: o for o in session.get_outputs()}
    if [i.name for i in inputs] != [manifest.input.name]:
        raise WriterModelError(
            f"graph inputs {[i.name for i in inputs]}, manifest says {manifest.input.name!r}"
        )
    output = outputs.get(manifest.embedding.output)
    if output is None or output.shape[-1] != manifest.embedding.dim:
        raise WriterModelError(
            f"graph has no output {manifest.embedding.output!r} of width {manifest.embedding.dim}"
        )
    return WriterEmbedder(manifest, session, max_batch)
