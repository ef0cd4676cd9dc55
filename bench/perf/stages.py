"""In-process stage timings: our decode, preprocessing and ONNX inference, and the seed baseline's.

    .venv/bin/python -m bench.perf.stages [--repeats 200] [--task letter] [--json stages.json]

Median and p95 over up to `--repeats` calls (at most `--budget` seconds per stage) after a warm-up,
cycling over the upload set's images of each kind. Decoding passes `app.service.images.decode_image`
every keyword its signature accepts that `Settings` also has (so a reduced-size decode setting is
used as the service would use it), plus `--decode-kwargs` for keywords that are not settings. The
predict route's own decode + preprocess is timed too, when its `prepare` has the signature known here.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.config import Settings
from app.runtime.registry import load_model
from app.service import pipeline
from app.service.images import decode_image
from bench.photos import Upload, build_uploads, validation_glyphs
from bench.server import REPO
from contract.manifest import Manifest
from contract.preprocessing import preprocess

STAGE_KINDS = ("crop", "photo_640", "photo_12mp")


@dataclass(frozen=True)
class StageTiming:
    stage: str
    input: str
    median_ms: float
    p95_ms: float
    repeats: int
    note: str = ""


def measure(fn: Callable[[int], object], repeats: int, budget_s: float, warmup: int = 3) -> tuple[float, ...]:
    """(median ms, p95 ms, calls) of fn(i) for i = 0, 1, …; stops early once the budget is spent."""
    for i in range(warmup):
        fn(i)
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < repeats and (len(seconds) < 5 or time.perf_counter() < deadline):
        begin = time.perf_counter()
        fn(len(seconds))
        seconds.append(time.perf_counter() - begin)
    ms = np.asarray(seconds) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 95)), len(ms)


def parse_kwargs(text: str) -> dict[str, object]:
    """Parse "a=1,b=x" into {"a": 1, "b": "x"} (Python literals where they parse, else strings)."""
    out: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def decode_kwargs(settings: Settings, extra: dict[str, object] | None = None) -> dict[str, object]:
    """The keywords of `decode_image` (beyond the data) that Settings can fill, as the service would,
    then `extra` (e.g. a reduced-size decode keyword that is not a setting), where the signature has it."""
    params = list(inspect.signature(decode_image).parameters)[1:]
    fields = type(settings).model_fields
    kwargs = {name: getattr(settings, name) for name in params if name in fields}
    return kwargs | {name: value for name, value in (extra or {}).items() if name in params}


def decode(data: bytes, kwargs: dict[str, object]) -> np.ndarray:
    return decode_image(data, **kwargs)


def service_prepare(settings: Settings, manifest: Manifest) -> Callable[[bytes], object]:
    """The service's own decode + preprocess of one upload (app.service.pipeline.prepare)."""
    return lambda data: pipeline.prepare(data, manifest.preprocessing, settings, pipeline.Stopwatch())


def run_stages(
    uploads: list[Upload],
    task: str,
    settings: Settings,
    repeats: int = 200,
    budget_s: float = 3.0,
    decode_extra: dict[str, object] | None = None,
) -> list[StageTiming]:
    from bench.perf.baseline import MODEL_DIRS, SeedPipeline

    model_dir = REPO / "models" / MODEL_DIRS[task]
    manifest = Manifest.load(model_dir)
    cfg = manifest.preprocessing
    by_kind = {kind: [u.data for u in uploads if u.kind == kind] for kind in STAGE_KINDS}
    by_kind = {kind: items for kind, items in by_kind.items() if items}
    results: list[StageTiming] = []

    def add(stage: str, name: str, fn: Callable[[int], object], note: str = "") -> None:
        median, p95, n = measure(fn, repeats, budget_s)
        results.append(StageTiming(stage, name, round(median, 3), round(p95, 3), int(n), note))
        print(f"  {stage:<28} {name:<11} median {median:8.3f} ms  p95 {p95:8.3f} ms  (n={n}) {note}")

    kwargs = decode_kwargs(settings, decode_extra)
    decoded = {kind: [decode(d, kwargs) for d in items] for kind, items in by_kind.items()}
    for kind, items in by_kind.items():
        shape = "×".join(map(str, decoded[kind][0].shape[:2][::-1]))
        note = f"decoded to {shape}; keywords {sorted(kwargs)}" if kind == "photo_12mp" else ""
        add("decode", kind, lambda i, items=items: decode(items[i % len(items)], kwargs), note)
    for kind, images in decoded.items():
        add("preprocess", kind, lambda i, images=images: preprocess(images[i % len(images)], cfg))
    prepare = service_prepare(settings, manifest)
    for kind, items in by_kind.items():
        add("route decode+preprocess", kind, lambda i, items=items: prepare(items[i % len(items)]))

    # The file the service would serve with these settings (the int8 variant by default).
    served = load_model(model_dir, manifest, settings.ort_intra_op_threads, settings.model_variant)
    inputs = np.stack([preprocess(images[0], cfg) for images in decoded.values()] * 8)
    for batch in (1, 8):
        add(
            "onnx inference",
            f"batch {batch}",
            lambda i, batch=batch: served.classifier.predict(inputs[:batch]),
            f"{served.variant} model, {settings.ort_intra_op_threads} ORT thread(s) (0 = its default)",
        )

    seed = SeedPipeline.load(model_dir)
    grays = {kind: [seed.decode(d) for d in items] for kind, items in by_kind.items()}
    for kind, items in by_kind.items():
        add("baseline decode+300²", kind, lambda i, items=items: seed.decode(items[i % len(items)]))
    for kind, images in grays.items():
        add(
            "baseline kmeans preprocess",
            kind,
            lambda i, images=images: seed.preprocess(images[i % len(images)]),
        )
    x = seed.preprocess(next(iter(grays.values()))[0])
    add("baseline torch eager", "batch 1", lambda i: seed.infer(x), seed.weights)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="letter", choices=["letter", "digit"])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per stage at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--decode-kwargs",
        type=parse_kwargs,
        default={},
        metavar="NAME=VALUE,...",
        help="extra decode_image keywords",
    )
    args = parser.parse_args(argv)
    counts = {"crop": 8, "photo_640": 8, "photo_12mp": 2}
    uploads = build_uploads(counts, validation_glyphs(args.task, 8, args.seed), args.seed)
    results = run_stages(uploads, args.task, Settings(), args.repeats, args.budget, args.decode_kwargs)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
