"""The decode budget across the images of one request (`HWR_MAX_DECODE_COST`): counted from the
headers (width × height × bytes per pixel, 16-bit samples and colour included) and refused with
413 `decode_budget_exceeded` before any image is decoded, on every path that takes several."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.service import images as images_module
from app.service.images import check_decode_budget, decode_cost
from tests.app.conftest import draw_letter, encode
from tests.app.writer_models import write_writer_model

MAX_SIDE = 6316  # the largest square under the default 40 Mpx cap, as bench/proofs/memory_probe.py sends
INFER = "/v2/models/tiny-letters/infer"


def png_header(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A PNG whose header declares the image and whose data is a stub: enough for the header to
    be read, never enough to decode (a decode would answer 415, not 413)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


def pil_bytes(mode: str, fmt: str = "PNG", size: tuple[int, int] = (30, 20), **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, fmt, **params)
    return buffer.getvalue()


S = Settings()


@pytest.mark.parametrize(
    ("data", "per_pixel"),
    [
        (png_header(30, 20, 8, 0), 1),  # grey
        (png_header(30, 20, 16, 0), 2),  # 16-bit grey
        (png_header(30, 20, 8, 2), 3),  # RGB
        (png_header(30, 20, 16, 2), 6),  # 48-bit colour: Pillow says "RGB"
        (png_header(30, 20, 16, 6), 8),  # 64-bit RGBA
        (png_header(30, 20, 8, 4), 4),  # grey + alpha becomes RGBA
        (pil_bytes("P"), 3),  # a palette becomes RGB
        (pil_bytes("RGB", "JPEG"), 3),
        (pil_bytes("L", "JPEG"), 1),
        (pil_bytes("CMYK", "JPEG"), 4),
        (pil_bytes("RGB", "TIFF"), 3),
        (pil_bytes("I;16", "TIFF"), 2),
        (pil_bytes("RGBA", "WEBP", lossless=True), 4),
        (pil_bytes("RGB", "BMP"), 3),
        (pil_bytes("L", "GIF"), 3),  # GIF is a palette
    ],
)
def test_the_cost_is_read_from_the_header(data: bytes, per_pixel: int):
    assert decode_cost(data, S.max_pixels, S.max_side) == 30 * 20 * per_pixel


@pytest.mark.parametrize(
    "data", [b"", b"not an image", png_header(MAX_SIDE + 100, MAX_SIDE + 100, 16, 2), b"\x89PNG\r\n\x1a\n"]
)
def test_files_that_will_never_decode_cost_nothing(data: bytes):
    # Their own answer (415, 413 image_too_large, 422 empty) comes when they are opened to decode.
    assert decode_cost(data, S.max_pixels, S.max_side) == 0


def test_the_default_passes_one_maximal_16_bit_image_but_not_a_batch_of_them():
    colour48 = decode_cost(png_header(MAX_SIDE, MAX_SIDE, 16, 2), S.max_pixels, S.max_side)
    rgba64 = decode_cost(png_header(MAX_SIDE, MAX_SIDE, 16, 6), S.max_pixels, S.max_side)
    assert colour48 == MAX_SIDE * MAX_SIDE * 6
    assert colour48 <= rgba64 <= S.max_decode_cost < 2 * colour48
    check_decode_budget([png_header(MAX_SIDE, MAX_SIDE, 16, 6)], S.max_decode_cost, S.max_pixels, S.max_side)
    with pytest.raises(Exception, match="decode budget per request is 320000000 bytes"):
        check_decode_budget(
            [png_header(MAX_SIDE, MAX_SIDE, 16, 2)] * S.max_batch_files,
            S.max_decode_cost,
            S.max_pixels,
            S.max_side,
        )


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded although the request is over its decode budget")

    monkeypatch.setattr(images_module, "decode_image", refuse)


def over_budget(response) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    if isinstance(error, str):  # KServe v2's own error shape: {"error": message}
        assert "decode budget per request" in error
    else:
        assert error["code"] == "decode_budget_exceeded"
        assert "decode budget per request" in error["message"]


def v2_images(*encoded: bytes) -> dict:
    data = [base64.b64encode(e).decode() for e in encoded]
    return {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [len(data)], "data": data}]}


def multipart(field: str, files: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (f"{i}.png", data, "image/png")) for i, data in enumerate(files)]


@pytest.fixture
def budget_client(make_client, model_dir: Path, tmp_path: Path) -> TestClient:
    # Two 200 × 200 RGB images fit (240,000 bytes), a third does not.
    writer_model = write_writer_model(tmp_path / "writer-model", threshold=0.9)
    return make_client(
        model_dir,
        writer_model_dir=writer_model,
        writer_db=str(tmp_path / "w.sqlite3"),
        max_decode_cost=250_000,
    )


RGB_200 = encode(draw_letter("A", (200, 200)))  # RGB


@pytest.mark.parametrize(
    ("method", "path", "field", "data"),
    [
        ("POST", "/predict/letter/batch", "files", None),
        ("POST", "/writers", "files", {"name": "ann"}),
        ("POST", "/identify/writer", "files", None),
    ],
)
def test_every_multi_image_form_path_keeps_to_the_budget(
    budget_client: TestClient, no_decoding: None, method: str, path: str, field: str, data: dict | None
):
    assert decode_cost(RGB_200, S.max_pixels, S.max_side) == 120_000
    over_budget(budget_client.request(method, path, files=multipart(field, [RGB_200] * 3), data=data))


def test_v2_infer_keeps_to_the_budget(budget_client: TestClient, no_decoding: None):
    over_budget(budget_client.post(INFER, json=v2_images(RGB_200, RGB_200, RGB_200)))


def test_adding_samples_keeps_to_the_budget(budget_client: TestClient):
    response = budget_client.post("/writers", data={"name": "ann"}, files=multipart("files", [RGB_200]))
    assert response.status_code == 201, response.text
    writer = response.json()["id"]
    over_budget(budget_client.post(f"/writers/{writer}/samples", files=multipart("files", [RGB_200] * 3)))


def test_within_the_budget_every_path_answers(budget_client: TestClient):
    two = [RGB_200, RGB_200]
    response = budget_client.post("/predict/letter/batch", files=multipart("files", two))
    assert response.status_code == 200 and all(r["result"] for r in response.json()["results"])
    assert budget_client.post(INFER, json=v2_images(*two)).status_code == 200
    assert (
        budget_client.post("/writers", data={"name": "bo"}, files=multipart("files", two)).status_code == 201
    )
    assert budget_client.post("/identify/writer", files=multipart("files", two)).status_code == 200


def test_default_settings_refuse_two_maximal_48_bit_images_unread(client: TestClient, no_decoding: None):
    page = png_header(MAX_SIDE, MAX_SIDE, 16, 2)
    over_budget(client.post(INFER, json=v2_images(page, page)))
    over_budget(client.post("/predict/letter/batch", files=multipart("files", [page, page])))
