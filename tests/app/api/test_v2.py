"""The Open Inference Protocol (KServe v2) API: in process on tiny models, then the official client
(tritonclient, a dev dependency) against the real server on the committed models."""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pytest

from app.service import v2 as v2_router
from app.service.images import decode_image
from bench.server import REPO, Server, running_server
from contract.manifest import Manifest
from contract.preprocessing import PreprocessConfig, preprocess

httpclient = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

INFER = "/v2/models/tiny-letters/infer"


def preprocessed(cfg: PreprocessConfig, image: bytes) -> np.ndarray:
    """What the service feeds the model for `image`: decoded and preprocessed as /predict does."""
    decoded = decode_image(image, max_pixels=40_000_000, max_side=20_000, reduce_to=cfg.max_side)
    return preprocess(decoded, cfg)[None]


def fp32(x: np.ndarray, name: str = "image") -> dict:
    return {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}


def image_bytes(*encoded: bytes) -> dict:
    data = [base64.b64encode(image).decode() for image in encoded]
    return {"name": "image_bytes", "datatype": "BYTES", "shape": [len(data)], "data": data}


# --- in process, tiny models ------------------------------------------------------------------


def test_server_and_model_metadata(client, letter_model):
    assert client.get("/v2").json() == {
        "name": "handwriting-service",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    expected = {
        "name": "tiny-letters",
        "versions": ["0.0.1"],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]},
            {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "letter_logits", "datatype": "FP32", "shape": [-1, 26]}],
    }
    # By the manifest's name or its task, with or without the version.
    for path in ("/v2/models/tiny-letters", "/v2/models/letter", "/v2/models/tiny-letters/versions/0.0.1"):
        assert client.get(path).json() == expected
        assert client.get(f"{path}/ready").status_code == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v2/models/nope", "unknown model 'nope'; known models: tiny-letters"),
        ("/v2/models/nope/ready", "unknown model 'nope'; known models: tiny-letters"),
        ("/v2/models/letter/versions/9/ready", "model 'letter' has no version '9'; it serves '0.0.1'"),
    ],
)
def test_unknown_models_and_versions_are_404_in_the_protocols_error_form(client, path, message):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": message}


def test_an_fp32_tensor_gets_the_models_logits_per_head(make_client, multi_head_model_dir):
    client = make_client(multi_head_model_dir)
    x = np.random.default_rng(0).normal(size=(3, 1, 28, 28)).astype(np.float32)
    response = client.post("/v2/models/tiny-graphemes/infer", json={"id": "q", "inputs": [fp32(x)]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("tiny-graphemes", "0.0.1", "q")
    names = [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]]
    assert names == [
        ("grapheme_root_logits", "FP32", [3, 11]),
        ("vowel_diacritic_logits", "FP32", [3, 5]),
        ("consonant_diacritic_logits", "FP32", [3, 3]),
    ]
    graph = client.app.state.registry.get("grapheme").classifier.predict(x)
    for output, head in zip(body["outputs"], graph, strict=True):
        np.testing.assert_allclose(np.reshape(output["data"], output["shape"]), graph[head], rtol=1e-6)


def test_encoded_images_go_through_the_services_preprocessing(client, letter_model, letter_png, letter_jpeg):
    response = client.post(INFER, json={"inputs": [image_bytes(letter_png, letter_jpeg)]})
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    assert output["shape"] == [2, 26]
    expected = letter_model.logits(
        np.concatenate(
            [preprocessed(letter_model.manifest.preprocessing, i) for i in (letter_png, letter_jpeg)]
        )
    )
    np.testing.assert_allclose(np.reshape(output["data"], (2, 26)), expected["letter"], rtol=1e-4, atol=1e-4)


def test_classification_answers_the_same_top_k_as_predict(client, letter_png):
    request = {
        "inputs": [image_bytes(letter_png)],
        "outputs": [{"name": "letter", "parameters": {"classification": 3}}],
    }
    [output] = client.post(INFER, json=request).json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("letter", "BYTES", [1, 3])
    labels = [entry.split(":")[2] for entry in output["data"]]
    predictions = client.post("/predict/letter?k=3", files={"file": ("a.png", letter_png)}).json()[
        "predictions"
    ]
    assert labels == [p["label"] for p in predictions]


def test_binary_outputs_follow_the_json_header(client, letter_png):
    request = {"inputs": [image_bytes(letter_png)], "parameters": {"binary_data_output": True}}
    response = client.post(INFER, json=request)
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["Inference-Header-Content-Length"])
    header = json.loads(response.content[:length])
    [output] = header["outputs"]
    assert output["parameters"] == {"binary_data_size": 26 * 4}
    logits = np.frombuffer(response.content[length:], "<f4")
    assert logits.shape == (26,)


