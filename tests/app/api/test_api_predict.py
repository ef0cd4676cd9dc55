"""`POST /predict/{task}` end to end: happy paths for every image kind, and every error status."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

import numpy as np
import pytest

from app.config import MULTIPART_OVERHEAD_BYTES, Settings
from app.main import create_app
from app.service.images import decode_image
from contract.postprocessing import softmax
from contract.preprocessing import preprocess
from tests.app.conftest import draw_letter, encode, predict_scope


def post(client, data: bytes, task: str = "letter", filename: str = "upload.png", **params):
    return client.post(f"/predict/{task}", files={"file": (filename, data, "image/png")}, params=params)


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]["message"]


def test_prediction_shape_and_order(client, letter_png):
    response = post(client, letter_png)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "letter"
    assert body["model"] == {"name": "tiny-letters", "version": "0.0.1"}
    assert "heads" not in body  # one-head model
    probabilities = [p["probability"] for p in body["predictions"]]
    assert len(probabilities) == 5  # default_k
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-9
    assert len({p["label"] for p in body["predictions"]}) == 5
    assert set(body["timing_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert all(v >= 0 for v in body["timing_ms"].values())
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"]


def test_probabilities_are_the_models_softmax(client, letter_model, letter_png):
    # The whole serving path recomputed by hand: decode → preprocess → W·x + b → softmax.
    x = preprocess(decode_image(letter_png, 10**8, 10**5), letter_model.manifest.preprocessing)
    expected = softmax(letter_model.logits(x[None])["letter"][0])
    best = np.argsort(-expected)[:3]
    body = post(client, letter_png, k=3).json()
    assert [p["label"] for p in body["predictions"]] == [
        letter_model.manifest.heads[0].labels[i] for i in best
    ]
    np.testing.assert_allclose([p["probability"] for p in body["predictions"]], expected[best], rtol=1e-4)


@pytest.mark.parametrize("k", [1, 3, 26])
def test_k_is_honoured(client, letter_png, k):
    assert len(post(client, letter_png, k=k).json()["predictions"]) == k


def test_k_over_the_label_count_is_refused_even_under_max_k(client, letter_png):
    message = assert_error(post(client, letter_png, k=27), 422, "invalid_parameter")
    assert "between 1 and 26" in message


def test_k_over_max_k(make_client, model_dir, letter_png):
    client = make_client(model_dir, max_k=3, default_k=2)
    assert len(post(client, letter_png).json()["predictions"]) == 2
    assert_error(post(client, letter_png, k=4), 422, "invalid_parameter")


@pytest.mark.parametrize("k", ["0", "-1", "abc", "1.5"])
def test_bad_k_is_a_validation_error(client, letter_png, k):
    message = assert_error(post(client, letter_png, k=k), 422, "validation_error")
    assert "k" in message


def test_multi_head_model_returns_every_head(make_client, multi_head_model_dir, letter_png):
    body = post(make_client(multi_head_model_dir), letter_png, task="grapheme", k=4).json()
    assert list(body["heads"]) == ["grapheme_root", "vowel_diacritic", "consonant_diacritic"]
    assert body["predictions"] == body["heads"]["grapheme_root"]
    assert [len(v) for v in body["heads"].values()] == [4, 4, 3]  # k capped by each head's labels
    assert all(p["label"].startswith("vowel_") for p in body["heads"]["vowel_diacritic"])


@pytest.mark.parametrize(
    "kind",
    ["jpeg", "gray16_png", "palette_png", "transparent_rgba_png", "cmyk_jpeg", "animated_gif", "exif_jpeg"],
)
def test_every_image_kind_is_classified(client, images, letter_jpeg, kind):
    data = {
        "jpeg": lambda: letter_jpeg,
        "exif_jpeg": lambda: images.exif_rotated_jpeg()[0],
    }.get(kind, getattr(images, kind, None))()
    response = post(client, data, filename="whatever.bin")  # the name and content type are ignored
    assert response.status_code == 200, response.text


def test_text_named_png_is_unsupported(client):
    assert_error(
        post(client, b"definitely not an image\n" * 10, filename="photo.png"), 415, "unsupported_image"
    )


def test_truncated_png_is_unsupported(client, letter_png):
    message = assert_error(post(client, letter_png[: len(letter_png) // 2]), 415, "unsupported_image")
    assert "truncated" in message


def test_empty_file(client):
    assert_error(post(client, b""), 422, "empty_file")


def test_missing_file_field(client):
    assert_error(client.post("/predict/letter"), 422, "validation_error")


def test_blank_photo_has_no_ink(client, images):
    assert_error(post(client, images.blank_photo(), filename="paper.jpg"), 422, "no_ink")


def test_upload_over_the_byte_cap(make_client, model_dir, letter_png):
    client = make_client(model_dir, max_upload_bytes=len(letter_png) - 1)
    assert_error(post(client, letter_png), 413, "payload_too_large")
    assert post(make_client(model_dir, max_upload_bytes=len(letter_png)), letter_png).status_code == 200


def noisy_letter_png() -> bytes:
    """A 2.4 MB PNG of a letter (sensor-like noise defeats compression): over Starlette's 1 MB."""
    image = draw_letter("A", size=(1200, 1200)).astype(np.int16)
    noise = np.random.default_rng(0).normal(0, 6, image.shape)
    return encode(np.clip(image + noise, 0, 255).astype(np.uint8), "PNG")


