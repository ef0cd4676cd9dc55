"""Fixtures for the service tests: tiny ONNX models with manifests, images drawn in code, clients.

Nothing is downloaded. The model is a linear layer built with the `onnx` helper API (no torch),
so its logits can be recomputed in numpy to check the whole serving path.
"""

from __future__ import annotations

import io
import os
import string
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from app.config import Settings
from app.main import create_app
from contract.manifest import Head, InputSpec, Manifest, OnnxFile, TrainingInfo, sha256_of
from contract.preprocessing import PreprocessConfig

LETTERS = list(string.ascii_uppercase)
LETTER_HEADS = [("letter", "letter_logits", LETTERS)]
# A Bengali-like three-head model, with small label sets.
GRAPHEME_HEADS = [
    ("grapheme_root", "grapheme_root_logits", [f"root_{i}" for i in range(11)]),
    ("vowel_diacritic", "vowel_diacritic_logits", [f"vowel_{i}" for i in range(5)]),
    ("consonant_diacritic", "consonant_diacritic_logits", [f"consonant_{i}" for i in range(3)]),
]
ONNX_OPSET = 17
ONNX_IR_VERSION = 8


@dataclass
class TinyModel:
    """Where a test model lies and the weights that let a test recompute its logits."""

    directory: Path
    manifest: Manifest
    weights: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> dict[str, np.ndarray]:
        flat = x.reshape(x.shape[0], -1).astype(np.float64)
        return {
            head.name: flat @ w + b
            for head, (w, b) in zip(self.manifest.heads, self.weights.values(), strict=True)
        }


