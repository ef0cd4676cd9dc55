"""`?preview=true`: the model's input as a PNG, and the pure functions behind it."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from app.service.images import decode_image
from app.service.preview import encode_png, input_to_canvas, preview_of
from contract.preprocessing import PreprocessConfig, normalise, preprocess
from tests.app.conftest import draw_letter, encode


def decode_png(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


def test_the_input_maps_back_to_its_canvas():
    cfg = PreprocessConfig(mean=0.2, std=0.4)
    canvas = np.random.default_rng(0).random((28, 28))
    np.testing.assert_allclose(input_to_canvas(normalise(canvas, cfg), cfg), canvas, atol=1e-6)


def test_the_png_round_trips_within_quantisation():
    canvas = np.random.default_rng(1).random((32, 32))
    pixels = decode_png(encode_png(canvas))
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 32)  # 8-bit grey, the model's size
    assert np.abs(pixels / 255.0 - canvas).max() <= 0.5 / 255 + 1e-9


def test_ink_is_white_on_black():
    cfg = PreprocessConfig()
    x = preprocess(draw_letter("T"), cfg)
    pixels = decode_png(base64.b64decode(preview_of(x, cfg).png_base64))
    assert pixels[0, 0] == 0 and pixels.max() > 200  # paper at the corner, (blurred) ink brighter


@pytest.mark.parametrize("batch_max_size", [1, 8], ids=["direct", "batched"])
def test_the_api_returns_what_the_model_received(make_client, model_dir, letter_model, batch_max_size):
    png = encode(draw_letter("R"))
    client = make_client(model_dir, batch_max_size=batch_max_size)
    response = client.post("/predict/letter", files={"file": ("r.png", png)}, params={"preview": "true"})
    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert (preview["width"], preview["height"], preview["ink"]) == (28, 28, "white_on_black")
    cfg = letter_model.manifest.preprocessing
    expected = input_to_canvas(preprocess(decode_image(png, 10**8, 10**5), cfg), cfg)
    pixels = decode_png(base64.b64decode(preview["png_base64"]))
    assert np.abs(pixels / 255.0 - expected).max() <= 0.5 / 255 + 1e-6


def test_no_preview_unless_asked(client):
    body = client.post("/predict/letter", files={"file": ("r.png", encode(draw_letter("R")))}).json()
    assert "preview" not in body


def test_the_openapi_schema_documents_it(client):
    spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/predict/{task}"]["post"]["parameters"]}
    assert params["preview"]["schema"]["type"] == "boolean" and params["preview"]["description"]
    fields = spec["components"]["schemas"]["Preview"]["properties"]
    assert {"png_base64", "width", "height", "ink"} <= set(fields)
    assert "white ink on black" in fields["png_base64"]["description"]
