from __future__ import annotations

import logging

import pytest

from app.errors import ModelNotReady, UnknownTask
from app.manifest import sha256_of
from app.registry import ModelRegistry, load_models


def test_loads_every_model_by_task(multi_head_model_dir):
    registry = load_models(multi_head_model_dir)
    assert registry.ready
    assert registry.tasks == ["grapheme", "letter"]
    assert registry.get("letter").manifest.name == "tiny-letters"
    assert "CPUExecutionProvider" in registry.get("letter").providers


def test_sha256_mismatch_skips_the_model_and_names_the_file(tmp_path, model_writer, caplog):
    model_writer(tmp_path, name="tampered", sha256="0" * 64)
    model_writer(tmp_path, name="good-graphemes", task="grapheme")
    with caplog.at_level(logging.ERROR, logger="app.registry"):
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
    with caplog.at_level(logging.ERROR, logger="app.registry"):
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
    with caplog.at_level(logging.ERROR, logger="app.registry"):
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
