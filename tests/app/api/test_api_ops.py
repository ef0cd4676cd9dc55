"""Health, readiness, /models, /metrics and the OpenAPI docs."""

from __future__ import annotations

import base64
import hashlib
import logging
import re

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app


def test_liveness_always(model_dir):
    # Without `with`, the lifespan has not run: alive, but not ready.
    client = TestClient(create_app(Settings(model_dir=model_dir)))
    assert client.get("/health/live").json() == {"status": "alive"}
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "model_not_ready", "message": "models are still loading"}


def test_ready_after_loading(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "tasks": ["letter"], "failed": {}}


def test_not_ready_with_an_empty_model_dir(make_client, tmp_path):
    client = make_client(tmp_path)
    assert client.get("/health/live").status_code == 200
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_ready"


def test_not_ready_when_the_only_model_fails(make_client, tmp_path, model_writer):
    model_writer(tmp_path, sha256="f" * 64)
    message = make_client(tmp_path).get("/health/ready").json()["error"]["message"]
    assert "letter" in message and "sha256 mismatch" in message


def test_models_lists_the_manifest_facts(make_client, multi_head_model_dir):
    models = make_client(multi_head_model_dir).get("/models").json()["models"]
    assert [m["task"] for m in models] == ["grapheme", "letter"]
    grapheme, letter = models
    assert letter["name"] == "tiny-letters" and letter["version"] == "0.0.1"
    assert letter["input"] == {"name": "image", "shape": [None, 1, 28, 28], "dtype": "float32"}
    assert letter["heads"] == [{"name": "letter", "output": "letter_logits", "num_labels": 26}]
    assert letter["metrics"] == {"val_accuracy": 0.5}
    assert [h["num_labels"] for h in grapheme["heads"]] == [11, 5, 3]


def test_metrics_count_requests_and_stages(make_client, model_dir, letter_png):
    client = make_client(model_dir, batch_max_size=8)  # dynamic batching on: its metrics too
    client.post("/predict/letter", files={"file": ("a.png", letter_png)})
    client.post("/predict/letter", files={"file": ("a.png", b"nope")})
    client.post("/predict/made-up-task", files={"file": ("a.png", letter_png)})
    text = client.get("/metrics").text
    assert 'hwr_requests_total{status="200",task="letter"} 1.0' in text
    assert 'hwr_requests_total{status="415",task="letter"} 1.0' in text
    # Unknown tasks share one label value, so clients cannot blow up the series count.
    assert 'hwr_requests_total{status="404",task="unknown"} 1.0' in text
    assert "made-up-task" not in text
    for stage in ("decode", "preprocess", "queue", "inference", "total"):
        assert f'hwr_stage_seconds_count{{stage="{stage}",task="letter"}} 1.0' in text
    assert 'hwr_batch_size_count{task="letter"} 1.0' in text


def series(text: str, metric: str) -> set[str]:
    """The exposition lines of one metric's series."""
    return {line for line in text.splitlines() if line.startswith(f"{metric}{{")}


def test_metrics_count_every_model_endpoint(client, letter_png):
    upload = {"file": ("a.png", letter_png)}
    client.post("/predict/letter", files=upload)
    client.post("/predict/letter/batch", files=[("files", ("a.png", letter_png))] * 2)
    client.post("/read/letter", files=upload)
    client.post("/read/made-up-task", files=upload)
    data = [base64.b64encode(letter_png).decode()]
    infer = {"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": data}]}
    client.post("/v2/models/tiny-letters/infer", json=infer)  # the manifest's name
    client.post("/v2/models/letter/versions/0.0.1/infer", json=infer)  # the task and version
    client.post("/v2/models/made-up-model/infer", json=infer)
    client.get("/v2/models/tiny-letters")  # metadata is not counted
    text = client.get("/metrics").text
    assert series(text, "hwr_endpoint_requests_total") == {
        'hwr_endpoint_requests_total{endpoint="predict",status="200",task="letter"} 1.0',
        'hwr_endpoint_requests_total{endpoint="predict_batch",status="200",task="letter"} 1.0',
        'hwr_endpoint_requests_total{endpoint="read",status="200",task="letter"} 1.0',
        'hwr_endpoint_requests_total{endpoint="read",status="404",task="unknown"} 1.0',
        'hwr_endpoint_requests_total{endpoint="v2_infer",status="200",task="letter"} 2.0',
        'hwr_endpoint_requests_total{endpoint="v2_infer",status="404",task="unknown"} 1.0',
    }
    # The dashboards' counter keeps counting /predict/* only, batches under their task.
    assert series(text, "hwr_requests_total") == {'hwr_requests_total{status="200",task="letter"} 2.0'}
    assert "made-up" not in text


