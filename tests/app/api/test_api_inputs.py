"""Every kind of upload the hardening issue lists, through the whole endpoint: one defined outcome each.

The table is the contract docs/reliability.md quotes. Files are made here, in code. Names and
content types are deliberately wrong ("whatever.bin", image/png for everything): only the bytes count.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.app.conftest import Images, draw_letter, encode

OK = (200, None)
CASES: dict[str, tuple[Callable[[], bytes], tuple[int, str | None]]] = {
    # decoded and classified
    "png": (lambda: encode(draw_letter("A")), OK),
    "baseline jpeg": (lambda: encode(draw_letter("A"), "JPEG"), OK),
    "progressive jpeg": (Images.progressive_jpeg, OK),
    "cmyk jpeg": (Images.cmyk_jpeg, OK),
    "exif-rotated jpeg": (lambda: Images.exif_rotated_jpeg(6)[0], OK),
    "16-bit grey png": (Images.gray16_png, OK),
    "16-bit colour png": (Images.rgb48_png, OK),
    "palette png": (Images.palette_png, OK),
    "palette png with transparency": (Images.palette_alpha_png, OK),
    "rgba png, transparent paper": (Images.transparent_rgba_png, OK),
    "grey + alpha png": (Images.grey_alpha_png, OK),
    "animated gif (first frame)": (Images.animated_gif, OK),
    "animated png (first frame)": (Images.animated_png, OK),
    "animated webp (first frame)": (Images.animated_webp, OK),
    "multi-page tiff (first page)": (Images.multipage_tiff, OK),
    "bmp": (lambda: encode(draw_letter("A"), "BMP"), OK),
    "lossy webp": (lambda: encode(draw_letter("A"), "WEBP"), OK),
    # defined refusals
    "multi-page tiff, blank first page": (lambda: Images.multipage_tiff(letter_first=False), (422, "no_ink")),
    "blank photo": (Images.blank_photo, (422, "no_ink")),
    "zero bytes": (lambda: b"", (422, "empty_file")),
    "text file named .png": (lambda: b"just some text\n" * 20, (415, "unsupported_image")),
    "html": (lambda: b"<!doctype html><title>x</title>", (415, "unsupported_image")),
    "truncated png": (lambda: encode(draw_letter("A"))[:400], (415, "unsupported_image")),
    "truncated jpeg": (lambda: encode(draw_letter("A"), "JPEG")[:600], (415, "unsupported_image")),
    "jpeg cut short, then given back its end marker": (
        lambda: cut_short_jpeg(encode(draw_letter("A"), "JPEG")),
        (415, "unsupported_image"),
    ),
    "jpeg with garbage after its header": (
        lambda: encode(draw_letter("A"), "JPEG")[:200] + b"\x13" * 2000,
        (415, "unsupported_image"),
    ),
    "1 x 100000 png": (lambda: Images.strip_png(1, 100_000), (413, "image_too_large")),
    "100000 x 1 png": (lambda: Images.strip_png(100_000, 1), (413, "image_too_large")),
    "png bomb (8000², 60 kB)": (Images.png_bomb, (413, "image_too_large")),
    "png header claiming 20000²": (lambda: Images.huge_header_png(20_000, 20_000), (413, "image_too_large")),
}


def cut_short_jpeg(data: bytes) -> bytes:
    """Half of its entropy-coded data, closed with the end-of-image marker as if whole."""
    return data[: len(data) // 2] + b"\xff\xd9"


@pytest.mark.parametrize("case", list(CASES))
def test_each_input_has_its_defined_outcome(client, case):
    build, (status, code) = CASES[case]
    response = client.post("/predict/letter", files={"file": ("whatever.bin", build(), "image/png")})
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code
    else:
        assert response.json()["predictions"]


def test_a_strip_within_the_side_cap_is_answered(client, images):
    # 1 x 20000 decodes; whether it holds ink is for preprocessing to say, never a crash.
    response = client.post("/predict/letter", files={"file": ("s.png", images.strip_png(20_000, 1))})
    assert response.status_code in {200, 422}, response.text


def test_upload_over_the_byte_cap(make_client, model_dir, images):
    client = make_client(model_dir, max_upload_bytes=50_000)
    response = client.post("/predict/letter", files={"file": ("big.tif", images.multipage_tiff())})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"file": "aGVsbG8="}}, 422, "validation_error"),  # not multipart
        ({"content": b"\x89PNG...", "headers": {"content-type": "image/png"}}, 422, "validation_error"),
        ({"data": {"file": "not a file but a text field"}}, 422, "validation_error"),
        (
            {"content": b"--b\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=b"}},
            422,
            "validation_error",
        ),
        ({"content": b"x", "headers": {"content-type": "multipart/form-data"}}, 400, "bad_request"),
    ],
    ids=["json-body", "raw-image-body", "text-field", "unterminated-multipart", "multipart-without-boundary"],
)
def test_malformed_requests_are_4xx(client, kwargs, status, code):
    response = client.post("/predict/letter", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
