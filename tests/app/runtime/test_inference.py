from __future__ import annotations

import numpy as np
import pytest

from app.runtime.inference import ModelMismatch, OnnxClassifier, create_session


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


def test_the_cpu_memory_arena_is_off(letter_model):
    # Regression: with the arena on, ONNX Runtime keeps the memory of the largest batch it has run
    # (~0.7 GB per model after one /read of 3,400 pieces) for the life of the process.
    session = create_session(letter_model.directory / "model.onnx")
    assert session.get_session_options().enable_cpu_mem_arena is False


def test_large_batches_run_in_chunks_with_the_same_logits(letter_model):
    session = create_session(letter_model.directory / "model.onnx")
    sizes = []
    real_run = session.run

    def counting_run(names, feeds):
        sizes.append(len(next(iter(feeds.values()))))
        return real_run(names, feeds)

    session.run = counting_run
    classifier = OnnxClassifier(session, letter_model.manifest, max_batch=3)
    batch = np.random.default_rng(1).normal(size=(8, 1, 28, 28)).astype(np.float32)
    logits = classifier.predict(batch)
    assert sizes == [3, 3, 2]
    np.testing.assert_allclose(logits["letter"], letter_model.logits(batch)["letter"], rtol=1e-4, atol=1e-4)
    sizes.clear()
    assert classifier.predict(batch[:0])["letter"].shape == (0, 26) and sizes == [0]


def test_the_arena_setting_reaches_every_session(make_client, model_dir, tmp_path):
    # HWR_ORT_CPU_MEM_ARENA exists so a paired A/B can measure what the arena is worth.
    from tests.app.writer_models import write_writer_model

    writer_model = write_writer_model(tmp_path / "writer-model", threshold=0.9)
    for arena in (False, True):
        client = make_client(
            model_dir,
            ort_cpu_mem_arena=arena,
            writer_model_dir=writer_model,
            writer_db=str(tmp_path / f"{arena}.db"),
        )
        (model,) = client.app.state.registry.models.values()
        assert model.classifier.session.get_session_options().enable_cpu_mem_arena is arena
        assert client.get("/writers").status_code == 200  # loaded at start-up
        embedder = client.app.state.writers.service.embedder
        assert embedder.session.get_session_options().enable_cpu_mem_arena is arena
