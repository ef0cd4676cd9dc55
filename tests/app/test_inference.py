from __future__ import annotations

import numpy as np
import pytest

from app.inference import ModelMismatch, OnnxClassifier, create_session


def classifier_for(model) -> OnnxClassifier:
    return OnnxClassifier(create_session(model.directory / "model.onnx"), model.manifest)


def test_logits_match_the_graph(letter_model):
    classifier = classifier_for(letter_model)
    batch = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    logits = classifier.predict(batch)
    assert list(logits) == ["letter"]
    assert logits["letter"].shape == (3, 26)
    np.testing.assert_allclose(logits["letter"], letter_model.logits(batch)["letter"], rtol=1e-4, atol=1e-4)


def test_one_output_per_head(tmp_path, model_writer, grapheme_heads):
    model = model_writer(tmp_path, task="grapheme", heads=grapheme_heads)
    logits = classifier_for(model).predict(np.zeros((1, 1, 28, 28), np.float32))
    assert {name: v.shape for name, v in logits.items()} == {
        "grapheme_root": (1, 11),
        "vowel_diacritic": (1, 5),
        "consonant_diacritic": (1, 3),
    }


def test_wrong_input_name_is_refused(tmp_path, model_writer):
    with pytest.raises(ModelMismatch, match="input"):
        classifier_for(model_writer(tmp_path, input_name="pixels"))


def test_missing_output_is_refused(tmp_path, model_writer):
    with pytest.raises(ModelMismatch, match="not in graph outputs"):
        classifier_for(model_writer(tmp_path, onnx_outputs={"logits": 26}))


def test_wrong_class_count_is_refused(tmp_path, model_writer):
    with pytest.raises(ModelMismatch, match="output shape"):
        classifier_for(model_writer(tmp_path, onnx_outputs={"letter_logits": 10}))


def test_predict_checks_the_batch(letter_model):
    classifier = classifier_for(letter_model)
    with pytest.raises(ValueError):
        classifier.predict(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError):
        classifier.predict(np.zeros((1, 1, 28, 28), np.float64))
