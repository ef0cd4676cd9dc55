"""A composing model (manifest `composition`): whole Bengali graphemes plus per-head components."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from pydantic import ValidationError

from app.service.images import decode_image
from contract.graphemes import compose, top_graphemes
from contract.manifest import Manifest
from contract.postprocessing import COMPOSERS, softmax
from contract.preprocessing import preprocess

BENGALI_HEADS = [
    ("grapheme_root", "grapheme_root_logits", ["ক", "খ", "গ", "র", "য", "ক্ষ"]),
    ("vowel_diacritic", "vowel_diacritic_logits", ["0", "া", "ি", "ে"]),
    ("consonant_diacritic", "consonant_diacritic_logits", ["0", "ঁ", "র্", "্য", "্র"]),
]


@pytest.fixture(scope="module")
def bengali_model(tmp_path_factory, model_writer):
    root = tmp_path_factory.mktemp("models")
    model = model_writer(root, name="tiny-bengali", task="grapheme", heads=BENGALI_HEADS, seed=2)
    model.manifest = model.manifest.model_copy(update={"composition": "bengali_grapheme"})
    model.manifest.save(model.directory)
    return model


def post(client, data: bytes, **params):
    return client.post("/predict/grapheme", files={"file": ("g.png", data, "image/png")}, params=params)


def test_answers_are_composed_graphemes_with_their_components(make_client, bengali_model, letter_png):
    client = make_client(bengali_model.directory.parent)
    response = post(client, letter_png, k=4)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "heads" not in body
    # The whole path recomputed by hand: preprocess → W·x + b → softmax per head → composition.
    x = preprocess(decode_image(letter_png, 10**8, 10**5), bengali_model.manifest.preprocessing)
    probabilities = {h: softmax(v[0]) for h, v in bengali_model.logits(x[None]).items()}
    labels = {name: names for name, _, names in BENGALI_HEADS}
    expected = top_graphemes(probabilities, labels, 4)
    assert [p["label"] for p in body["predictions"]] == [text for text, _ in expected]
    np.testing.assert_allclose(
        [p["probability"] for p in body["predictions"]], [p for _, p in expected], rtol=1e-5
    )

    assert list(body["components"]) == [name for name, _, _ in BENGALI_HEADS]
    for name, _, names in BENGALI_HEADS:
        top = body["components"][name]
        assert len(top) == 4
        best = np.argsort(-probabilities[name], kind="stable")[:4]
        assert [c["index"] for c in top] == best.tolist()
        assert [c["label"] for c in top] == [names[i] for i in best]
    best_labels = [body["components"][name][0]["label"] for name, _, _ in BENGALI_HEADS]
    assert body["predictions"][0]["label"] == compose(*best_labels)


def test_k_is_capped_by_the_root_head(make_client, bengali_model, letter_png):
    client = make_client(bengali_model.directory.parent)
    assert post(client, letter_png, k=7).status_code == 422  # 6 roots
    body = post(client, letter_png, k=6).json()
    assert len(body["predictions"]) == 6
    assert [len(v) for v in body["components"].values()] == [6, 4, 5]  # each head's own cap


def test_blank_image_is_still_422(make_client, bengali_model, images):
    response = post(make_client(bengali_model.directory.parent), images.blank_photo())
    assert response.status_code == 422


def test_manifest_composition_is_optional_and_checked(bengali_model):
    plain = bengali_model.manifest.model_dump(exclude={"composition"})
    assert Manifest.model_validate(plain).composition is None  # older manifests still load
    with pytest.raises(ValidationError, match="needs heads"):
        Manifest.model_validate({**plain, "composition": "bengali_grapheme", "heads": plain["heads"][:2]})
    with pytest.raises(ValidationError):
        Manifest.model_validate({**plain, "composition": "klingon"})


def test_every_composition_a_manifest_may_name_has_a_composer():
    literal, _ = typing.get_args(Manifest.model_fields["composition"].annotation)
    assert set(typing.get_args(literal)) == set(COMPOSERS)
