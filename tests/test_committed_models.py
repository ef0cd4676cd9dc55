"""The committed models in models/, served end to end on real handwriting (tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import DEFAULT_MODEL_DIR, Settings
from app.main import create_app
from app.manifest import Manifest, sha256_of

DATA = Path(__file__).parent / "data"
SAMPLES = sorted([*DATA.glob("[A-Z]_scan.png"), *DATA.glob("[A-Z]_photo.jpg")])
LETTERS_DIR = DEFAULT_MODEL_DIR / "letters"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(model_dir=DEFAULT_MODEL_DIR))) as client:
        yield client


def test_samples_exist():
    assert len(SAMPLES) >= 10


def test_letters_manifest_matches_its_file_and_targets():
    manifest = Manifest.load(LETTERS_DIR)
    assert manifest.task == "letter" and len(manifest.heads[0].labels) == 26
    assert sha256_of(LETTERS_DIR / manifest.onnx.file) == manifest.onnx.sha256
    assert manifest.metrics["val_letter_top1"] >= 0.93
    assert manifest.metrics["val_letter_top5"] >= 0.995
    assert "writer-disjoint" in manifest.data[0].notes


def test_service_is_ready_with_the_letters_model(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert "letter" in response.json()["tasks"]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_real_handwritten_letters(client, path):
    media = "image/png" if path.suffix == ".png" else "image/jpeg"
    response = client.post("/predict/letter", files={"file": (path.name, path.read_bytes(), media)})
    assert response.status_code == 200, response.text
    body = response.json()
    predictions = body["predictions"]
    assert len(predictions) == 5
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    assert predictions[0]["label"] == path.name[0]
    assert body["model"]["name"] == "letters" and body["task"] == "letter"


def test_blank_photo_is_422(client):
    blank = (DATA / "blank_photo.jpg").read_bytes()
    response = client.post("/predict/letter", files={"file": ("blank.jpg", blank, "image/jpeg")})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "no_ink"


DIGITS_DIR = DEFAULT_MODEL_DIR / "digits"
DIGIT_SAMPLES = sorted(
    [*(DATA / "digits").glob("[0-9]_scan.png"), *(DATA / "digits").glob("[0-9]_photo.jpg")]
)


def test_digits_manifest_matches_its_file_and_targets():
    manifest = Manifest.load(DIGITS_DIR)
    assert manifest.task == "digit" and manifest.heads[0].labels == list("0123456789")
    assert sha256_of(DIGITS_DIR / manifest.onnx.file) == manifest.onnx.sha256
    assert manifest.metrics["mnist_test_digit_top1"] >= 0.996  # the official MNIST test set
    assert manifest.metrics["val_digit_top1"] >= 0.993  # writer-disjoint FEMNIST digits


@pytest.mark.parametrize("path", DIGIT_SAMPLES, ids=lambda p: p.name)
def test_real_handwritten_digits(client, path):
    media = "image/png" if path.suffix == ".png" else "image/jpeg"
    response = client.post("/predict/digit", files={"file": (path.name, path.read_bytes(), media)})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["label"] == path.name[0]
