"""`POST /read/{task}`: words and numbers of real held-out handwriting read end to end, every error
status, and the same protection as /predict (token, admission)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.service.reading as read_module
from app.config import DEFAULT_MODEL_DIR, Settings
from app.main import create_app
from app.service.images import decode_image
from app.service.segmentation import segment
from tests.app.conftest import ONE_IN_A_THREAD, encode
from tests.training.fake_bengali import requires_bengali_rendering
from training.data.bengali_render import VALIDATION_FONTS, draw_text, find_fonts

DATA = Path(__file__).parents[2] / "data"
TOKEN = "s3cret-token-0123456789"
WAIT = 10


@pytest.fixture(scope="module")
def committed() -> TestClient:
    with TestClient(create_app(Settings(model_dir=DEFAULT_MODEL_DIR))) as client:
        yield client


def post(client: TestClient, data: bytes, task: str = "letter", **params: object):
    return client.post(f"/read/{task}", files={"file": ("words.png", data, "image/png")}, params=params)


def scans(paths: list[Path], gap: int = 4) -> list[np.ndarray]:
    """28×28 ink-high scans cropped to their ink (plus `gap` px each side)."""
    out = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        xs = np.flatnonzero(image.max(axis=0) > 60)
        out.append(image[:, max(0, xs.min() - gap) : xs.max() + 1 + gap])
    return out


def photo(lines: list[list[np.ndarray]], seed: int = 0) -> bytes:
    """The scans written side by side (lines one under another) in dark ink on lit, noisy paper, 5× up."""
    rows = [np.concatenate(line, axis=1) for line in lines]
    width = max(r.shape[1] for r in rows)
    ink = np.concatenate([np.pad(r, ((4, 4), (0, width - r.shape[1]))) for r in rows], axis=0)
    ink = cv2.resize(
        np.pad(ink, 12).astype(np.float32) / 255, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC
    )
    h, w = ink.shape
    light = (
        np.linspace(1.0, 0.8, w, dtype=np.float32)[None, :]
        * np.linspace(1.0, 0.9, h, dtype=np.float32)[:, None]
    )
    paper = 225 * light * (1 - 0.85 * np.clip(ink, 0, 1))
    paper += np.random.default_rng(seed).normal(0, 3, paper.shape)
    return encode(np.clip(paper, 0, 255).astype(np.uint8), "JPEG", quality=90)


def digits(text: str) -> list[np.ndarray]:
    return scans([DATA / "digits" / f"{d}_scan.png" for d in text])


def letters(text: str) -> list[np.ndarray]:
    return scans([DATA / f"{c}_scan.png" for c in text])


@pytest.mark.parametrize(
    ("task", "text", "glyphs"),
    [("digit", "2024", digits), ("digit", "0123456789", digits), ("letter", "BREAK", letters)],
)
def test_reads_a_number_or_a_word_of_held_out_handwriting(committed, task, text, glyphs):
    response = post(committed, photo([glyphs(text)]), task, k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == task and body["text"] == text
    characters = body["characters"]
    assert [c["predictions"][0]["label"] for c in characters] == list(text)
    assert all(len(c["predictions"]) == 3 and not c["rejected"] and c["line"] == 0 for c in characters)
    boxes = [c["box"] for c in characters]
    assert all(len(b) == 4 and b[2] > 0 and b[3] > 0 for b in boxes)
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right, in the photo's pixels
    assert {"decode", "segment", "preprocess", "inference", "total"} == set(body["timing_ms"])


@pytest.mark.parametrize("text", ["2024", "6180"])
def test_touching_digits_are_read_apart(committed, text):
    glyphs = scans([DATA / "digits" / f"{d}_scan.png" for d in text], gap=0)
    # Each scan overlaps its neighbours by 2 of its 28 px: the strokes run into each other.
    data = photo([[g[:, 1:-1] for g in glyphs]])
    manifest = committed.app.state.registry.get("digit").manifest
    assert len(segment(decode_image(data, 10**8, 10**5), manifest.preprocessing)) < len(text)  # they touch
    assert post(committed, data, "digit").json()["text"] == text


def test_lines_are_read_top_to_bottom(committed):
    body = post(committed, photo([digits("314"), digits("159")]), "digit", min_confidence=0).json()
    assert body["text"] == "314\n159"
    assert [c["line"] for c in body["characters"]] == [0, 0, 0, 1, 1, 1]


def test_unsure_characters_are_rejected_not_guessed(committed):
    data = photo([digits("2024")])
    strict = post(committed, data, "digit", min_confidence=1.0).json()
    assert strict["text"] == "????"
    assert all(c["rejected"] for c in strict["characters"])
    # The answers stay available to the client.
    assert [c["predictions"][0]["label"] for c in strict["characters"]] == list("2024")
    assert post(committed, data, "digit", min_confidence=0.0).json()["text"] == "2024"


def test_grapheme_words_read_each_grapheme_as_predict_does(committed):
    paths = [DATA / "bengali" / f"render_0{i}.png" for i in range(3)]
    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
    strip = np.concatenate([np.pad(i, ((0, 0), (0, 24)), constant_values=255) for i in images], axis=1)
    body = post(committed, encode(np.pad(strip, 20, constant_values=255)), "grapheme").json()
    singles = [
        post_predict(committed, encode(np.pad(i, 20, constant_values=255)))["predictions"][0]["label"]
        for i in images
    ]
    assert [c["predictions"][0]["label"] for c in body["characters"]] == singles


@requires_bengali_rendering
@pytest.mark.parametrize("word", ["দেশ", "ঘর", "বাংলা"])
def test_a_bengali_word_joined_by_its_headline_is_read_grapheme_by_grapheme(committed, word):
    for font in find_fonts(VALIDATION_FONTS).values():  # fonts the model never trained on
        page = np.pad(draw_text(word, font, 96), 20, constant_values=255)
        assert post(committed, encode(page), "grapheme", min_confidence=0).json()["text"] == word, font.name


def post_predict(client: TestClient, data: bytes) -> dict:
    return client.post("/predict/grapheme", files={"file": ("g.png", data, "image/png")}).json()


def test_a_blank_photo_has_no_ink(committed):
    response = post(committed, (DATA / "blank_photo.jpg").read_bytes())
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_ink"


def test_a_texture_is_not_text(client):
    grid = np.full((500, 700), 235, np.uint8)
    for y in range(10, 490, 40):
        for x in range(10, 690, 30):
            grid[y : y + 28, x : x + 6] = 20  # 204 separate character-sized marks
    response = post(client, encode(grid))
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_characters"


def wavy_marks(rows: int, columns: int) -> bytes:
    """Wide wavy strokes, each read as touching characters with every candidate cut: 28 pieces
    each (the whole and every span between its 6 cuts), so 8 × 16 of them send 3,584."""
    image = np.full((rows * 60 + 20, columns * 70 + 20), 235, np.uint8)
    for row in range(rows):
        for column in range(columns):
            x, y = 10 + column * 70, 10 + row * 60
            points = [[x + i, y + 15 + round(12 * np.sin(i / 3))] for i in range(56)]
            cv2.polylines(image, [np.array(points, np.int32)], False, 20, 3)
    return encode(image)


def test_pieces_per_image_are_capped(make_client, model_dir):
    # Regression: 128 such marks sent 3,584 pieces to the model in one call.
    data = wavy_marks(2, 5)
    refused = post(make_client(model_dir, read_max_pieces=100), data)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "too_many_pieces"
    assert "280 candidate characters" in error["message"] and "at most 100" in error["message"]
    assert post(make_client(model_dir, read_max_pieces=280), data).status_code == 200


def test_the_default_cap_refuses_a_page_of_scribbles_before_any_model_call(client, monkeypatch):
    def no_model_call(*args, **kwargs):
        raise AssertionError("no piece may reach the model")

    monkeypatch.setattr(read_module, "candidates", no_model_call)
    response = post(client, wavy_marks(8, 16))
    assert response.status_code == 422 and response.json()["error"]["code"] == "too_many_pieces"
    assert "at most 256" in response.json()["error"]["message"]


def test_the_pieces_of_one_image_reach_the_model_in_chunks(make_client, model_dir, monkeypatch):
    client = make_client(model_dir, inference_max_batch=16, read_max_pieces=300)
    session = client.app.state.registry.get("letter").classifier.session
    sizes = []
    real_run = session.run

    def counting_run(names, feeds):
        sizes.append(len(next(iter(feeds.values()))))
        return real_run(names, feeds)

    monkeypatch.setattr(session, "run", counting_run)
    response = post(client, wavy_marks(2, 5))
    assert response.status_code == 200, response.text
    assert sum(sizes) == 280 and max(sizes) == 16


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/read/nope", {}, 404, "unknown_task"),
        ("/read/letter", {"min_confidence": 1.5}, 422, "validation_error"),
        ("/read/letter", {"k": 0}, 422, "validation_error"),
        ("/read/letter", {"k": 27}, 422, "invalid_parameter"),
    ],
)
def test_bad_requests(client, letter_png, path, params, status, code):
    response = client.post(path, files={"file": ("a.png", letter_png)}, params=params)
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_not_an_image_and_an_empty_file(client):
    assert post(client, b"plain text, no image").status_code == 415
    assert post(client, b"").json()["error"]["code"] == "empty_file"


def test_the_bearer_token_guards_read_too(make_client, model_dir, letter_png):
    client = make_client(model_dir, api_token=TOKEN)
    refused = post(client, letter_png)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    accepted = client.post(
        "/read/letter", files={"file": ("a.png", letter_png)}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert accepted.status_code == 200, accepted.text
    operation = client.get("/openapi.json").json()["paths"]["/read/{task}"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]


def test_read_shares_the_admission_limit_and_the_workers(make_client, model_dir, letter_png, monkeypatch):
    entered, release = threading.Event(), threading.Event()
    real = read_module.segment

    def gated(image, cfg):
        entered.set()
        assert release.wait(WAIT)
        return real(image, cfg)

    monkeypatch.setattr(read_module, "segment", gated)
    client = make_client(model_dir, **ONE_IN_A_THREAD, max_queue=0, retry_after_s=3)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, client, letter_png)
        assert entered.wait(WAIT)
        started = time.perf_counter()
        for path in ("/read/letter", "/predict/letter"):
            refused = client.post(path, files={"file": ("a.png", letter_png)})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
            assert refused.headers["retry-after"] == "3"
        assert time.perf_counter() - started < 2 * WAIT
        release.set()
        assert first.result(WAIT).status_code == 200


def test_a_lexicon_reads_each_written_word_as_one_of_its_words(committed):
    body = post(committed, photo([letters("HEART"), letters("WATER")]), "letter", lexicon="english").json()
    assert body["text"] == "HEART\nWATER"
    lexicon = body["lexicon"]
    assert lexicon["source"] == "english" and lexicon["text"] == "heart\nwater"
    assert [(w["read"], w["word"], w["line"]) for w in lexicon["words"]] == [
        ("HEART", "heart", 0),
        ("WATER", "water", 1),
    ]
    for word in lexicon["words"]:
        assert 0.5 < word["probability"] <= 1.0
        assert word["probability"] + sum(a["probability"] for a in word["alternatives"]) <= 1.0 + 1e-9
    assert body["timing_ms"]["lexicon"] >= 0


def test_without_a_lexicon_the_answer_is_unchanged(committed):
    body = post(committed, photo([letters("HEART")]), "letter").json()
    assert "lexicon" not in body and "lexicon" not in body["timing_ms"]


@pytest.mark.parametrize(("task", "lexicon"), [("digit", "english"), ("letter", "klingon")])
def test_a_lexicon_that_cannot_spell_with_the_models_labels_is_refused(committed, task, lexicon):
    glyphs = digits("2024") if task == "digit" else letters("HEART")
    response = post(committed, photo([glyphs]), task, lexicon=lexicon)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] in {"invalid_parameter", "validation_error"}


def post_words(
    client: TestClient, data: bytes, words: str | list[str], task: str = "letter", **params: object
):
    fields = [("words", w) for w in ([words] if isinstance(words, str) else words)]
    return client.post(
        f"/read/{task}",
        files=[("file", ("words.png", data, "image/png")), *[(n, (None, v)) for n, v in fields]],
        params=params,
    )


def test_the_requests_own_words_are_its_lexicon(committed):
    data = photo([letters("HEART"), letters("WATER")])
    body = post_words(committed, data, "hearth, heart\nwaiter water ,").json()
    assert body["lexicon"]["source"] == "words"
    assert body["lexicon"]["text"] == "heart\nwater"
    # Naming the lexicon changes nothing: the field alone implies it.
    named = post_words(committed, data, "hearth heart waiter water", lexicon="words").json()
    assert named["lexicon"] == body["lexicon"]


@pytest.mark.parametrize(
    ("words", "params", "why"),
    [
        ("heart water", {"lexicon": "english"}, "not both"),
        (" , ", {}, "no words"),
        ("heart " + "x" * 65, {}, "at most 64 characters"),
        (["heart", "water"], {}, "one text field"),
    ],
)
def test_a_word_list_that_cannot_be_meant_is_refused(committed, words, params, why):
    response = post_words(committed, photo([letters("HEART")]), words, **params)
    assert response.status_code == 422, response.text
    assert why in response.text


def test_lexicon_words_without_the_words_is_refused(committed):
    response = post(committed, photo([letters("HEART")]), "letter", lexicon="words")
    assert response.status_code == 422 and "form field `words`" in response.text


def test_the_number_of_words_is_capped():
    settings = Settings(model_dir=DEFAULT_MODEL_DIR, read_max_lexicon_words=2)
    with TestClient(create_app(settings)) as client:
        response = post_words(client, photo([letters("HEART")]), "heart water hearth")
    assert response.status_code == 422 and "at most 2 words" in response.text
