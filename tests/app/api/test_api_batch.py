"""`POST /predict/{task}/batch`: one result or one error per file, in order, one model call."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from app.service import pipeline as predict_module


def blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 255).save(buffer, "PNG")
    return buffer.getvalue()


def post_batch(client, parts: list[tuple[str, bytes]], task: str = "letter", **params):
    files = [("files", (name, data, "image/png")) for name, data in parts]
    return client.post(f"/predict/{task}/batch", files=files, params=params)


def test_each_file_gets_its_result_or_its_error_in_order(client, letter_png, letter_jpeg):
    parts = [
        ("a.png", letter_png),
        ("notes.png", b"not an image"),
        ("blank.png", blank_png()),
        ("b.jpg", letter_jpeg),
    ]
    response = post_batch(client, parts, k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "letter"
    assert [item["filename"] for item in body["results"]] == [name for name, _ in parts]
    first, text, blank, last = body["results"]
    assert "error" not in first and "error" not in last
    assert text["error"]["status"] == 415 and text["error"]["code"] == "unsupported_image"
    assert blank["error"]["status"] == 422 and blank["error"]["code"] == "no_ink"
    assert "result" not in text and "result" not in blank

    # The same answer as the single-file endpoint, probabilities included.
    single = client.post(
        "/predict/letter", files={"file": ("a.png", letter_png, "image/png")}, params={"k": 3}
    )
    expected = single.json()["predictions"]
    got = first["result"]["predictions"]
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    np.testing.assert_allclose(
        [p["probability"] for p in got], [p["probability"] for p in expected], rtol=1e-5
    )
    assert len(last["result"]["predictions"]) == 3


def test_no_usable_file_is_still_a_200_with_every_error(client):
    response = post_batch(client, [("x.png", b""), ("y.png", blank_png())])
    assert response.status_code == 200
    assert [item["error"]["code"] for item in response.json()["results"]] == ["empty_file", "no_ink"]


def test_request_level_errors(make_client, model_dir, letter_png):
    client = make_client(model_dir, max_batch_files=2)
    response = post_batch(client, [("a.png", letter_png)] * 3)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_parameter"
    assert "at most 2 files" in response.json()["error"]["message"]
    response = post_batch(client, [("a.png", letter_png)], task="klingon")
    assert response.status_code == 404
    response = client.post("/predict/letter/batch")
    assert response.status_code == 422  # no files at all


def test_an_unexpected_error_fails_only_its_file(client, letter_png, images, monkeypatch, caplog):
    # Regression: a bug that one file triggers (here: preprocessing raising something other than
    # its no-ink error) once answered 500 for the whole batch, good files included.
    real = predict_module.preprocess

    def fails_on_a_strip(image, cfg):
        if image.shape[0] < 20:
            raise ValueError("secret internal detail")
        return real(image, cfg)

    monkeypatch.setattr(predict_module, "preprocess", fails_on_a_strip)
    strip = images.mark_at_the_end_of_a_strip_png()
    response = post_batch(client, [("a.png", letter_png), ("strip.png", strip), ("b.png", letter_png)])
    assert response.status_code == 200, response.text
    good, bad, also_good = response.json()["results"]
    assert "result" in good and "result" in also_good
    assert bad["error"] == {"code": "internal_error", "message": "internal server error", "status": 500}
    assert "secret" not in response.text
    assert "secret internal detail" in caplog.text  # the log has it
