"""Optional bearer token on /predict/*: off by default, on with HWR_API_TOKEN, checked before the body."""

from __future__ import annotations

import asyncio

import pytest

from app.config import Settings
from app.http.auth import token_matches
from app.main import create_app
from tests.app.conftest import predict_scope

TOKEN = "s3cret-token-0123456789"


def post(client, data: bytes, **headers: str):
    return client.post("/predict/letter", files={"file": ("a.png", data)}, headers=headers)


def test_off_by_default(client, letter_png):
    assert post(client, letter_png).status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
def test_on_refuses_without_the_right_token(make_client, model_dir, letter_png, authorization):
    client = make_client(model_dir, api_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = post(client, letter_png, **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text


def test_on_accepts_the_token_and_leaves_operations_open(make_client, model_dir, letter_png):
    client = make_client(model_dir, api_token=TOKEN)
    assert post(client, letter_png, Authorization=f"Bearer {TOKEN}").status_code == 200
    # The scheme is case-insensitive (RFC 7235).
    assert post(client, letter_png, Authorization=f"bearer {TOKEN}").status_code == 200
    for path in ("/health/live", "/health/ready", "/models", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_on_by_the_environment_variable(monkeypatch, model_dir, letter_png, make_client):
    monkeypatch.setenv("HWR_API_TOKEN", TOKEN)
    settings = Settings(model_dir=model_dir)
    assert settings.api_token is not None and TOKEN not in repr(settings)  # never printed
    client = make_client(model_dir, api_token=settings.api_token.get_secret_value())
    assert post(client, letter_png).status_code == 401


def test_openapi_declares_the_scheme_when_on(make_client, model_dir):
    spec = make_client(model_dir, api_token=TOKEN).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operation = spec["paths"]["/predict/{task}"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}]
    assert "401" in operation["responses"]


def test_an_unauthenticated_body_is_never_read(model_dir):
    app = create_app(Settings(model_dir=model_dir, api_token=TOKEN))
    received, sent = [], []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = predict_scope()
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401 and received == []


def test_token_comparison():
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"Bearer   {TOKEN}  ", TOKEN)
    assert not token_matches(None, TOKEN)
    assert not token_matches(f"Bearer {TOKEN[:-1]}", TOKEN)
    assert not token_matches("Bearer ünïcode", TOKEN)  # non-ASCII never raises


@pytest.mark.parametrize("token", ["short", "x" * 15])
def test_short_tokens_fail_at_start(token):
    with pytest.raises(ValueError, match="at least 16"):
        Settings(api_token=token)


def test_an_empty_token_leaves_authentication_off(monkeypatch):
    monkeypatch.setenv("HWR_API_TOKEN", "")
    assert Settings().api_token is None


def test_on_guards_the_v2_model_endpoints_but_not_v2_health(make_client, model_dir):
    client = make_client(model_dir, api_token=TOKEN)
    body = {"inputs": [{"name": "image", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]}
    assert client.post("/v2/models/letter/infer", json=body).status_code == 401
    assert client.get("/v2/models/letter").status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    authorised = client.post("/v2/models/letter/infer", json=body, headers=bearer)
    assert authorised.status_code == 200, authorised.text
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").status_code == 200
