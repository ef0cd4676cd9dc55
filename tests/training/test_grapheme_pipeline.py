"""Three heads end to end: smoke training → ONNX export → manifest with composition → the API."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from contract.graphemes import compose
from contract.manifest import Manifest
from tests.training.conftest import assert_onnx_matches_torch
from tests.training.fake_bengali import requires_bengali_rendering, write_fake_bengali
from training.__main__ import main
from training.checkpoint import load_checkpoint
from training.data.bengali_render import find_fonts, render

pytestmark = requires_bengali_rendering

HEADS = ["grapheme_root", "vowel_diacritic", "consonant_diacritic"]
SMOKE = [
    "--set",
    "task=grapheme",
    "--set",
    "epochs=2",
    "--set",
    "threads=1",  # a second torch thread only contends on a busy 2-core machine
    "--set",
    "batch_size=16",
    "--set",
    "model_kwargs={widths: [8, 16, 16]}",
    "--set",
    "head_weights={grapheme_root: 2.0, vowel_diacritic: 1.0, consonant_diacritic: 1.0}",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("grapheme-run")
    data_dir = write_fake_bengali(root / "data")
    run_dir, model_dir = root / "run", root / "models" / "graphemes"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HWR_CACHE_DIR", str(root / "cache"))  # never the repository's runs/cache
        args = ["train", "--run-dir", str(run_dir), "--set", f"data_dir={data_dir}", *SMOKE]
        main([*args, "--export", str(model_dir)])
    return run_dir, model_dir


def test_manifest_asks_for_composition(trained):
    _, model_dir = trained
    manifest = Manifest.load(model_dir)
    assert manifest.task == "grapheme" and manifest.composition == "bengali_grapheme"
    assert [h.name for h in manifest.heads] == HEADS
    assert [len(h.labels) for h in manifest.heads] == [10, 6, 7]
    assert "val_consonant_diacritic_top1" in manifest.metrics
    # The real test set: basic characters, scored as root + no signs, with the Bengali.AI score.
    for key in ("grapheme_root_macro_recall", "vowel_diacritic_macro_recall", "score"):
        assert 0.0 <= manifest.metrics[f"cmaterdb_test_{key}"] <= 1.0
    m = {k: manifest.metrics[f"val_{k}_macro_recall"] for k in HEADS}
    expected = (2 * m["grapheme_root"] + m["vowel_diacritic"] + m["consonant_diacritic"]) / 4
    assert manifest.metrics["val_score"] == pytest.approx(expected, abs=1e-4)


def test_onnx_matches_torch_on_every_head(trained):
    assert_onnx_matches_torch(*trained)


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_api_answers_whole_graphemes_and_components(trained):
    _, model_dir = trained
    manifest = Manifest.load(model_dir)
    image = render("কি", find_fonts()["LikhanNormal.ttf"], np.random.default_rng(0), size=96)
    with TestClient(create_app(Settings(model_dir=model_dir.parent))) as client:
        response = client.post(
            "/predict/grapheme", files={"file": ("g.png", png(image), "image/png")}, params={"k": 3}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "heads" not in body
    assert list(body["components"]) == HEADS
    for head in manifest.heads:
        top = body["components"][head.name]
        assert len(top) == 3
        assert [c["label"] for c in top] == [head.labels[c["index"]] for c in top]
        assert [c["probability"] for c in top] == sorted((c["probability"] for c in top), reverse=True)
    best = [body["components"][h][0] for h in HEADS]
    assert body["predictions"][0]["label"] == compose(*(c["label"] for c in best))
    assert body["predictions"][0]["probability"] == pytest.approx(np.prod([c["probability"] for c in best]))
    assert len(body["predictions"]) == 3


def test_export_and_quantize_score_alike(trained, tmp_path):
    """One scoring function: export's float metrics and quantize's float re-scoring carry the same
    names (whole-grapheme top-1 included) and the same values."""
    from training import quantize as q
    from training.scoring import Scored, score_splits

    run_dir, model_dir = trained
    assert load_checkpoint(run_dir / "best.pt")["composition"] == "bengali_grapheme"
    manifest = Manifest.load(model_dir)
    assert "val_grapheme_top1" in manifest.metrics
    data_dir = next(p for p in model_dir.parents if (p / "data").is_dir()) / "data"
    data = q.load_quantization_data(model_dir, data_dir, calibration=16)
    splits: dict[str, Scored] = data.splits
    rescored = score_splits(q.cpu_session(model_dir / manifest.onnx.file), manifest, splits)
    assert rescored.keys() == manifest.metrics.keys()
    for key, value in rescored.items():
        assert value == pytest.approx(manifest.metrics[key], abs=1e-4), key
