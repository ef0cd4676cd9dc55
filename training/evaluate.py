"""Score an exported model (ONNX Runtime, the served artefact) on its task's held-out data.

`--photos` adds the validation and test images re-shot as simulated 640×480 phone photos (JPEG, lighting
gradient, tinted paper: `training.photo_like.simulated_photo`), decoded and preprocessed the way the
service does it — a check that what works on scans also works on photos.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from contract.manifest import Manifest
from contract.preprocessing import NoInkError, render_canvas
from training.config import config_from_dict, load_config
from training.data.loading import load_data
from training.data.tasks import Split
from training.photo_like import simulated_photo
from training.scoring import Scored, score

JPEG_QUALITY = 85


def photo_canvases(split: Split, manifest: Manifest, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Canvases of the split's images re-shot as JPEG photos; indices of those with ink found."""
    rng = np.random.default_rng(seed)
    cfg = manifest.preprocessing
    canvases, kept = [], []
    for i, image in enumerate(split.images):
        _, jpeg = cv2.imencode(
            ".jpg", simulated_photo(image, rng, cfg), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        photo = cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        try:
            canvases.append(render_canvas(photo, cfg))
        except NoInkError:
            continue
        kept.append(i)
    return np.stack(canvases), np.asarray(kept)


def evaluate_model(
    model_dir: Path, data_dir: Path | None, photos: bool, seed: int = 1, data_config: Path | None = None
) -> dict[str, float]:
    """`data_config`: score on that config's validation and test sets instead of the model's own
    (e.g. an older model on the current sets; the model's own preprocessing is used either way)."""
    manifest = Manifest.load(model_dir)
    cfg = load_config(data_config) if data_config else config_from_dict(manifest.training.config)
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    data = load_data(cfg, evaluation_only=True)
    session = ort.InferenceSession(str(model_dir / manifest.onnx.file), providers=["CPUExecutionProvider"])
    results: dict[str, float] = {}
    for name, split in {"val": data.val, **data.tests}.items():
        scored = Scored.of(split, manifest)
        results |= {
            f"{name}_{k}": v for k, v in score(session, manifest, scored.canvases, scored.targets).items()
        }
        if photos:
            canvases, kept = photo_canvases(split, manifest, seed)
            targets = {h: t[kept] for h, t in split.targets.items()}
            found = score(session, manifest, canvases, targets)
            results |= {f"{name}_photo_{k}": v for k, v in found.items()}
            results[f"{name}_photo_no_ink"] = float(len(split) - len(kept))
    return results
