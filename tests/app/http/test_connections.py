"""Hostile connections against the real server (`python -m app`, uvicorn): oversized and stalled
request heads, idle connections, and bodies trickled in to hold admission slots."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

import pytest

from bench.server import Server, running_server

BOUNDARY = "hwrconnboundary"
LIMIT_S = 5  # what a test waits for an answer that the settings below give within ~1 s


@pytest.fixture(scope="module")
def letters_dir(tmp_path_factory, model_writer) -> Path:
    root = tmp_path_factory.mktemp("served")
    model_writer(root, name="letters", task="letter")
    return root


@pytest.fixture(scope="module")
def server(letters_dir, tmp_path_factory):
    """Two workers (the default), so the settings must reach the spawned processes."""
    log_path = tmp_path_factory.mktemp("logs") / "server.log"
    settings = {"header_timeout_s": 1, "keep_alive_timeout_s": 1}
    with running_server(letters_dir, log_path, settings) as server:
        yield server


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=LIMIT_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def headers_of(response: bytes) -> dict[str, str]:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1")
    return {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
    }


def multipart(png: bytes, padding: int = 0) -> bytes:
    """A form with a text field of `padding` bytes, then the file part `file` holding `png`."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'.encode()
        + b"n" * padding
        + f"\r\n--{BOUNDARY}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def predict_request(body: bytes, extra_headers: str = "") -> bytes:
    return (
        f"POST /predict/letter HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra_headers}"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_headers_over_the_limit_get_431_and_the_connection_closes(server: Server):
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n")
        response = read_until_closed(sock)
    status, body = status_and_body(response)
    assert status == 431
    assert json.loads(body)["error"]["code"] == "headers_too_large"
    assert headers_of(response)["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",  # no method, path or version
        b"GET /health/live HTTP/1.1\r\nHost: test\r\nX-Bad: a\x01b\r\n\r\n",  # a control byte
        b"GET /health/live HTTP/1.1\r\nHost: test\r\nBad Name: a\r\n\r\n",  # a space in a name
        # A bad chunk size: the request is already under way when the parser fails.
        b"POST /health/live HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    ],
    ids=["request-line", "header-value", "header-name", "chunk-size"],
)
def test_what_the_parser_rejects_gets_the_json_error_shape(server: Server, request_bytes: bytes):
    # uvicorn answered these itself in plain text, with no request id and no nosniff.
    with connect(server) as sock:
        sock.sendall(request_bytes)
        response = read_until_closed(sock)
    status, body = status_and_body(response)
    headers = headers_of(response)
    assert status == 400
    assert json.loads(body) == {"error": {"code": "bad_request", "message": "invalid HTTP request"}}
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert len(headers["x-request-id"]) == 32


def test_large_heads_and_bodies_within_the_limit_are_served(server: Server, letter_png):
    # A 32 KiB header, and a 300 kB body whose first bytes arrive in the same read as the head.
    body = multipart(letter_png, padding=300_000)
    with connect(server) as sock:
        sock.sendall(predict_request(body, f"X-Big: {'a' * 32_000}\r\n"))
        status, answer = status_and_body(read_until_closed(sock))
    assert status == 200, answer
    assert json.loads(answer)["predictions"]


def test_a_head_trickled_in_gets_408_at_the_header_timeout(server: Server):
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
        # A byte now and then must not keep the head alive (uvicorn's only timer stopped at the
        # first byte): send one every 0.2 s until the server answers.
        while not select.select([sock], [], [], 0.2)[0] and time.monotonic() - started < LIMIT_S:
            sock.sendall(b"X")
        status, body = status_and_body(read_until_closed(sock))
    assert time.monotonic() - started < LIMIT_S
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"


def test_a_stalled_head_gets_408(server: Server):
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
        status, body = status_and_body(read_until_closed(sock))
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed(server: Server):
    started = time.monotonic()
    with connect(server) as sock:
        assert read_until_closed(sock) == b""
    assert time.monotonic() - started < LIMIT_S


def test_a_trickled_body_takes_no_admission_slot_and_gets_408(letters_dir, tmp_path, letter_png):
    # One worker with 2 admission slots, and 2 clients sending a byte every 0.25 s (before:
    # they took both slots on arrival, and every prediction got 503 until the 30 s deadline).
    settings = {"workers": 1, "max_queue": 1, "body_min_bytes_per_s": 1000, "body_rate_grace_s": 0.5}
    with running_server(letters_dir, tmp_path / "server.log", settings) as server:
        body = multipart(letter_png)
        slow = [connect(server) for _ in range(2)]
        for sock in slow:
            sock.sendall(predict_request(body)[: -len(body)])  # the head; the body comes slowly
        # While they trickle, a prediction sent at the usual speed is served: they hold no slot.
        with connect(server) as sock:
            sock.sendall(predict_request(body))
            status, answer = status_and_body(read_until_closed(sock))
        assert status == 200, answer
        started = time.monotonic()
        answered: dict[int, bytes] = {}
        while len(answered) < len(slow) and time.monotonic() - started < LIMIT_S:
            for i, sock in enumerate(slow):
                if i not in answered:
                    try:
                        sock.sendall(b"-")
                    except (BrokenPipeError, ConnectionResetError):
                        answered[i] = b""
            time.sleep(0.25)
            for i, sock in enumerate(slow):
                sock.setblocking(False)
                try:
                    answered.setdefault(i, sock.recv(65536))
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
        for sock in slow:
            sock.close()
        assert len(answered) == 2, "the slow bodies were still being read"
        for response in answered.values():
            status, answer = status_and_body(response)
            assert status == 408 and json.loads(answer)["error"]["code"] == "request_timeout"
        # And after them too.
        with connect(server) as sock:
            sock.sendall(predict_request(body))
            status, answer = status_and_body(read_until_closed(sock))
        assert status == 200, answer