def test_binary_images_with_the_length_header(client, letter_model, letter_png):
    element = len(letter_png).to_bytes(4, "little") + letter_png
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image_bytes",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(element)},
                }
            ]
        }
    ).encode()
    response = client.post(
        INFER, content=header + element, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    assert response.status_code == 200, response.text
    [output] = response.json()["outputs"]
    expected = letter_model.logits(preprocessed(letter_model.manifest.preprocessing, letter_png))["letter"]
    np.testing.assert_allclose(np.reshape(output["data"], (1, 26)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        (
            {"inputs": [fp32(np.zeros((1, 1, 28, 27), np.float32))]},
            400,
            "must be FP32 of shape [N, 1, 28, 28]",
        ),
        ({"inputs": [fp32(np.zeros((1, 1, 28, 28)), "other")]}, 400, "send exactly one input"),
        (
            {"inputs": [fp32(np.zeros((1, 1, 28, 28))), image_bytes(b"x")]},
            400,
            "send exactly one input, 'image' (FP32, preprocessed) or 'image_bytes' (BYTES, encoded images)",
        ),
        ({"inputs": [fp32(np.zeros((0, 1, 28, 28)))]}, 400, "between 1 and 3 images, got 0"),
        ({"inputs": [fp32(np.zeros((4, 1, 28, 28)))]}, 400, "between 1 and 3 images, got 4"),
        (
            {"inputs": [{"name": "image", "datatype": "FP64", "shape": [1, 1, 28, 28], "data": [0.0] * 784}]},
            400,
            "must be FP32",
        ),
        ({"inputs": [fp32(np.full((1, 1, 28, 28), 1e39))]}, 400, "NaN or infinite"),
        (
            {"inputs": [fp32(np.zeros((1, 1, 28, 28)))], "outputs": [{"name": "digit"}]},
            400,
            "unknown output 'digit'",
        ),
        ({"inputs": [{**image_bytes(b"x"), "data": ["***"]}]}, 400, "image_bytes[0]: not valid base64"),
        ({"inputs": [{**image_bytes(b"x"), "shape": [1, 1]}]}, 400, "must be BYTES of shape [N]"),
        ({"inputs": [image_bytes(b"not an image")]}, 415, "image_bytes[0]: not a supported image"),
        ({"inputs": [image_bytes(b"")]}, 422, "image_bytes[0]: the uploaded file is empty"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_reason(make_client, model_dir, request_body, status, message):
    client = make_client(model_dir, max_batch_files=3)
    response = client.post(INFER, json=request_body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    ("header", "binary", "message"),
    [
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1] * 65, "data": [0.0]}]}, b"",
         "at most 32 dimensions, got 65"),
        (
            {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1] * 65,
                         "parameters": {"binary_data_size": 4}}]},
            b"\x00" * 4,
            "at most 32 dimensions, got 65",
        ),
        ({"inputs": [{**image_bytes(b"x"), "data": ["\ud800"]}]}, b"", "must be valid Unicode text"),
        ({"inputs": [fp32(np.zeros((1, 1, 28, 28)))], "id": "\ud800"}, b"", "id must be valid Unicode"),
    ],
)  # fmt: skip
def test_hostile_shapes_and_lone_surrogates_are_400s(client, header, binary, message):
    # Regression: each of these answered 500. json.dumps writes the surrogate as its \ud800 escape.
    encoded = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(encoded))} if binary else {}
    response = client.post(INFER, content=encoded + binary, headers=headers)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_a_blank_image_names_its_place_in_the_batch(client, letter_png, images):
    response = client.post(INFER, json={"inputs": [image_bytes(letter_png, images.blank_photo())]})
    assert response.status_code == 422
    assert response.json()["error"].startswith("image_bytes[1]: ")


def test_compressed_bodies_are_refused(client):
    body = gzip.compress(json.dumps({"inputs": [fp32(np.zeros((1, 1, 28, 28)))]}).encode())
    response = client.post(INFER, content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert "Content-Encoding" in response.json()["error"]


def test_the_byte_cap_covers_v2_bodies(make_client, model_dir):
    client = make_client(model_dir, max_upload_bytes=1000)
    response = client.post(INFER, content=b"{" + b" " * 100_000 + b"}")
    assert response.status_code == 413


def test_v2_stays_out_of_the_openapi_schema(client):
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path.startswith("/v2")]


# --- the official client against the real server on the committed models --------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    with running_server(REPO / "models", tmp_path_factory.mktemp("v2") / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def triton(server: Server):
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    yield client
    client.close()


