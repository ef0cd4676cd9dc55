"""Random and mutated upload bodies against the preprocessing and the endpoint: only defined outcomes.

    .venv/bin/python -m bench.proofs.fuzz_bodies                    # 10,000 bodies, seed 0, both targets
    .venv/bin/python -m bench.proofs.fuzz_bodies --count 500 --seed 3 --out /tmp/fuzz.json

Bodies are built from a seeded corpus of valid images (every supported format, many modes, animated
and multi-page ones) and then mutated (bit flips, truncation, header fields overwritten with extreme
values, byte runs inserted, deleted or duplicated, two files spliced), plus pure noise with and
without a valid signature. Each body goes through
  - the pipeline: `decode_image` + `preprocess`, where only the service's own errors
    (EmptyUpload, UnsupportedImage, ImageTooLarge) and NoInkError may escape, and
  - the endpoint: POST /predict/<task> in-process, where only 200, 413, 415 and 422 may come back.
Anything else is a failure: it is printed, the body saved under --failures, and the exit code is 1.
"""

from __future__ import annotations

import io
import json
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.errors import ServiceError
from app.main import create_app
from app.service.images import decode_image
from bench import cli
from bench.server import REPO
from contract.manifest import Manifest
from contract.preprocessing import NoInkError, PreprocessConfig, preprocess

ALLOWED_STATUSES = {200, 413, 415, 422}
SIGNATURES = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"GIF87a", b"BM", b"II*\x00", b"MM\x00*"]
SIGNATURES += [
    b"RIFF\x00\x10\x00\x00WEBPVP8 ",
    b"RIFF\x00\x10\x00\x00WEBPVP8L",
    b"RIFF\x00\x10\x00\x00WEBPVP8X",
]
EXTREMES = [
    b"\x00\x00",
    b"\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\x80\x00",
]


@dataclass
class Report:
    target: str
    bodies: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        # Not dataclasses.asdict: it rebuilds a Counter from (key, count) pairs, counting the pairs.
        return {**vars(self), "outcomes": dict(self.outcomes.most_common())}


