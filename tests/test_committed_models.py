"""The committed models in models/, served end to end on real handwriting (tests/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import DEFAULT_MODEL_DIR, Settings
from app.main import create_app
from contract.graphemes import compose
from contract.manifest import Manifest, sha256_of

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


GRAPHEMES_DIR = DEFAULT_MODEL_DIR / "graphemes"


def bengali_samples(source: str) -> list[dict[str, str]]:
    """Rows of tests/data/bengali/samples.tsv whose source starts with `source`."""
    lines = (DATA / "bengali" / "samples.tsv").read_text(encoding="utf-8").splitlines()
    header, *rows = (line.split("\t") for line in lines)
    return [dict(zip(header, row, strict=True)) for row in rows if row[-1].startswith(source)]


def predict_grapheme(client, name: str) -> dict:
    data = (DATA / "bengali" / name).read_bytes()
    response = client.post("/predict/grapheme", files={"file": (name, data, "image/png")})
    assert response.status_code == 200, response.text
    return response.json()


def test_graphemes_manifest_matches_its_file_and_targets():
    manifest = Manifest.load(GRAPHEMES_DIR)
    assert manifest.task == "grapheme" and manifest.composition == "bengali_grapheme"
    assert [(h.name, len(h.labels)) for h in manifest.heads] == [
        ("grapheme_root", 168),
        ("vowel_diacritic", 11),
        ("consonant_diacritic", 7),
    ]
    assert sha256_of(GRAPHEMES_DIR / manifest.onnx.file) == manifest.onnx.sha256
    # Real handwriting by writers never trained on (docs/graphemes.md, "Results of the committed
    # model"): targets.
    assert manifest.metrics["banglalekha_heldout_writers_grapheme_root_top1"] >= 0.95
    assert manifest.metrics["cmaterdb_test_grapheme_root_top1"] >= 0.98
    # Graphemes with signs made the held-out way (fonts, pen, writers); the target 0.95 is not met yet.
    assert manifest.metrics["val_score"] >= 0.92
    assert manifest.training.device.startswith("cuda")  # trained on a GPU, as the product card says


def test_real_handwritten_bengali_characters(client):
    """One CMATERdb test image per class: the root is read, and for most no sign is invented."""
    samples = bengali_samples("CMATERdb")
    assert len(samples) == 49
    bodies = [predict_grapheme(client, s["file"]) for s in samples]
    roots = [b["components"]["grapheme_root"][0]["index"] for b in bodies]
    correct = [r == int(s["root"]) for r, s in zip(roots, samples, strict=True)]
    assert sum(correct) >= 0.9 * len(samples)
    # No sign is invented on real basic characters (whole grapheme right on 99 % of CMATERdb test).
    plain = [b["predictions"][0]["label"] == s["grapheme"] for b, s in zip(bodies, samples, strict=True)]
    assert sum(plain) >= 0.9 * len(samples)


def test_graphemes_with_signs_in_the_held_out_handwriting_style(client):
    """Held-out writers' real roots with signs written by the held-out pen
    (scripts/grapheme_test_samples.py)."""
    samples = bengali_samples("held-out style")
    assert len(samples) >= 12
    bodies = [predict_grapheme(client, s["file"]) for s in samples]
    correct = [b["predictions"][0]["label"] == s["grapheme"] for b, s in zip(bodies, samples, strict=True)]
    assert sum(correct) >= 0.6 * len(samples)


def test_graphemes_with_signs_in_held_out_fonts(client):
    """Whole graphemes (root + vowel sign + consonant sign) composed correctly from the three heads."""
    samples = bengali_samples("rendered")
    assert len(samples) >= 12
    bodies = [predict_grapheme(client, s["file"]) for s in samples]
    for body in bodies:
        assert list(body["components"]) == ["grapheme_root", "vowel_diacritic", "consonant_diacritic"]
        best = [body["components"][head][0]["label"] for head in body["components"]]
        assert body["predictions"][0]["label"] == compose(*best)
    correct = [b["predictions"][0]["label"] == s["grapheme"] for b, s in zip(bodies, samples, strict=True)]
    assert sum(correct) >= 0.75 * len(samples)


def test_grapheme_errors(client):
    blank = (DATA / "blank_photo.jpg").read_bytes()
    response = client.post("/predict/grapheme", files={"file": ("blank.jpg", blank, "image/jpeg")})
    assert response.status_code == 422 and response.json()["error"]["code"] == "no_ink"
    response = client.post("/predict/grapheme", files={"file": ("g.png", b"not an image", "image/png")})
    assert response.status_code == 415


def test_models_lists_every_served_model(client):
    models = {m["task"]: m for m in client.get("/models").json()["models"]}
    assert set(models) >= {"letter", "digit", "grapheme"}
    assert [h["num_labels"] for h in models["grapheme"]["heads"]] == [168, 11, 7]
    assert models["grapheme"]["metrics"]["val_score"] >= 0.9