def test_the_official_client_reads_server_and_model_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert set(triton.get_server_metadata()["extensions"]) >= {"binary_tensor_data", "classification"}
    metadata = triton.get_model_metadata("graphemes")
    assert metadata["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": [-1, 1, 64, 64]}
    assert [o["name"] for o in metadata["outputs"]] == [
        "grapheme_root_logits",
        "vowel_diacritic_logits",
        "consonant_diacritic_logits",
    ]
    assert triton.is_model_ready("letters") and triton.is_model_ready("letter")
    assert not triton.is_model_ready("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_the_official_client_infers_with_a_tensor_and_with_image_bytes(triton, binary):
    photo = (REPO / "tests" / "data" / "R_photo.jpg").read_bytes()
    scan = (REPO / "tests" / "data" / "K_scan.png").read_bytes()
    # The FP32 tensor a Triton client would send: preprocessed as the service does.
    cfg = Manifest.load(REPO / "models" / "letters").preprocessing
    x = np.concatenate([preprocessed(cfg, photo), preprocessed(cfg, scan)])
    tensor = httpclient.InferInput("image", list(x.shape), "FP32").set_data_from_numpy(x, binary_data=binary)
    output = httpclient.InferRequestedOutput("letter_logits", binary_data=binary)
    from_tensor = triton.infer("letters", [tensor], outputs=[output]).as_numpy("letter_logits")

    encoded = np.array([photo, scan], dtype=np.object_)
    raw = httpclient.InferInput("image_bytes", [2], "BYTES")
    if binary:
        raw.set_data_from_numpy(encoded)
    else:  # JSON can carry only text: base64, as documented
        raw.set_data_from_numpy(
            np.array([base64.b64encode(i) for i in encoded], dtype=np.object_), binary_data=False
        )
    result = triton.infer(
        "letter",
        [raw],
        outputs=[
            httpclient.InferRequestedOutput("letter_logits", binary_data=binary),
            httpclient.InferRequestedOutput("letter", binary_data=binary, class_count=3),
        ],
    )
    from_images = result.as_numpy("letter_logits")
    assert from_tensor.shape == from_images.shape == (2, 26)
    np.testing.assert_allclose(from_images, from_tensor, rtol=1e-5, atol=1e-5)
    top = [
        [(v.decode() if isinstance(v, bytes) else v).split(":") for v in row]
        for row in result.as_numpy("letter")
    ]
    assert [row[0][2] for row in top] == ["R", "K"]
    assert int(top[0][0][1]) == int(np.argmax(from_images[0]))


def test_the_official_client_gets_every_head_of_the_grapheme_model(triton):
    image = (REPO / "tests" / "data" / "bengali" / "render_03.png").read_bytes()
    raw = httpclient.InferInput("image_bytes", [1], "BYTES").set_data_from_numpy(
        np.array([image], dtype=np.object_)
    )
    result = triton.infer("graphemes", [raw])  # no outputs named: all, in binary
    shapes = {
        name: result.as_numpy(name).shape for name in ("grapheme_root_logits", "vowel_diacritic_logits")
    }
    assert shapes == {"grapheme_root_logits": (1, 168), "vowel_diacritic_logits": (1, 11)}
    assert result.as_numpy("consonant_diacritic_logits").shape == (1, 7)


def test_the_official_client_sees_errors_as_exceptions(triton):
    x = np.zeros((1, 1, 28, 28), np.float32)
    tensor = httpclient.InferInput("image", [1, 1, 28, 28], "FP32").set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as caught:
        triton.infer("nope", [tensor])
    assert caught.value.status() == "404"
    with pytest.raises(InferenceServerException, match=r"must be FP32 of shape \[N, 1, 64, 64\]"):
        triton.infer("graphemes", [tensor])


def test_a_json_body_of_a_million_values_is_413_before_it_is_parsed(client, monkeypatch):
    # Regression: a 10 MB body of numbers was parsed in full (0.6-3.4 s) before its 400.
    parsed: list[bytes] = []
    real = v2_router.parse_infer_request
    monkeypatch.setattr(
        v2_router, "parse_infer_request", lambda body, length: parsed.append(body) or real(body, length)
    )
    data = b",".join([b"0"] * 1_000_000)
    body = b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1000000], "data": [' + data + b"]}]}"
    response = client.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "more than 29184 values" in response.json()["error"]  # 32 x 784 + 4096
    assert parsed == []


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_the_largest_json_request_is_still_answered(client, nested):
    batch = np.zeros((32, 1, 28, 28), np.float32)  # max_batch_files images, as numbers in JSON
    tensor = {**fp32(batch), "data": batch.tolist()} if nested else fp32(batch)
    response = client.post(
        INFER, json={"inputs": [tensor], "outputs": [{"name": "letter_logits"}], "id": "a,b"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [32, 26]
