"""Request ids on every response and log line; structured JSON logs that never carry image bytes."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback

import pytest
from fastapi.testclient import TestClient
from PIL import PngImagePlugin

from app.config import Settings
from app.logs import MAX_TRACEBACK_CHARS, JsonFormatter, bounded_traceback
from app.main import create_app

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_every_response_carries_a_new_request_id(client, letter_png):
    responses = [
        client.post("/predict/letter", files={"file": ("a.png", letter_png)}),
        client.post("/predict/letter", files={"file": ("a.png", b"not an image")}),
        client.get("/health/live"),
        client.get("/no/such/path"),
    ]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(HEX_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)


def test_refusals_from_the_middleware_carry_it_too(make_client, model_dir):
    client = make_client(model_dir, max_upload_bytes=10)
    response = client.post("/predict/letter", files={"file": ("a.png", b"x" * 100_000)})
    assert response.status_code == 413 and HEX_ID.fullmatch(response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123.def_4:5", True), ("x" * 64, True), ("x" * 65, False), ("a b", False), ('a"}', False)],
)
def test_a_plain_client_id_is_echoed_anything_else_replaced(client, sent, echoed):
    returned = client.get("/health/live", headers={"X-Request-ID": sent}).headers["x-request-id"]
    assert (returned == sent) == echoed
    if not echoed:
        assert HEX_ID.fullmatch(returned)


def test_the_500_handler_keeps_the_id_and_hides_the_trace(crashing_client):
    response = crashing_client.get("/boom", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "trace-me"
    assert "secret" not in response.text and "Traceback" not in response.text


def _json_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in caplog.records]


def test_access_log_is_json_with_the_request_id_and_no_image_bytes(client, images, caplog):
    marker = b"SECRET-PIXELS-0123456789"
    # A real PNG with the marker in a text chunk, and a non-image that is nothing but the marker.
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", marker.decode())
    png = images.encode(images.draw_letter("A"), "PNG", pnginfo=info)
    with caplog.at_level(logging.DEBUG):
        ok = client.post("/predict/letter", files={"file": ("a.png", png)}, headers={"X-Request-ID": "r1"})
        bad = client.post("/predict/letter", files={"file": ("a.png", marker * 50)})
    assert (ok.status_code, bad.status_code) == (200, 415)
    lines = _json_lines(caplog)
    access = [line for line in lines if line["logger"] == "app.access"]
    assert [(a["request_id"], a["status"]) for a in access] == [
        ("r1", 200),
        (bad.headers["x-request-id"], 415),
    ]
    assert {"method", "path", "duration_ms", "client", "ts", "level", "message"} <= set(access[0])
    everything = "\n".join(json.dumps(line) for line in lines) + caplog.text
    assert marker.decode() not in everything


def test_exceptions_are_logged_with_their_trace_and_the_request_id(model_dir, caplog):
    app = create_app(Settings(model_dir=model_dir))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        client.get("/boom", headers={"X-Request-ID": "trace-me"})
    [error] = [line for line in _json_lines(caplog) if line["logger"] == "app.main"]
    assert error["level"] == "ERROR" and error["request_id"] == "trace-me"
    assert "Traceback" in error["exception"] and "secret internal detail" in error["exception"]


def test_formatter_writes_one_json_object_with_extra_fields():
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.status = 418
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "hello world" and entry["status"] == 418 and entry["level"] == "WARNING"
    assert "request_id" not in entry  # outside a request


def test_a_500s_logged_traceback_is_bounded_and_keeps_where_it_failed(model_dir, caplog):
    # Regression: each 500 wrote 12.8 KB of log, and a long message or a deep stack had no bound.
    app = create_app(Settings(model_dir=model_dir))

    def deep(depth: int) -> None:
        if depth:
            deep(depth - 1)
        try:
            raise ValueError("the cause " + "a" * 100_000)
        except ValueError as exc:
            raise RuntimeError("innermost detail " + "b" * 100_000) from exc

    @app.get("/boom")
    def boom() -> None:
        deep(40)

    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom", headers={"X-Request-ID": "trace-me"}).status_code == 500
    [record] = [r for r in caplog.records if r.name == "app.main"]
    line = JsonFormatter().format(record)
    assert len(line) < MAX_TRACEBACK_CHARS + 1_000
    entry = json.loads(line)
    assert entry["request_id"] == "trace-me" and len(entry["exception"]) <= MAX_TRACEBACK_CHARS
    trace = entry["exception"]
    assert "outer frames left out" in trace and "characters left out" in trace
    assert ", in deep\n" in trace and "ValueError: the cause aaa" in trace
    assert trace.splitlines()[-1].startswith("RuntimeError: innermost detail bbb")


def test_a_short_traceback_is_logged_whole():
    try:
        raise KeyError("short")
    except KeyError as exc:
        info = sys.exc_info()
        expected = "".join(traceback.format_exception(exc)).rstrip("\n")
    assert bounded_traceback(info) == expected


def test_a_long_chain_of_exceptions_keeps_its_end_within_the_bound():
    def chain(depth: int) -> None:
        try:
            if depth:
                chain(depth - 1)
            raise KeyError("the first")
        except Exception as exc:
            raise ValueError(f"level {depth} " + "c" * 2_000) from exc

    try:
        chain(30)
    except ValueError:
        trace = bounded_traceback(sys.exc_info())
    assert len(trace) <= MAX_TRACEBACK_CHARS
    assert trace.startswith("[") and "characters of the traceback's start left out" in trace.splitlines()[0]
    assert trace.splitlines()[-1].startswith("ValueError: level 30 ccc")
