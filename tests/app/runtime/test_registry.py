from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.errors import ModelNotReady, UnknownTask
from app.runtime import registry as registry_module
from app.runtime.registry import ModelRegistry, load_models
from contract.manifest import Manifest, ModelVariant, sha256_of
from tests.app.conftest import build_onnx


def test_loads_every_model_by_task(multi_head_model_dir):
    registry = load_models(multi_head_model_dir)
    assert registry.ready
    assert registry.tasks == ["grapheme", "letter"]
    assert registry.get("letter").manifest.name == "tiny-letters"
    assert "CPUExecutionProvider" in registry.get("letter").providers


def test_sha256_mismatch_skips_the_model_and_names_the_file(tmp_path, model_writer, caplog):
    model_writer(tmp_path, name="tampered", sha256="0" * 64)
    model_writer(tmp_path, name="good-graphemes", task="grapheme")
    with caplog.at_level(logging.ERROR, logger="app.runtime.registry"):
        registry = load_models(tmp_path)
    assert registry.tasks == ["grapheme"]
    assert "sha256 mismatch" in registry.failed["letter"]
    assert "tampered/model.onnx" in caplog.text and "sha256 mismatch" in caplog.text
    with pytest.raises(ModelNotReady, match="failed to load"):
        registry.get("letter")


def test_graph_that_breaks_its_manifest_is_skipped(tmp_path, model_writer):
    model_writer(tmp_path, onnx_outputs={"other_logits": 26})
    registry = load_models(tmp_path)
    assert not registry.ready
    assert "graph does not match manifest" in registry.failed["letter"]


def test_invalid_manifest_is_skipped(tmp_path, model_writer, caplog):
    model = model_writer(tmp_path)
    (model.directory / "manifest.json").write_text('{"name": "half a manifest"}')
    with caplog.at_level(logging.ERROR, logger="app.runtime.registry"):
        registry = load_models(tmp_path)
    assert registry.loaded and not registry.ready
    assert "manifest.json" in caplog.text


def test_corrupt_onnx_file_is_skipped(tmp_path, model_writer, caplog):
    model = model_writer(tmp_path)
    onnx_path = model.directory / "model.onnx"
    onnx_path.write_bytes(b"not a protobuf")
    # A matching checksum, so the loader gets as far as ONNX Runtime.
    manifest = model.manifest.model_copy(
        update={"onnx": model.manifest.onnx.model_copy(update={"sha256": sha256_of(onnx_path)})}
    )
    manifest.save(model.directory)
    with caplog.at_level(logging.ERROR, logger="app.runtime.registry"):
        registry = load_models(tmp_path)
    assert "ONNX Runtime cannot load it" in registry.failed["letter"]
    assert str(tmp_path) not in registry.failed["letter"]  # clients see no server paths
    assert "INVALID_PROTOBUF" in caplog.text  # the log has ONNX Runtime's own reason


def test_second_model_for_a_task_is_skipped(tmp_path, model_writer):
    model_writer(tmp_path, name="a-letters")
    model_writer(tmp_path, name="b-letters")
    registry = load_models(tmp_path)
    assert registry.get("letter").manifest.name == "a-letters"


def test_missing_or_empty_dir_loads_nothing(tmp_path):
    assert not load_models(tmp_path / "absent").ready
    registry = load_models(tmp_path)
    assert registry.loaded and not registry.ready


def test_get_explains_why_there_is_no_model(model_dir):
    with pytest.raises(ModelNotReady, match="loading"):
        ModelRegistry().get("letter")
    with pytest.raises(UnknownTask, match="known tasks: letter"):
        load_models(model_dir).get("digit")


# --- the int8 variant (HWR_MODEL_VARIANT=int8) ------------------------------------------------


def add_variant(model, within_tolerance: bool = True, seed: int = 7, sha256: str | None = None):
    """Give a tiny model a `variants.int8` entry: another graph with the same contract, whose own
    weights (returned) tell its logits from the float model's."""
    path = model.directory / "model.int8.onnx"
    weights = build_onnx(path, {head.output: len(head.labels) for head in model.manifest.heads}, seed=seed)
    variant = ModelVariant(
        file=path.name,
        sha256=sha256 or sha256_of(path),
        metrics={"val_accuracy": 0.49},
        delta={"val_accuracy": -0.01},
        primary_metric="val_accuracy",
        max_drop_points=0.3,
        within_tolerance=within_tolerance,
    )
    model.manifest.model_copy(update={"variants": {"int8": variant}}).save(model.directory)
    return weights


def served_logits(registry, task: str = "letter") -> tuple[np.ndarray, np.ndarray]:
    """The served model's first-head logits on a random batch, and the batch."""
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    return next(iter(registry.get(task).classifier.predict(x).values())), x


