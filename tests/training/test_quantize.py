"""`python -m training quantize` on a tiny linear model: synthetic calibration data, or the fake FEMNIST."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from app.runtime import registry as registry_module
from app.runtime.inference import OnnxClassifier, create_session
from app.runtime.registry import load_models
from contract.manifest import Manifest, sha256_of
from tests.app.conftest import write_model
from training import quantize as q
from training.__main__ import main
from training.scoring import Scored


def synthetic_data(model, n: int = 256) -> q.QuantizationData:
    """Random canvases; targets are the float model's own answers, so float top-1 is 1."""
    rng = np.random.default_rng(0)
    canvases = rng.random((n, 28, 28), dtype=np.float32)
    x = (canvases - 0.15) / 0.3  # PreprocessConfig's default mean and std, as normalise applies them
    targets = {"letter": model.logits(x[:, None])["letter"].argmax(axis=1)}
    return q.QuantizationData(calibration=canvases[:128], splits={"val": Scored(canvases, targets)})


def test_quantize_writes_a_working_int8_file_and_its_manifest_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_module, "cpu_has_vnni", lambda: True)  # whatever CPU runs the test
    model = write_model(tmp_path)
    result = q.quantize_model(model.directory, synthetic_data(model), max_drop=3.0, command="pytest")

    int8_path = model.directory / q.INT8_FILE
    variant = Manifest.load(model.directory).variants["int8"]
    assert variant == result.variant
    assert variant.sha256 == sha256_of(int8_path) and variant.command == "pytest"
    assert variant.primary_metric == "val_letter_top1" and result.float_metrics["val_letter_top1"] == 1.0
    assert variant.metrics["val_letter_top1"] == pytest.approx(1.0 + variant.delta["val_letter_top1"])
    assert variant.metrics["val_samples"] == 256 and "val_samples" not in variant.delta
    assert variant.within_tolerance and variant.calibration_samples == 128
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(int8_path).graph.node)

    # The service's own contract check accepts it, and the registry serves it when asked.
    classifier = OnnxClassifier(create_session(int8_path), Manifest.load(model.directory))
    logits = classifier.predict(np.zeros((3, 1, 28, 28), np.float32))
    assert logits["letter"].shape == (3, 26)
    assert load_models(tmp_path, variant="int8").get("letter").variant == "int8"
    assert not list(model.directory.glob("*.partial"))


def test_rerunning_replaces_the_variant(tmp_path):
    model = write_model(tmp_path)
    data = synthetic_data(model)
    first = q.quantize_model(model.directory, data, command="first")
    second = q.quantize_model(model.directory, data, command="second")
    manifest = Manifest.load(model.directory)
    assert list(manifest.variants) == ["int8"] and manifest.variants["int8"].command == "second"
    assert second.variant.sha256 == first.variant.sha256  # deterministic for the same data
    assert manifest.onnx == model.manifest.onnx and manifest.metrics == model.manifest.metrics


def test_a_drop_beyond_tolerance_is_recorded_but_not_within(tmp_path):
    model = write_model(tmp_path)
    variant = q._variant(
        model.manifest,
        model.directory / "model.onnx",
        {"val_letter_top1": 0.95, "val_samples": 100.0},
        {"val_letter_top1": 0.946, "val_samples": 100.0},
        max_drop=0.3,
        calibration_samples=10,
        command="",
    )
    assert variant.delta == {"val_letter_top1": pytest.approx(-0.004)}
    assert not variant.within_tolerance
    result = q.QuantizationResult(model.manifest, variant, {"val_letter_top1": 0.95})
    assert "NOT within the 0.3 point tolerance" in q.summary(result, {})


def test_primary_metric_follows_select_metric(tmp_path):
    manifest = write_model(tmp_path).manifest
    assert q.primary_metric(manifest) == "val_letter_top1"
    training = manifest.training.model_copy(update={"config": {"select_metric": "score"}})
    assert q.primary_metric(manifest.model_copy(update={"training": training})) == "val_score"


def test_refuses_a_model_whose_file_breaks_its_checksum(tmp_path):
    model = write_model(tmp_path, sha256="0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        q.quantize_model(model.directory, synthetic_data(model))
    assert not (model.directory / q.INT8_FILE).exists()


def test_command_end_to_end_on_fake_femnist(tmp_path, fake_data_dir, capsys):
    model = write_model(tmp_path)
    main(["quantize", str(model.directory), "--data-dir", str(fake_data_dir), "--calibration", "40"])
    out = capsys.readouterr().out
    assert "val_letter_top1" in out and "batch 8, 1 thread:" in out and "tolerance" in out
    variant = Manifest.load(model.directory).variants["int8"]
    assert variant.calibration_samples == 40 and variant.metrics["val_samples"] > 0
    assert variant.command.startswith("python -m training quantize")