def test_each_app_has_its_own_metrics(make_client, model_dir, letter_png):
    first, second = make_client(model_dir), make_client(model_dir)
    first.post("/predict/letter", files={"file": ("a.png", letter_png)})
    assert "hwr_requests_total{" not in second.get("/metrics").text


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/predict/{task}"]["post"]["responses"]
    assert {"200", "404", "413", "415", "422", "503"} <= set(responses)
    error_ref = "#/components/schemas/ErrorResponse"
    assert responses["415"]["content"]["application/json"]["schema"]["$ref"] == error_ref
    assert responses["422"]["content"]["application/json"]["schema"]["$ref"] == error_ref
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith("PredictResponse")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_elsewhere(client, page):
    """Offline (or behind an egress firewall) a page fed from a CDN stays blank."""
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert any(a.endswith(".js") for a in assets), assets  # the viewer itself is one of them
    for asset in [*assets, "/openapi.json"]:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL):  # allowed by hash
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda onnx: onnx.unlink(), "file not found"),
        (lambda onnx: onnx.write_bytes(onnx.read_bytes()[:-100]), "sha256 mismatch"),
        (lambda onnx: onnx.write_bytes(b"\x00" + onnx.read_bytes()[1:]), "sha256 mismatch"),
    ],
    ids=["missing", "truncated", "one-byte-changed"],
)
def test_a_broken_model_fails_alone(make_client, tmp_path, model_writer, letter_png, caplog, damage, reason):
    letters = model_writer(tmp_path, name="letters")
    model_writer(tmp_path, name="graphemes", task="grapheme")
    damage(letters.directory / "model.onnx")
    with caplog.at_level(logging.ERROR, logger="app.runtime.registry"):
        client = make_client(tmp_path)
    # A log line that names the file and says why.
    assert any("letters/model.onnx" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    # Ready for the good task only; the broken one is listed with its reason.
    ready = client.get("/health/ready").json()
    assert ready["tasks"] == ["grapheme"] and reason in ready["failed"]["letter"]
    # Its endpoint answers 503; the other task keeps serving.
    response = client.post("/predict/letter", files={"file": ("a.png", letter_png)})
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_not_ready"
    assert reason in response.json()["error"]["message"]
    assert client.post("/predict/grapheme", files={"file": ("a.png", letter_png)}).status_code == 200


def test_metrics_time_whole_requests_and_count_those_in_flight(client, letter_png):
    client.post("/predict/letter", files={"file": ("a.png", letter_png)})
    client.post("/predict/letter", files={"file": ("a.png", b"nope")})
    client.post("/read/made-up-task", files={"file": ("a.png", letter_png)})
    text = client.get("/metrics").text
    # From arrival to the last byte, waiting for admission and a compute slot included; the
    # version of the model that answered, and the status class.
    assert series(text, "hwr_request_duration_seconds_count") == {
        'hwr_request_duration_seconds_count{code="2xx",endpoint="predict",task="letter",version="0.0.1"} 1.0',
        'hwr_request_duration_seconds_count{code="4xx",endpoint="predict",task="letter",version="0.0.1"} 1.0',
        'hwr_request_duration_seconds_count{code="4xx",endpoint="read",task="unknown",version="unknown"} 1.0',
    }
    assert 'hwr_requests_in_flight{endpoint="predict"} 0.0' in text  # none left once answered
    assert series(text, "hwr_model_info") == {
        'hwr_model_info{name="tiny-letters",task="letter",version="0.0.1"} 1.0'
    }


def test_a_request_is_in_flight_until_answered(client, letter_png, monkeypatch):
    classifier = client.app.state.registry.get("letter").classifier
    predict, seen = classifier.predict, []

    def watched(x):  # inside the request: it is in flight while the model runs
        seen.append(client.app.state.metrics.in_flight.labels(endpoint="predict")._value.get())
        return predict(x)

    monkeypatch.setattr(classifier, "predict", watched)
    client.post("/predict/letter", files={"file": ("a.png", letter_png)})
    assert seen == [1.0]
    assert client.app.state.metrics.in_flight.labels(endpoint="predict")._value.get() == 0.0
