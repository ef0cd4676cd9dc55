"""`GET /`: the web page is served, self-contained and small, and open whatever the API token.
(What it does in a browser: tests/browser/.)"""

from __future__ import annotations

import re

from app.api.ui import STATIC_DIR

TOKEN = "s3cret-token-for-tests-0123456789"


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(ref).status_code == 200, ref
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../main.py").status_code == 404


def test_nothing_comes_from_elsewhere_and_the_page_is_small():
    files = list(STATIC_DIR.iterdir())
    assert {f.name for f in files} == {"index.html", "app.js", "style.css"}
    assert sum(f.stat().st_size for f in files) < 30_000
    for f in files:
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", f.read_text(encoding="utf-8")), f.name


def test_the_page_is_not_an_api_endpoint(client):
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_the_page_stays_open_when_predict_needs_a_token(make_client, model_dir):
    client = make_client(model_dir, api_token=TOKEN)
    assert client.get("/").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/models").status_code == 200  # the page's task list
    assert client.post("/predict/letter", files={"file": ("a.png", b"x")}).status_code == 401