def _drawing(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Paper with a few random pen strokes, RGB uint8."""
    image = np.full((height, width, 3), rng.integers(180, 256), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        ink = tuple(int(v) for v in rng.integers(0, 90, size=3))
        cv2.line(image, p1, p2, ink, int(rng.integers(1, max(2, min(height, width) // 6))))
    return image


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def seed_corpus(rng: np.random.Generator) -> list[bytes]:
    """Valid files of every supported format, in the modes and layouts uploads come in."""
    corpus = []
    for height, width in [(16, 16), (40, 28), (64, 96), (1, 64), (96, 2), (480, 640)]:
        rgb = Image.fromarray(_drawing(rng, height, width))
        grey, blank = rgb.convert("L"), Image.new("RGB", rgb.size, "white")
        corpus += [
            _encode(rgb, "PNG"),
            _encode(grey, "PNG"),
            _encode(rgb.convert("RGBA"), "PNG"),
            _encode(grey.convert("LA"), "PNG"),
            _encode(rgb.convert("P"), "PNG", transparency=0),
            _encode(grey.convert("1"), "PNG"),
            _encode(Image.fromarray(np.asarray(grey).astype(np.uint16) * 257), "PNG"),
            _encode(rgb, "PNG", save_all=True, append_images=[blank]),
            _encode(rgb, "JPEG", quality=int(rng.integers(20, 95))),
            _encode(rgb, "JPEG", progressive=True),
            _encode(rgb.convert("CMYK"), "JPEG"),
            _encode(grey, "JPEG"),
            _encode(rgb, "GIF"),
            _encode(rgb, "GIF", save_all=True, append_images=[blank], duration=50, loop=0),
            _encode(rgb, "BMP"),
            _encode(grey.convert("1"), "BMP"),
            _encode(rgb, "TIFF"),
            _encode(rgb, "TIFF", compression="tiff_lzw"),
            _encode(grey, "TIFF", compression="tiff_adobe_deflate"),
            _encode(rgb, "TIFF", save_all=True, append_images=[blank]),
            _encode(rgb, "WEBP"),
            _encode(rgb.convert("RGBA"), "WEBP", lossless=True),
            _encode(rgb, "WEBP", save_all=True, append_images=[blank], duration=50),
        ]
    return corpus


def mutate(data: bytes, rng: np.random.Generator, donor: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        if not buf:
            break
        op = int(rng.integers(0, 7))
        at = int(rng.integers(0, len(buf)))
        if op == 0:  # flip a few bits
            for _ in range(int(rng.integers(1, 17))):
                i = int(rng.integers(0, len(buf)))
                buf[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:  # truncate
            del buf[at:]
        elif op == 2:  # an extreme value over a header field (most fields live in the first 64 bytes)
            value = EXTREMES[int(rng.integers(0, len(EXTREMES)))]
            i = int(rng.integers(0, min(64, len(buf))))
            buf[i : i + len(value)] = value
        elif op == 3:  # insert random bytes
            buf[at:at] = rng.bytes(int(rng.integers(1, 64)))
        elif op == 4:  # delete a run
            del buf[at : at + int(rng.integers(1, 256))]
        elif op == 5:  # duplicate a run
            length = int(rng.integers(1, 512))
            buf[at:at] = buf[at : at + length]
        else:  # splice: this file's head, another file's tail
            cut = int(rng.integers(0, len(donor) + 1))
            buf = buf[:at] + bytearray(donor[cut:])
    return bytes(buf)


def generate_bodies(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` (kind, body) pairs, the same for the same seed."""
    rng = np.random.default_rng(seed)
    corpus = seed_corpus(rng)
    for _ in range(count):
        roll = rng.random()
        original = corpus[int(rng.integers(0, len(corpus)))]
        if roll < 0.10:
            yield "valid", original
        elif roll < 0.80:
            yield "mutated", mutate(original, rng, corpus[int(rng.integers(0, len(corpus)))])
        elif roll < 0.90:
            signature = SIGNATURES[int(rng.integers(0, len(SIGNATURES)))]
            yield "signature+noise", signature + rng.bytes(int(rng.integers(0, 4096)))
        else:
            yield "noise", rng.bytes(int(rng.integers(0, 4096)))


def pipeline_outcome(body: bytes, settings: Settings, config: PreprocessConfig) -> str:
    """What decode + preprocess make of a body: "ok" or the name of a defined error.
    Any other exception propagates: that is a finding."""
    try:
        image = decode_image(body, max_pixels=settings.max_pixels, max_side=settings.max_side)
        x = preprocess(image, config)
    except (ServiceError, NoInkError) as exc:
        return type(exc).__name__
    if x.shape != (1, config.canvas_size, config.canvas_size) or not np.isfinite(x).all():
        raise AssertionError(f"preprocess returned {x.dtype} {x.shape} with non-finite values")
    return "ok"


def fuzz_pipeline(bodies: list[tuple[str, bytes]], settings: Settings, config: PreprocessConfig) -> Report:
    report = Report("pipeline")
    start = time.perf_counter()
    for index, (kind, body) in enumerate(bodies):
        try:
            report.outcomes[pipeline_outcome(body, settings, config)] += 1
        except Exception as exc:  # a finding, recorded rather than stopping the run
            report.failures.append(f"#{index} {kind}: {type(exc).__name__}: {exc}")
        report.bodies += 1
    report.seconds = round(time.perf_counter() - start, 1)
    return report


def fuzz_endpoint(bodies: list[tuple[str, bytes]], client: TestClient, task: str) -> Report:
    """`client`: a started TestClient (raise_server_exceptions=False, so a 500 is seen as a 500)."""
    report = Report("endpoint")
    start = time.perf_counter()
    for index, (kind, body) in enumerate(bodies):
        response = client.post(f"/predict/{task}", files={"file": ("upload.png", body, "image/png")})
        report.outcomes[str(response.status_code)] += 1
        if response.status_code not in ALLOWED_STATUSES:
            report.failures.append(f"#{index} {kind}: HTTP {response.status_code} {response.text[:200]}")
        report.bodies += 1
    report.seconds = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = cli.seeded_parser(__doc__, count=10_000)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--task", default="letter")
    parser.add_argument("--out", type=Path, help="also write the report here as JSON")
    parser.add_argument("--failures", type=Path, default=Path("fuzz-failures"), help="failing bodies go here")
    args = parser.parse_args(argv)
    # Pillow warns about the corrupt files it is fed; that is the point, not news.
    warnings.simplefilter("ignore", UserWarning)

    bodies = list(generate_bodies(args.count, args.seed))
    settings = Settings(model_dir=args.model_dir)
    model_dirs = [p.parent for p in args.model_dir.glob("*/manifest.json")]
    manifest = next(m for m in map(Manifest.load, model_dirs) if m.task == args.task)
    reports = [fuzz_pipeline(bodies, settings, manifest.preprocessing)]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        reports.append(fuzz_endpoint(bodies, client, args.task))

    summary = {
        "count": args.count,
        "seed": args.seed,
        "kinds": dict(Counter(kind for kind, _ in bodies)),
        "reports": [r.as_json() for r in reports],
    }
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    failing = {int(f.split()[0][1:]) for r in reports for f in r.failures}
    if failing:
        args.failures.mkdir(parents=True, exist_ok=True)
        for index in sorted(failing):
            (args.failures / f"body-{args.seed}-{index}.bin").write_bytes(bodies[index][1])
        print(f"{len(failing)} failing bodies saved under {args.failures}/", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
