"""The real server (`python -m app`, uvicorn) in a subprocess on 127.0.0.1: JSON logs, headers,
a short version of `bench/proofs/load_test.py`, and graceful shutdown with a request in flight."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.proofs.load_test import run_load, sample_uploads
from bench.server import Server, process_tree, running_server, wait_until_ready

BOUNDARY = "hwrtestboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(png: bytes) -> bytes:
    """The form body of one file part, `file`, holding `png`."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'.encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


@pytest.fixture(scope="module")
def two_task_models(tmp_path_factory, model_writer) -> Path:
    root = tmp_path_factory.mktemp("served")
    model_writer(root, name="letters", task="letter")
    model_writer(root, name="digits", task="digit", heads=[("digit", "digit_logits", list("0123456789"))])
    return root


@pytest.fixture(scope="module")
def server(two_task_models, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("logs") / "server.log"
    with running_server(two_task_models, log_path) as server:
        yield server


def test_a_short_bounded_load_has_no_failures(server: Server):
    result = asyncio.run(run_load(server.url, sample_uploads(), duration_s=2.0, concurrency=4))
    assert result.failed == 0, result.statuses
    assert result.requests > 0 and result.p99_ms >= result.p50_ms > 0


def test_responses_carry_an_id_and_no_server_banner(server: Server, letter_png):
    request = urllib.request.Request(
        f"{server.url}/predict/letter",
        data=multipart(letter_png),
        headers={"Content-Type": CONTENT_TYPE, "X-Request-ID": "srv-1"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["X-Request-ID"] == "srv-1"
        assert response.headers.get("Server") is None


def test_the_log_is_json_lines_with_request_ids(server: Server):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and '"srv-1"' not in server.log_path.read_text():
        time.sleep(0.1)
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own lines too
    [access] = [line for line in lines if line.get("request_id") == "srv-1"]
    assert (access["logger"], access["path"], access["status"]) == ("app.access", "/predict/letter", 200)


def test_metrics_add_up_every_worker_process(server: Server, letter_png):
    """The default is 2 workers; each request lands on either, /metrics (from either) counts all."""
    assert len(process_tree(server.process.pid)) >= 3  # uvicorn's parent + 2 workers

    def served() -> float:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        series = 'hwr_requests_total{status="200",task="letter"}'
        line = next(ln for ln in text.splitlines() if ln.startswith(series))
        return float(line.split()[-1])

    before = served()
    for _ in range(8):  # a new connection each, so the kernel spreads them over the workers
        request = urllib.request.Request(f"{server.url}/predict/letter", data=multipart(letter_png))
        request.add_header("Content-Type", CONTENT_TYPE)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    assert served() - before == 8


def workers_serving(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    return next(line for line in lines if line.startswith("hwr_workers_serving "))


def test_ready_means_every_worker_serves(server: Server):
    """`running_server` waited for /health/ready: by then both workers have loaded their models."""
    assert workers_serving(server.url) == "hwr_workers_serving 2.0"


def worker_pids(server: Server) -> set[int]:
    """The parent's worker processes (not multiprocessing's resource tracker)."""
    pids = set()
    for pid in process_tree(server.process.pid)[1:]:
        with contextlib.suppress(OSError):  # it may have ended meanwhile
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.add(pid)
    return pids


def test_a_worker_that_dies_is_replaced(two_task_models, tmp_path, letter_png):
    with running_server(two_task_models, tmp_path / "server.log") as server:
        first = worker_pids(server)
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = worker_pids(server)
            if killed not in workers and len(workers) == len(first):
                break
            time.sleep(0.2)
        assert killed not in workers and len(workers) == len(first), workers
        wait_until_ready(server.url, server.process, timeout_s=60)
        # The dead worker's gauge left the sum: 2 serving, not 3.
        assert workers_serving(server.url) == "hwr_workers_serving 2.0"
        request = urllib.request.Request(f"{server.url}/predict/letter", data=multipart(letter_png))
        request.add_header("Content-Type", CONTENT_TYPE)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def test_a_port_in_use_stops_the_service_at_once(two_task_models, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "HWR_MODEL_DIR": str(two_task_models), "HWR_HOST": "127.0.0.1"}
        env["HWR_PORT"] = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "app"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3  # uvicorn's STARTUP_FAILURE: not worth restarting
    assert "cannot listen on 127.0.0.1" in result.stderr


def test_no_writable_tmp_for_the_workers_metrics_is_one_clear_error(two_task_models, tmp_path):
    """A read-only container without a /tmp tmpfs, as far as tempfile can tell."""
    code = "import tempfile, sys; tempfile.tempdir = sys.argv[1]; from app.__main__ import main; main()"
    env = {**os.environ, "HWR_MODEL_DIR": str(two_task_models), "HWR_WORKERS": "2"}
    command = [sys.executable, "-c", code, str(tmp_path / "missing")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["level"] == "ERROR" and "writable temporary directory" in line["message"]
    assert "HWR_WORKERS=1" in line["message"]


READINESS = """
import sys
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app
with TestClient(create_app(Settings(model_dir=sys.argv[1], workers=int(sys.argv[2])))) as client:
    ready, v2 = client.get("/health/ready"), client.get("/v2/health/ready")
    print(ready.status_code, v2.status_code, ready.json().get("error", {}).get("message", ""))
"""


@pytest.mark.parametrize(
    ("workers", "answer"), [(1, "200 200 "), (2, "503 503 1 of 2 worker processes have loaded their models")]
)
def test_readiness_counts_the_workers_serving(two_task_models, tmp_path, workers, answer):
    """One process in multiprocess mode (as a worker is): ready only if it is all HWR_WORKERS asks.
    A subprocess, because prometheus_client picks its mode when first imported."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    command = [sys.executable, "-c", READINESS, str(two_task_models), str(workers)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == answer.strip()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_request_in_flight_finish(two_task_models, tmp_path, letter_png, workers):
    body = multipart(letter_png)
    head = (
        "POST /predict/letter HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with running_server(two_task_models, tmp_path / "server.log", {"workers": workers}) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(head + body[:100])  # the upload has begun…
            time.sleep(1.0)  # …and the server is waiting for the rest
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.process.poll() is None, "exited with a request in flight"
            with pytest.raises(OSError):  # no longer accepting new connections
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            client.sendall(body[100:])
            response = b""
            while chunk := client.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert b'"predictions"' in response
        # uvicorn re-raises the signal it caught once it is done: a clean exit "by SIGTERM".
        assert server.process.wait(30) in (0, -signal.SIGTERM)
    events = [json.loads(line)["message"] for line in server.log_path.read_text().splitlines()]
    finished = events.index("POST /predict/letter 200")
    # (with workers, the idle one may finish first: the busy one's is the last "complete")
    last_complete = len(events) - 1 - events[::-1].index("Application shutdown complete.")
    assert events.index("Shutting down") < finished < last_complete


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_everything_within_the_grace_despite_idle_and_slow_clients(
    two_task_models, tmp_path, workers
):
    """Idle keep-alive connections, connections that never sent a byte and an upload that never
    finishes must not hold the service past HWR_SHUTDOWN_TIMEOUT_S (the orchestrator's stop
    timeout would then SIGKILL it mid-answer). The other timeouts are set long, so only the
    shutdown grace can end these connections. (This held already when written: it guards the
    connections' part; `test_workers.py` holds the bound on the rest of the shutdown.)"""
    grace_s = 3
    settings = {
        "workers": workers,
        "shutdown_timeout_s": grace_s,
        "keep_alive_timeout_s": 120,
        "header_timeout_s": 120,
        "request_timeout_s": 120,
        "body_min_bytes_per_s": 1,
    }
    head = (
        "POST /predict/letter HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    with running_server(two_task_models, tmp_path / "server.log", settings) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with contextlib.ExitStack() as clients:
            for _ in range(8):  # a new connection each, so both workers get some
                idle = clients.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
                idle.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
                assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # and now kept alive, idle
                silent = clients.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
                slow = clients.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30))
                slow.sendall(head + f"--{BOUNDARY}\r\n".encode())  # an upload that never ends
            del silent
            time.sleep(0.5)
            pids = [server.process.pid, *worker_pids(server)]
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(grace_s + 30)
            took = time.monotonic() - started
        assert server.process.poll() is not None, "still running"
        assert took <= grace_s + 2, f"stopped after {took:.1f} s, grace {grace_s} s"
        assert [pid for pid in pids if running(pid)] == [], "left behind"


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie waiting to be reaped has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"