def test_manifest_without_variants_loads_unchanged(letter_model):
    text = (letter_model.directory / "manifest.json").read_text()
    assert "variants" in text  # written by this schema: empty
    legacy = json.loads(text)
    del legacy["variants"]  # as written before variants existed
    manifest = Manifest.model_validate(legacy)
    assert manifest.variants == {}
    assert manifest.model_dump(exclude={"variants"}) == letter_model.manifest.model_dump(exclude={"variants"})


def test_manifest_with_a_variant_round_trips(tmp_path, model_writer):
    model = model_writer(tmp_path)
    add_variant(model)
    manifest = Manifest.load(model.directory)
    assert manifest.variants["int8"].file == "model.int8.onnx"
    assert manifest.variants["int8"].within_tolerance
    with pytest.raises(ValidationError, match="must not reuse"):
        variant = manifest.variants["int8"].model_copy(update={"file": "model.onnx"})
        Manifest.model_validate(manifest.model_dump() | {"variants": {"int8": variant.model_dump()}})


def test_int8_is_served_when_asked_and_within_tolerance(tmp_path, model_writer, monkeypatch):
    monkeypatch.setattr(registry_module, "cpu_has_vnni", lambda: True)  # whatever CPU runs the test
    model = model_writer(tmp_path)
    weights = add_variant(model)
    registry = load_models(tmp_path, variant="int8")
    loaded = registry.get("letter")
    assert loaded.variant == "int8"
    assert loaded.onnx_sha256 == sha256_of(model.directory / "model.int8.onnx")
    logits, x = served_logits(registry)
    w, b = weights["letter_logits"]
    np.testing.assert_allclose(logits, x.reshape(2, -1) @ w + b, rtol=1e-4, atol=1e-4)


def test_float_is_served_by_default_even_with_an_int8_variant(tmp_path, model_writer):
    model = model_writer(tmp_path)
    add_variant(model)
    registry = load_models(tmp_path)
    loaded = registry.get("letter")
    assert loaded.variant == "float" and loaded.onnx_sha256 == model.manifest.onnx.sha256
    logits, x = served_logits(registry)
    np.testing.assert_allclose(logits, model.logits(x)["letter"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("out_of_tolerance", "over the 0.3 allowed"),
        ("checksum", "model.int8.onnx: sha256 mismatch"),
        ("missing", "model.int8.onnx: file not found"),
        ("gpu", "quantised for CPU, but this process serves on CUDAExecutionProvider"),
        ("no_vnni", "measured on CPUs with VNNI int8 instructions; this one has none"),
    ],
)
def test_int8_falls_back_to_float_with_a_log_line(
    tmp_path, model_writer, caplog, monkeypatch, damage, reason
):
    monkeypatch.setattr(registry_module, "cpu_has_vnni", lambda: damage != "no_vnni")
    model = model_writer(tmp_path)
    add_variant(model, within_tolerance=damage != "out_of_tolerance")
    if damage == "checksum":
        build_onnx(model.directory / "model.int8.onnx", {"letter_logits": 26}, seed=99)
    if damage == "missing":
        (model.directory / "model.int8.onnx").unlink()
    if damage == "gpu":
        monkeypatch.setattr(registry_module, "default_providers", lambda: ["CUDAExecutionProvider", "CPU"])
    with caplog.at_level(logging.WARNING, logger="app.runtime.registry"):
        registry = load_models(tmp_path, variant="int8")
    loaded = registry.get("letter")
    assert loaded.variant == "float" and not registry.failed
    logits, x = served_logits(registry)
    np.testing.assert_allclose(logits, model.logits(x)["letter"], rtol=1e-4, atol=1e-4)
    assert "serving the float model, not int8" in caplog.text and reason in caplog.text


def test_int8_asked_of_a_model_without_one_serves_float_and_says_so(tmp_path, model_writer, caplog):
    model_writer(tmp_path)
    with caplog.at_level(logging.INFO, logger="app.runtime.registry"):
        registry = load_models(tmp_path, variant="int8")
    assert registry.get("letter").variant == "float" and not registry.failed
    assert "no int8 variant recorded; serving the float model" in caplog.text


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu avx2 avx512f avx512_vnni", True), ("fpu avx2 avx_vnni", True), ("fpu avx2 avx512f", False)],
)
def test_vnni_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert registry_module.cpu_has_vnni(cpuinfo) is expected
    assert registry_module.cpu_has_vnni(tmp_path / "missing") is False


def test_model_variant_setting(monkeypatch):
    assert Settings().model_variant == "int8"  # where within tolerance (docs/quantization.md)
    monkeypatch.setenv("HWR_MODEL_VARIANT", "float")
    assert Settings().model_variant == "float"
    monkeypatch.setenv("HWR_MODEL_VARIANT", "fp16")
    with pytest.raises(ValidationError):
        Settings()
