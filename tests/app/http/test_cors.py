"""CORS: closed unless HWR_CORS_ORIGINS names the origins allowed to call from a browser."""

from __future__ import annotations

import pytest

from app.config import Settings

SITE = "https://app.example.org"
PREFLIGHT = {
    "Origin": SITE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


def test_closed_by_default(client, letter_png):
    response = client.post("/predict/letter", files={"file": ("a.png", letter_png)}, headers={"Origin": SITE})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    preflight = client.options("/predict/letter", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in preflight.headers


def test_open_to_the_configured_origins_only(make_client, model_dir, letter_png):
    client = make_client(model_dir, cors_origins=[SITE], api_token="t" * 32)
    preflight = client.options("/predict/letter", headers=PREFLIGHT)
    assert preflight.status_code == 200  # answered by CORS, before the token check
    assert preflight.headers["access-control-allow-origin"] == SITE
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    response = client.post("/predict/letter", files={"file": ("a.png", letter_png)}, headers={"Origin": SITE})
    assert response.status_code == 401  # even refusals are readable by the allowed site…
    assert response.headers["access-control-allow-origin"] == SITE
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    other = client.get("/health/live", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers  # …and by no other


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({"Origin": "https://evil.example"}, "origin"),
        ({"Access-Control-Request-Method": "DELETE"}, "method"),
        ({"Access-Control-Request-Headers": "x-evil"}, "headers"),
    ],
)
def test_a_refused_preflight_gets_the_json_error_shape(make_client, model_dir, headers, refused):
    # Starlette answered these in plain text ("Disallowed CORS origin").
    client = make_client(model_dir, cors_origins=[SITE])
    response = client.options("/predict/letter", headers={**PREFLIGHT, **headers})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"code": "cors_refused", "message": f"Disallowed CORS {refused}"}}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]
    # Starlette's CORS headers stay: Vary for caches, the origin only when that was allowed.
    assert "origin" in response.headers["vary"].lower()
    assert ("access-control-allow-origin" in response.headers) == (refused != "origin")


@pytest.mark.parametrize(
    ("value", "origins"),
    [
        ("https://a.org, http://localhost:3000", ("https://a.org", "http://localhost:3000")),
        ('["https://a.org"]', ("https://a.org",)),
        ("*", ("*",)),
        ("", ()),
    ],
)
def test_origins_from_the_environment(monkeypatch, value, origins):
    monkeypatch.setenv("HWR_CORS_ORIGINS", value)
    assert Settings().cors_origins == origins


@pytest.mark.parametrize("bad", ["a.org", "https://a.org/", "ftp://a.org", "https://a.org/path"])
def test_malformed_origins_fail_at_start(monkeypatch, bad):
    monkeypatch.setenv("HWR_CORS_ORIGINS", bad)
    with pytest.raises(ValueError, match="CORS origin"):
        Settings()
