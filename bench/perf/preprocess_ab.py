"""`preprocess` of two (or more) versions of contract/preprocessing.py, timed side by side in process.

    .venv/bin/python -m bench.perf.preprocess_ab [--repeats 400] [--task letter] \
        new=contract/preprocessing.py old=/tmp/old/contract/preprocessing.py

Each version is loaded from its file as a module of its own, so they run in one process on the
same decoded images, with the service's one OpenCV thread (`HWR_OPENCV_THREADS`, default 1). The
inputs are the benchmark's uploads (bench/photos.py: 96 px-ish crops, 640×480 photos, 12-MP photos
decoded as the service decodes them, at reduced scale, and once at full size so that the pipeline
downscales them itself). Repetitions are interleaved: in each round every version preprocesses
the same image, in an order that alternates, so load from other processes hits them alike.
Reported per kind and version: min and median ms, and the median of the per-round ratios to the
first version.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from app.config import Settings
from app.service.images import decode_image
from bench.cli import load_version
from bench.photos import build_uploads, validation_glyphs
from bench.server import REPO
from contract.manifest import Manifest

MODEL_DIRS = {"letter": "letters", "digit": "digits"}


def inputs(task: str, seed: int, settings: Settings) -> dict[str, list[np.ndarray]]:
    counts = {"crop": 8, "photo_640": 8, "photo_12mp": 2}
    uploads = build_uploads(counts, validation_glyphs(task, 8, seed), seed)
    limits = {"max_pixels": settings.max_pixels, "max_side": settings.max_side}
    out: dict[str, list[np.ndarray]] = {}
    for u in uploads:
        out.setdefault(u.kind, []).append(
            decode_image(u.data, **limits, reduce_to=settings.jpeg_decode_min_side)
        )
        if u.kind == "photo_12mp":
            out.setdefault("photo_12mp_full", []).append(decode_image(u.data, **limits))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("versions", nargs="+", metavar="NAME=PATH")
    parser.add_argument("--task", default="letter", choices=sorted(MODEL_DIRS))
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="crop,photo_640,photo_12mp,photo_12mp_full")
    args = parser.parse_args(argv)
    settings = Settings()
    cv2.setNumThreads(settings.opencv_threads)
    versions = {}
    for item in args.versions:
        name, _, path = item.partition("=")
        versions[name] = load_version(name, Path(path))
    manifest = Manifest.load(REPO / "models" / MODEL_DIRS[args.task])
    fields = manifest.preprocessing.__dict__
    configs = {
        name: m.PreprocessConfig(
            **{k: v for k, v in fields.items() if k in m.PreprocessConfig.__dataclass_fields__}
        )
        for name, m in versions.items()
    }
    images = inputs(args.task, args.seed, settings)
    names = list(versions)
    print(f"opencv threads {cv2.getNumThreads()}, task {args.task}, repeats {args.repeats}")
    for kind in args.kinds.split(","):
        items = images[kind]
        shape = "×".join(map(str, items[0].shape[:2][::-1]))
        for name in names:  # warm-up
            for image in items:
                try:
                    versions[name].preprocess(image, configs[name])
                except versions[name].NoInkError:
                    pass
        ms = {name: [] for name in names}
        for r in range(args.repeats):
            image = items[r % len(items)]
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                module, cfg = versions[name], configs[name]
                begin = time.perf_counter()
                with contextlib.suppress(module.NoInkError):
                    module.preprocess(image, cfg)
                ms[name].append((time.perf_counter() - begin) * 1000)
        base = np.asarray(ms[names[0]])
        for name in names:
            t = np.asarray(ms[name])
            ratio = float(np.median(t / base))
            print(
                f"  {kind:<16} {shape:>9}  {name:<8} min {t.min():7.3f} ms  median {np.median(t):7.3f} ms"
                f"  ratio to {names[0]} {ratio:5.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
