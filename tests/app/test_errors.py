"""One error shape for everything, and no input that reaches the last-resort 500."""

from __future__ import annotations

import base64

import numpy as np
import pytest


def test_unknown_path_and_wrong_method_use_the_error_shape(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    response = client.get("/predict/letter")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("path", ["/health/live/", "/writers/", "/models/", "/docs/", "/static"])
def test_a_forged_host_is_never_echoed_in_a_redirect(client, path):
    # Starlette's trailing-slash redirect built an absolute Location from the client's Host.
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert "evil.example" not in response.headers.get("location", "")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_last_resort_handler_hides_the_stack_trace(crashing_client, caplog):
    response = crashing_client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret internal detail" in caplog.text  # but the log has it


def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 8))):
            buf[int(rng.integers(8, len(buf)))] = int(rng.integers(0, 256))
        cut = int(rng.integers(len(buf) // 2, len(buf) + 1))
        out.append(bytes(buf[:cut]))
    return out


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_corrupted_images_never_reach_the_500_handler(client, images, fmt):
    # TestClient re-raises anything that reaches the 500 handler, so an unhandled error fails here.
    valid = images.encode(images.draw_letter("H", size=(64, 64)), fmt)
    for data in _mutations(valid, count=25, seed=len(fmt)):
        response = client.post("/predict/letter", files={"file": ("x", data)})
        assert response.status_code in {200, 413, 415, 422}, response.text
        if response.status_code != 200:
            assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((1, 1), np.uint8),
        np.array([[0, 255]], np.uint8),
        np.array([[0, 255], [255, 0]], np.uint8),
        np.tile(np.array([[0], [255]], np.uint8), (1, 5000)),
        np.zeros((40, 40, 4), np.uint8),  # fully transparent
    ],
    ids=["1x1", "1x2", "2x2", "2x5000", "transparent"],
)
def test_degenerate_images_get_an_answer_not_a_crash(client, images, pixels):
    response = client.post("/predict/letter", files={"file": ("x.png", images.encode(pixels))})
    assert response.status_code in {200, 422}, response.text


def test_a_small_mark_at_the_end_of_a_strip_is_read_by_every_endpoint(client, images, letter_png):
    # Regression: this 119-byte PNG answered 500 on every endpoint that preprocesses an upload,
    # and failed a whole batch, good files included.
    strip = images.mark_at_the_end_of_a_strip_png()
    assert len(strip) == 119
    single = client.post("/predict/letter", files={"file": ("strip.png", strip, "image/png")})
    assert single.status_code == 200, single.text
    files = [("files", ("a.png", letter_png, "image/png")), ("files", ("strip.png", strip, "image/png"))]
    batch = client.post("/predict/letter/batch", files=files)
    assert batch.status_code == 200, batch.text
    assert all("result" in item for item in batch.json()["results"])
    v2 = client.post(
        "/v2/models/tiny-letters/infer",
        json={"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                          "data": [base64.b64encode(strip).decode()]}]},
    )  # fmt: skip
    assert v2.status_code == 200, v2.text