def build_onnx(
    path: Path, outputs: dict[str, int], input_name: str = "image", seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """image [N,1,28,28] → Flatten → one Gemm per output [N, classes]. Returns output → (W, b)."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Flatten", [input_name], ["flat"], axis=1)]
    initializers, graph_outputs, weights = [], [], {}
    for name, classes in outputs.items():
        w = rng.normal(0.0, 0.3, size=(28 * 28, classes)).astype(np.float32)
        b = rng.normal(0.0, 0.1, size=classes).astype(np.float32)
        initializers += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
        nodes.append(helper.make_node("Gemm", ["flat", f"{name}_w", f"{name}_b"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", classes]))
        weights[name] = (w, b)
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 1, 28, 28])],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return weights


def write_model(
    root: Path,
    name: str = "tiny-letters",
    task: str = "letter",
    heads: list[tuple[str, str, list[str]]] | None = None,
    *,
    onnx_outputs: dict[str, int] | None = None,
    input_name: str = "image",
    sha256: str | None = None,
    seed: int = 0,
) -> TinyModel:
    """Write `root/<name>/{model.onnx, manifest.json}`. `onnx_outputs` / `input_name` / `sha256`
    let a test make the graph or checksum disagree with the manifest."""
    heads = heads if heads is not None else LETTER_HEADS
    directory = root / name
    directory.mkdir(parents=True)
    onnx_path = directory / "model.onnx"
    outputs = onnx_outputs or {output: len(labels) for _, output, labels in heads}
    weights = build_onnx(onnx_path, outputs, input_name=input_name, seed=seed)
    manifest = Manifest(
        name=name,
        task=task,
        version="0.0.1",
        created=datetime(2024, 1, 1, tzinfo=UTC),
        architecture="linear",
        onnx=OnnxFile(file="model.onnx", sha256=sha256 or sha256_of(onnx_path)),
        input=InputSpec(name="image", shape=(None, 1, 28, 28)),
        preprocessing=PreprocessConfig(),
        heads=[Head(name=h, output=o, labels=labels) for h, o, labels in heads],
        metrics={"val_accuracy": 0.5},
        training=TrainingInfo(command="pytest fixture", config={}),
    )
    manifest.save(directory)
    return TinyModel(directory=directory, manifest=manifest, weights=weights)


# Settings for tests that hold a prediction mid-computation and meanwhile call the service: in a
# worker thread (the default, stated so that these tests do not hang on the loop).
ONE_IN_A_THREAD = {"max_concurrency": 1, "compute_in_event_loop": False}


def predict_scope() -> dict[str, Any]:
    """A raw ASGI scope for a multipart `POST /predict/letter`, for tests that drive `receive` and
    `send` by hand (a stalled or endless upload that a test client cannot send)."""
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict/letter", "raw_path": b"/predict/letter", "root_path": "",
        "query_string": b"", "client": ("test", 1), "server": ("test", 80),
        "headers": [(b"content-type", b"multipart/form-data; boundary=x")],
    }  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from HWR_* variables of the shell that runs it."""
    for name in [n for n in os.environ if n.startswith("HWR_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def model_writer() -> Callable[..., TinyModel]:
    """`model_writer(root, name=..., task=..., heads=..., ...)` → a TinyModel (see `write_model`)."""
    return write_model


@pytest.fixture(scope="session")
def grapheme_heads() -> list[tuple[str, str, list[str]]]:
    return GRAPHEME_HEADS


@pytest.fixture(scope="session")
def letter_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return write_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def model_dir(letter_model: TinyModel) -> Path:
    return letter_model.directory.parent


@pytest.fixture(scope="session")
def multi_head_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_model(root)
    write_model(root, name="tiny-graphemes", task="grapheme", heads=GRAPHEME_HEADS, seed=1)
    return root


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """`make_client(model_dir, **settings)` → a started TestClient (lifespan ran, models loaded)."""
    with ExitStack() as stack:

        def make(model_dir: Path, **overrides: Any) -> TestClient:
            app = create_app(Settings(model_dir=model_dir, **overrides))
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture
def client(make_client: Callable[..., TestClient], model_dir: Path) -> TestClient:
    return make_client(model_dir)


@pytest.fixture
def crashing_client(model_dir: Path) -> Iterator[TestClient]:
    """The service with one more route, GET /boom, that raises RuntimeError("secret internal
    detail"): a bug as the last-resort handler meets it. The 500 comes back as a response."""
    app = create_app(Settings(model_dir=model_dir))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


# --- images drawn in code -------------------------------------------------------------------


def draw_letter(text: str = "A", size: tuple[int, int] = (160, 160)) -> np.ndarray:
    """A thick dark letter on white paper, RGB uint8 (height, width)."""
    height, width = size
    image = np.full((height, width, 3), 255, np.uint8)
    scale = min(height, width) / 40
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    origin = ((width - tw) // 2, (height + th) // 2)
    thickness = max(2, int(scale * 3))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    return image


def encode(image: np.ndarray | Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def letter_rgb() -> np.ndarray:
    return draw_letter("A")


@pytest.fixture(scope="session")
def letter_png(letter_rgb: np.ndarray) -> bytes:
    return encode(letter_rgb, "PNG")


@pytest.fixture(scope="session")
def letter_jpeg(letter_rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(letter_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


@pytest.fixture(scope="session")
def images() -> type[Images]:
    return Images


class Images:
    """Image builders for tests, handed out by the `images` fixture."""

    draw_letter = staticmethod(draw_letter)
    encode = staticmethod(encode)

    @staticmethod
    def gray16_png() -> bytes:
        gray = cv2.cvtColor(draw_letter("B"), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
        ok, data = cv2.imencode(".png", gray)
        assert ok
        return data.tobytes()

    @staticmethod
    def palette_png() -> bytes:
        return encode(Image.fromarray(draw_letter("C")).convert("P", palette=Image.Palette.ADAPTIVE))

    @staticmethod
    def transparent_rgba_png() -> bytes:
        """Black strokes on a fully transparent canvas (what drawing apps export)."""
        ink = cv2.cvtColor(draw_letter("D"), cv2.COLOR_RGB2GRAY) < 128
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[ink] = (0, 0, 0, 255)
        return encode(rgba, "PNG")

    @staticmethod
    def cmyk_jpeg() -> bytes:
        return encode(Image.fromarray(draw_letter("E")).convert("CMYK"), "JPEG")

    @staticmethod
    def animated_gif() -> bytes:
        """Frame 0 holds the letter; frame 1 is blank, so classifying it would give 422."""
        first = Image.fromarray(draw_letter("F"))
        blank = Image.new("RGB", first.size, "white")
        return encode(first, "GIF", save_all=True, append_images=[blank], duration=100, loop=0)

    @staticmethod
    def progressive_jpeg() -> bytes:
        return encode(draw_letter("J"), "JPEG", progressive=True, quality=90)

    @staticmethod
    def multipage_tiff(letter_first: bool = True) -> bytes:
        """Two pages, one with a letter and one blank; `letter_first` says which comes first."""
        letter = Image.fromarray(draw_letter("K"))
        blank = Image.new("RGB", letter.size, "white")
        first, second = (letter, blank) if letter_first else (blank, letter)
        return encode(first, "TIFF", save_all=True, append_images=[second])

    @staticmethod
    def palette_alpha_png() -> bytes:
        """A palette image whose paper colour is transparent (a `tRNS` chunk): mode P + transparency."""
        image = Image.fromarray(draw_letter("M")).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        paper = image.getpixel((0, 0))
        return encode(image, "PNG", transparency=paper)

    @staticmethod
    def grey_alpha_png() -> bytes:
        """Mode LA: grey ink, alpha 0 on the paper."""
        grey = cv2.cvtColor(draw_letter("N"), cv2.COLOR_RGB2GRAY)
        alpha = np.where(grey < 128, 255, 0).astype(np.uint8)
        return encode(Image.fromarray(np.dstack([grey, alpha]), "LA"))

    @staticmethod
    def rgb48_png() -> bytes:
        """16 bits per channel colour (cv2 writes 16-bit BGR PNGs; Pillow reads them as RGB)."""
        rgb = draw_letter("P").astype(np.uint16) * 257
        ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        return data.tobytes()

    @staticmethod
    def animated_png() -> bytes:
        """APNG: frame 0 holds the letter, frame 1 is blank."""
        first = Image.fromarray(draw_letter("Q"))
        blank = Image.new("RGB", first.size, "white")
        return encode(first, "PNG", save_all=True, append_images=[blank], duration=100)

    @staticmethod
    def animated_webp() -> bytes:
        first = Image.fromarray(draw_letter("S"))
        blank = Image.new("RGB", first.size, "white")
        return encode(first, "WEBP", save_all=True, append_images=[blank], duration=100, lossless=True)

    @staticmethod
    def strip_png(width: int, height: int) -> bytes:
        """A real (decodable) one-pixel-thin image with a dark dash in the middle of the paper."""
        strip = np.full((height, width), 255, np.uint8)
        if width >= height:
            strip[:, width // 3 : 2 * width // 3] = 0
        else:
            strip[height // 3 : 2 * height // 3, :] = 0
        return encode(strip)

    @staticmethod
    def mark_at_the_end_of_a_strip_png() -> bytes:
        """The audit's 119-byte PNG: 520×8 paper with a 12×6 mark near its right end (the closer
        look at a small mark once cropped past the image's edge: a 500)."""
        strip = np.full((8, 520), 255, np.uint8)
        strip[1:7, 500:512] = 0
        return encode(strip)

    @staticmethod
    def png_bomb(side: int = 8_000) -> bytes:
        """A valid, complete PNG of side x side 8-bit grey zeros: ~side²/1000 bytes on the wire,
        side² bytes once decoded (8000 → 64 MB from ~70 kB)."""

        def chunk(kind: bytes, payload: bytes) -> bytes:
            crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
            return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

        compressor = zlib.compressobj(9)
        row = b"\x00" * (side + 1)  # filter byte + pixels
        idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

    @staticmethod
    def exif_rotated_jpeg(orientation: int = 6) -> tuple[bytes, tuple[int, int]]:
        """A wide photo whose EXIF says "rotate"; returns the bytes and the upright (h, w)."""
        image = Image.fromarray(draw_letter("G", size=(120, 200)))
        exif = Image.Exif()
        exif[0x0112] = orientation
        return encode(image, "JPEG", exif=exif.tobytes()), (200, 120)

    @staticmethod
    def blank_photo() -> bytes:
        rng = np.random.default_rng(0)
        paper = np.clip(rng.normal(235, 2, size=(240, 320, 3)), 0, 255).astype(np.uint8)
        return encode(paper, "JPEG")

    @staticmethod
    def huge_header_png(width: int, height: int) -> bytes:
        """A valid PNG signature + IHDR that claims width x height, then truncated pixel data.

        Decoding it would fail (415); a 413 therefore proves the size was refused from the header.
        """

        def chunk(kind: bytes, payload: bytes) -> bytes:
            crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
            return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

        ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
        idat = zlib.compress(b"\x00" * 1024)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
