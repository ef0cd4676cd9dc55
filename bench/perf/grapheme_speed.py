"""One grapheme in process, as the service computes it: decode → preprocess → model, on one core.

    .venv/bin/python -m bench.perf.grapheme_speed [--variant int8|float] [--repeats 300]

Cycles over the grapheme images in tests/data/bengali (real CMATERdb scans, held-out-font renders,
held-out-style handwriting): decode (app.service.images.decode_image), preprocessing
(contract.preprocessing.preprocess with the manifest's settings) and the served model file through the
service's own loader, ONNX Runtime and OpenCV on one thread each. Prints the median and p95 of each
stage and of the whole.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from app.config import DEFAULT_MODEL_DIR
from app.runtime.registry import load_model
from app.service.images import decode_image
from contract.manifest import Manifest
from contract.preprocessing import preprocess

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "bengali"
MAX_PIXELS, MAX_SIDE = 40_000_000, 12_000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", default="int8", choices=["int8", "float"])
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    directory = DEFAULT_MODEL_DIR / "graphemes"
    model = load_model(directory, Manifest.load(directory), intra_op_threads=1, variant=args.variant)
    cfg = model.manifest.preprocessing
    uploads = [path.read_bytes() for path in sorted(SAMPLES.glob("*.png"))]
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "model": [], "total": []}
    for i in range(args.repeats + 20):
        data = uploads[i % len(uploads)]
        t0 = time.perf_counter()
        image = decode_image(data, MAX_PIXELS, MAX_SIDE)
        t1 = time.perf_counter()
        x = preprocess(image, cfg)
        t2 = time.perf_counter()
        model.classifier.predict(x[None])
        t3 = time.perf_counter()
        if i >= 20:  # warm-up excluded
            for name, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                stages[name].append(value * 1000)
    print(f"graphemes ({model.variant}, {len(uploads)} images, {args.repeats} calls, one thread)")
    for name, values in stages.items():
        print(f"  {name:10s} p50 {np.median(values):6.2f} ms   p95 {np.percentile(values, 95):6.2f} ms")


if __name__ == "__main__":
    main()
