"""Where the grapheme model loses its held-out-style score: roots with real handwriting or not.

    HWR_DATA_DIR=../shared/data .venv/bin/python -m bench.eval.grapheme_breakdown [MODEL_DIR]

Scores the exported float model (default models/graphemes) on the held-out-style validation of
training/configs/graphemes.yaml, split by whether BanglaLekha-Isolated has the sample's root (real
handwritten roots, used in compositions) or the root comes from font renders only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.manifest import Manifest
from training.config import REPO_ROOT, load_config
from training.data.datasets import CanvasDataset
from training.data.handwritten_graphemes import load_banglalekha
from training.data.loading import load_data
from training.scoring import score


def main(model_dir: Path) -> None:
    cfg = load_config(REPO_ROOT / "training" / "configs" / "graphemes.yaml")
    val = load_data(cfg, evaluation_only=True).val
    manifest = Manifest.load(model_dir)
    session = ort.InferenceSession(str(model_dir / manifest.onnx.file), providers=["CPUExecutionProvider"])
    real = set(np.unique(load_banglalekha(cfg.data_path).roots).tolist())
    dataset = CanvasDataset(val, manifest.preprocessing)
    targets = {h: t.numpy() for h, t in dataset.targets.items()}
    has_real = np.isin(targets["grapheme_root"], list(real))
    for name, mask in (("root has real handwriting", has_real), ("root only from fonts", ~has_real)):
        found = score(session, manifest, dataset.canvases[mask], {h: t[mask] for h, t in targets.items()})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in found.items() if "top5" not in k)
        print(f"{name} ({mask.sum()} samples): {shown}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT / "models" / "graphemes")
