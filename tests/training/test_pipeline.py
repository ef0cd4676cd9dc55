"""End to end on a tiny drawn data set: train → checkpoint → resume → ONNX export → manifest → serve path."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.service.images import decode_image
from contract.manifest import Manifest, sha256_of
from contract.preprocessing import preprocess
from tests.training.conftest import assert_onnx_matches_torch
from training.__main__ import main
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import load_config
from training.data.datasets import CanvasDataset
from training.data.tasks import load_task

SMOKE = ["--set", "epochs=3", "--set", "batch_size=16", "--set", "model_kwargs={widths: [8, 16, 16]}"]


@pytest.fixture(scope="module")
def trained(fake_data_dir, tmp_path_factory):
    """Trained in two sittings: stopped after epoch 2, then resumed to the end and exported."""
    root = tmp_path_factory.mktemp("run")
    run_dir, model_dir = root / "run", root / "model"
    args = ["train", "--run-dir", str(run_dir), "--set", f"data_dir={fake_data_dir}", *SMOKE]
    main([*args, "--stop-after", "2"])
    assert not (run_dir / "confusion_letter.png").exists() and not model_dir.exists()
    main([*args, "--resume", "--export", str(model_dir)])
    return run_dir, model_dir


def test_run_writes_its_artefacts(trained):
    run_dir, _ = trained
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "best.pt",
        "last.pt",
        "curves.png",
        "confusion_letter.png",
        "per_class_letter.csv",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2, 3]  # epoch 3 came from the resumed sitting
    for key in ("train_letter_top1", "train_letter_top5", "val_letter_top1", "val_letter_top5", "val_score"):
        assert 0.0 <= history[-1][key] <= 1.0
    assert load_config(run_dir / "config.yaml").epochs == 3


def test_checkpoint_rebuilds_its_model(trained):
    run_dir, _ = trained
    checkpoint = load_checkpoint(run_dir / "best.pt")
    model = model_from_checkpoint(checkpoint)
    assert model(torch.zeros(1, 1, 28, 28))["letter"].shape == (1, 26)


def test_export_writes_a_valid_manifest(trained):
    _, model_dir = trained
    manifest = Manifest.load(model_dir)
    assert manifest.task == "letter" and manifest.heads[0].labels == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert manifest.onnx.sha256 == sha256_of(model_dir / manifest.onnx.file)
    assert manifest.training.command.startswith("python -m training train")
    assert {"val_letter_top1", "val_letter_top5"} <= set(manifest.metrics)
    assert manifest.data and manifest.data[0].samples > 0


def test_onnx_matches_torch(trained):
    _, model_dir = trained
    assert [head.name for head in Manifest.load(model_dir).heads] == ["letter"]
    assert_onnx_matches_torch(*trained)


def test_train_serve_parity(fake_data_dir, trained):
    """One image through the training dataset and through the service path gives the same tensor."""
    _, model_dir = trained
    cfg = Manifest.load(model_dir).preprocessing
    split = load_task("letter", fake_data_dir, val_fraction=0.25, seed=0).val
    training_tensor, _ = CanvasDataset(split, cfg)[0]
    buffer = io.BytesIO()
    Image.fromarray(split.images[0]).save(buffer, format="PNG")
    serving_tensor = preprocess(decode_image(buffer.getvalue(), max_pixels=10**7, max_side=10**4), cfg)
    np.testing.assert_array_equal(training_tensor.numpy(), serving_tensor)


def test_separate_export_keeps_the_training_command(trained, tmp_path):
    run_dir, _ = trained
    main(["export", str(run_dir / "best.pt"), str(tmp_path / "again")])
    info = Manifest.load(tmp_path / "again").training
    assert info.command.startswith("python -m training train")
    assert info.export_command.startswith("python -m training export")


def test_export_measures_held_out_test_sets(fake_data_dir, tmp_path):
    model_dir = tmp_path / "digits"
    args = ["train", "--run-dir", str(tmp_path / "run"), "--export", str(model_dir)]
    main(
        [*args, "--set", f"data_dir={fake_data_dir}", "--set", "task=digit", *SMOKE[2:], "--set", "epochs=1"]
    )
    metrics = Manifest.load(model_dir).metrics
    assert metrics["mnist_test_samples"] == 30 and 0.0 <= metrics["mnist_test_digit_top1"] <= 1.0
    assert "val_digit_top1" in metrics


def test_evaluate_scores_the_exported_model_on_scans_and_photos(trained, fake_data_dir, capsys):
    _, model_dir = trained
    main(["evaluate", str(model_dir), "--photos", "--data-dir", str(fake_data_dir)])
    printed = dict(line.split() for line in capsys.readouterr().out.strip().splitlines())
    expected = Manifest.load(model_dir).metrics["val_letter_top1"]
    assert float(printed["val_letter_top1"]) == pytest.approx(expected, abs=1e-4)
    assert 0.0 <= float(printed["val_photo_letter_top1"]) <= 1.0
