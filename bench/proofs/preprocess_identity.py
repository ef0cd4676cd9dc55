"""Do two versions of contract/preprocessing.py give the very same model inputs?

    HWR_DATA_DIR=../shared/data .venv/bin/python -m bench.proofs.preprocess_identity \
        --reference /tmp/old/contract/preprocessing.py [--candidate contract/preprocessing.py] \
        [--photos 1500] [--blanks 300] [--scans 0]

Every input goes through both versions under every committed model's preprocessing settings
(letters, digits, graphemes), the defaults and the older models' test (new knobs off). The
inputs: tests/data's images, the letters and digits validation scans and MNIST's test set
(`--scans` of each, 0 = all), the photo set of docs/photos.md (letters and digits, `--photos`
and `--blanks`, decoded as the service decodes them), the benchmark's uploads (crops, 640×480 and
12-MP photos, reduced and full-size decodes), and seeded synthetic pages: ruled and squared
paper with and without a glyph, tight crops of bars, noise, gradients and shadow edges. The
answer must be identical: the same array bit for bit (max |difference| 0) or NoInkError from both.
Exits 1 on any difference, listing the first ones.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

from app.config import Settings
from app.service.images import decode_image
from bench.cli import load_version
from bench.photos import build_uploads, validation_glyphs
from bench.server import REPO
from contract.manifest import Manifest


def configs(module: ModuleType) -> dict[str, object]:
    """The committed models' settings, the defaults, and the older models' fixed test."""
    known = {f.name for f in fields(module.PreprocessConfig)}
    out: dict[str, object] = {}
    for model in ("letters", "digits", "graphemes"):
        recorded = Manifest.load(REPO / "models" / model).preprocessing.__dict__
        out[model] = module.PreprocessConfig(**{k: v for k, v in recorded.items() if k in known})
    out["defaults"] = module.PreprocessConfig()
    out["knobs_off"] = replace(
        out["letters"],
        noise_snr=0,
        min_faint_contrast=30.0,
        border_paper_share=0,
        rule_run=0,
        min_elongation=0,
    )
    return out


def synthetic(seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """Seeded pages the real sets seldom hold: rules and grids, bars across tight crops, noise."""
    rng = np.random.default_rng(seed)
    letters = sorted((REPO / "tests" / "data").glob("[A-Z]_scan.png"))
    for i in range(400):
        side = int(rng.integers(20, 260))
        h, w = side, int(side * rng.uniform(0.6, 1.6))
        paper = float(rng.uniform(120, 250))
        page = np.full((h, w), paper, np.float32)
        kind = i % 8
        if kind in (0, 1):  # ruled (0) or squared (1) paper
            step = rng.uniform(8, 30)
            tone = paper - rng.uniform(20, 110)
            tilt = rng.uniform(-0.04, 0.04)
            for y in np.arange(rng.uniform(0, step), h, step):
                cv2.line(
                    page, (0, int(y)), (w - 1, int(y + tilt * w)), tone, int(rng.integers(1, 3)), cv2.LINE_AA
                )
            if kind == 1:
                for x in np.arange(rng.uniform(0, step), w, step):
                    cv2.line(
                        page,
                        (int(x), 0),
                        (int(x - tilt * h), h - 1),
                        tone,
                        int(rng.integers(1, 3)),
                        cv2.LINE_AA,
                    )
        elif kind == 2:  # a bar across a tight crop (a T's top), or along its side
            y = int(rng.integers(0, max(1, h // 3)))
            page[y : y + max(2, h // 10), :] = paper - rng.uniform(40, 150)
            x = w // 2
            page[y:, x - max(1, w // 20) : x + max(1, w // 20) + 1] = paper - rng.uniform(40, 150)
        elif kind == 3:  # a shadow edge
            cut = int(rng.integers(1, w))
            page[:, cut:] *= rng.uniform(0.5, 0.8)
        elif kind == 4:  # a gradient
            page *= np.linspace(rng.uniform(0.6, 1.0), 1.0, w, dtype=np.float32)[None, :]
        if kind in (0, 1, 3, 4, 5) and rng.random() < 0.75:  # a real letter written on it
            glyph = cv2.imread(str(letters[int(rng.integers(len(letters)))]), cv2.IMREAD_GRAYSCALE)
            size = max(8, int(min(h, w) * rng.uniform(0.3, 0.95)))
            ink = cv2.resize(glyph, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
            y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            depth = rng.uniform(15, 200)
            page[y0 : y0 + size, x0 : x0 + size] -= depth * ink
        page += rng.normal(0, rng.uniform(0, 10), page.shape).astype(np.float32)
        if kind == 6:  # salt
            page[rng.random(page.shape) < 0.01] = 0
        image = np.clip(page, 0, 255).astype(np.uint8)
        if kind == 7:
            image = 255 - image
        yield f"synthetic_{i:03d}_{kind}", image


def inputs(args: argparse.Namespace, settings: Settings) -> Iterator[tuple[str, str, np.ndarray]]:
    """(name, which configs: 'all' or a model, image) for every input."""
    limits = {"max_pixels": settings.max_pixels, "max_side": settings.max_side}
    for path in sorted((REPO / "tests" / "data").rglob("*")):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is not None:
                yield f"tests/data/{path.relative_to(REPO / 'tests' / 'data')}", "all", image
    yield from ((name, "all", image) for name, image in synthetic(args.seed))
    from bench.photo_set import build_set
    from training.data.tasks import load_task

    for task, model in (("letter", "letters"), ("digit", "digits")):
        config = Manifest.load(REPO / "models" / model).training.config
        data = load_task(
            task, args.data, float(config["val_fraction"]), int(config["seed"]), evaluation_only=True
        )
        splits = {"val": data.val} | ({"mnist_test": data.tests["mnist_test"]} if task == "digit" else {})
        for split_name, split in splits.items():
            n = len(split) if args.scans <= 0 else min(args.scans, len(split))
            for i in range(n):
                yield f"{model}/{split_name}/{i}", model, split.images[i]
        for sample in build_set(task, args.photos, args.seed, args.data, blanks=args.blanks):
            image = decode_image(sample.data, **limits, reduce_to=settings.jpeg_decode_min_side)
            yield f"photo_set/{sample.name}", "all" if sample.index % 10 == 0 else model, image
        counts = {"crop": 16, "photo_640": 16, "photo_12mp": 4}
        for upload in build_uploads(counts, validation_glyphs(task, 16, args.seed), args.seed):
            yield (
                f"uploads/{upload.name}",
                "all",
                decode_image(upload.data, **limits, reduce_to=settings.jpeg_decode_min_side),
            )
            if upload.kind == "photo_12mp":
                yield f"uploads/full/{upload.name}", "all", decode_image(upload.data, **limits)


def answer(module: ModuleType, image: np.ndarray, cfg: object) -> np.ndarray | str:
    try:
        return module.preprocess(image, cfg)
    except module.NoInkError:
        return "no_ink"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, default=REPO / "contract" / "preprocessing.py")
    parser.add_argument("--photos", type=int, default=1500, help="photo-set samples per task")
    parser.add_argument("--blanks", type=int, default=300)
    parser.add_argument("--scans", type=int, default=0, help="validation/test scans per split (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args(argv)
    from bench.photo_set import data_dir

    args.data = args.data or data_dir()
    settings = Settings()
    cv2.setNumThreads(settings.opencv_threads)
    reference, candidate = (
        load_version("reference", args.reference),
        load_version("candidate", args.candidate),
    )
    ref_cfgs, cand_cfgs = configs(reference), configs(candidate)
    checked = no_ink = 0
    differences: list[str] = []
    for name, which, image in inputs(args, settings):
        for cfg_name in ref_cfgs if which == "all" else (which,):
            a = answer(reference, image, ref_cfgs[cfg_name])
            b = answer(candidate, image, cand_cfgs[cfg_name])
            checked += 1
            if isinstance(a, str) or isinstance(b, str):
                same = isinstance(a, str) and isinstance(b, str)
                no_ink += same
                detail = f"{a if isinstance(a, str) else 'ink'} vs {b if isinstance(b, str) else 'ink'}"
            else:
                same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
                detail = "max |diff| " + (
                    f"{np.abs(a - b).max():.6g}" if a.shape == b.shape else "shapes differ"
                )
            if not same:
                differences.append(f"{name} [{cfg_name}]: {detail}")
    print(f"{checked} (input, settings) pairs, {no_ink} no-ink in both, {len(differences)} different")
    for line in differences[:40]:
        print("  " + line)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