@pytest.mark.parametrize(("memory_bytes", "spooled"), [(None, False), (100_000, True)])
def test_uploads_up_to_the_memory_threshold_never_touch_the_disk(
    make_client, model_dir, monkeypatch, memory_bytes, spooled
):
    rollovers = []
    rollover = SpooledTemporaryFile.rollover
    monkeypatch.setattr(SpooledTemporaryFile, "rollover", lambda f: (rollovers.append(f), rollover(f))[1])
    overrides = {} if memory_bytes is None else {"upload_memory_bytes": memory_bytes}
    response = post(make_client(model_dir, **overrides), noisy_letter_png())
    assert response.status_code == 200, response.text
    assert bool(rollovers) is spooled


def test_content_length_over_the_cap_is_refused_before_reading(make_client, model_dir):
    client = make_client(model_dir, max_upload_bytes=1000)
    assert_error(post(client, b"\0" * 200_000), 413, "payload_too_large")


MULTIPART_HEAD = (
    b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)
MULTIPART_TYPE = {"content-type": "multipart/form-data; boundary=x"}


def test_chunked_body_over_the_cap(make_client, model_dir):
    client = make_client(model_dir, max_upload_bytes=1000)
    chunks = iter([MULTIPART_HEAD, *[b"\0" * 10_000] * 20])  # a generator: no Content-Length
    response = client.post("/predict/letter", content=chunks, headers=MULTIPART_TYPE)
    assert_error(response, 413, "payload_too_large")


def test_streamed_body_stops_being_read_at_the_cap(model_dir):
    # Raw ASGI, because TestClient buffers the whole body before the app sees it.
    app = create_app(Settings(model_dir=model_dir, max_upload_bytes=1000))
    chunk, pulled, sent = b"\0" * 10_000, [], []

    async def receive():
        body = chunk if pulled else MULTIPART_HEAD
        pulled.append(len(body))
        return {"type": "http.request", "body": body, "more_body": len(pulled) < 1000}  # 10 MB

    async def send(message):
        sent.append(message)

    scope = predict_scope()
    asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [413]
    assert sum(pulled) <= 1000 + MULTIPART_OVERHEAD_BYTES + len(chunk)


def test_pixel_cap_from_the_header(client, images):
    assert_error(post(client, images.huge_header_png(20_000, 20_000)), 413, "image_too_large")


def test_small_pixel_cap(make_client, model_dir, letter_png):
    client = make_client(model_dir, max_pixels=100 * 100)
    message = assert_error(post(client, letter_png), 413, "image_too_large")
    assert "10000" in message


def test_unknown_task_lists_the_known_ones(client, letter_png):
    message = assert_error(post(client, letter_png, task="klingon"), 404, "unknown_task")
    assert "letter" in message


def test_task_whose_model_failed_to_load(make_client, tmp_path, model_writer, letter_png):
    model_writer(tmp_path, name="tampered", sha256="0" * 64)
    model_writer(tmp_path, name="graphemes", task="grapheme")
    client = make_client(tmp_path)
    message = assert_error(post(client, letter_png), 503, "model_not_ready")
    assert "sha256 mismatch" in message
    assert post(client, letter_png, task="grapheme").status_code == 200


def test_without_dynamic_batching_each_request_calls_the_model_itself(client, letter_png):
    body = post(client, letter_png).json()  # off by default
    assert set(body["timing_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert "hwr_batch_size_count" not in client.get("/metrics").text


@pytest.mark.parametrize("in_event_loop", [True, False], ids=["model-call-on-the-loop", "in-a-thread"])
def test_dynamic_batching_gives_each_request_its_own_answer(
    make_client, model_dir, letter_model, in_event_loop
):
    # Different images at once: each answer must be its own image's softmax, whatever the batch.
    client = make_client(model_dir, batch_max_size=8, compute_in_event_loop=in_event_loop)
    assert set(post(client, encode(draw_letter("A"))).json()["timing_ms"]) == {
        "decode",
        "preprocess",
        "queue",
        "inference",
        "total",
    }
    uploads = [encode(draw_letter(text)) for text in "AOXL"] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(lambda data: post(client, data, k=3).json(), uploads))
    for data, body in zip(uploads, bodies, strict=True):
        x = preprocess(decode_image(data, 10**8, 10**5), letter_model.manifest.preprocessing)
        expected = softmax(letter_model.logits(x[None])["letter"][0])
        got = [p["probability"] for p in body["predictions"]]
        assert np.allclose(got, np.sort(expected)[::-1][:3], atol=1e-5)
    metrics = client.get("/metrics").text
    assert 'hwr_batch_size_count{task="letter"}' in metrics
    assert 'hwr_batch_queue_seconds_count{task="letter"} 13.0' in metrics


def test_big_jpegs_decode_reduced_but_never_below_the_setting(make_client, model_dir, letter_model):
    from app.service.pipeline import decode_side

    manifest = letter_model.manifest
    expected = min(480, manifest.preprocessing.max_side)
    assert decode_side(manifest.preprocessing, Settings(model_dir=model_dir)) == expected
    assert decode_side(manifest.preprocessing, Settings(model_dir=model_dir, jpeg_decode_min_side=0)) is None
    big = encode(draw_letter("A", size=(1600, 1600)), "JPEG", quality=90)
    for side in (0, 480):
        response = post(make_client(model_dir, jpeg_decode_min_side=side), big)
        assert response.status_code == 200 and response.json()["predictions"]
