"""Shutdown is bounded even when a step after uvicorn's own bounded wait hangs: the supervisor
(`app/runtime/workers.py`) with two workers, and one `BoundedServer` as `python -m app` runs it with
HWR_WORKERS=1, each serving an app whose lifespan's shutdown never ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.server import free_port

ROOT = Path(__file__).resolve().parents[3]
GRACE_S = 1

SERVE = """
import sys
import uvicorn
from app.runtime.workers import BoundedServer, Supervisor

config = dict(
    app="tests.app.stuck_shutdown_app:stuck_app", factory=True, host="127.0.0.1",
    port=int(sys.argv[2]), log_level="info", log_config=None, timeout_graceful_shutdown=int(sys.argv[3]),
)
if sys.argv[1] == "supervisor":
    sys.exit(Supervisor(2, config).run())
BoundedServer(uvicorn.Config(**config)).run()
"""


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "exited while starting"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("not serving")


@pytest.mark.parametrize("mode", ["supervisor", "single"])
def test_sigterm_ends_the_service_soon_after_its_grace_even_if_shutdown_hangs(mode):
    port = free_port()
    command = [sys.executable, "-c", SERVE, mode, str(port), str(GRACE_S)]
    # A session of its own, so that a failure leaves no stuck worker behind (killpg below).
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(GRACE_S + 20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GRACE_S + 20} s after SIGTERM (grace {GRACE_S} s)")
        took = time.monotonic() - started
        assert took <= GRACE_S + 2, f"stopped after {took:.1f} s, grace {GRACE_S} s"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
