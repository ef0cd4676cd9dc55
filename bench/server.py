"""The real service (`python -m app`: uvicorn, JSON logs) on a free loopback port, for proofs and tests."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM (what Docker and Kubernetes send), then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server at {url} was not ready within {timeout_s} s")


@contextmanager
def serving(
    command: list[str],
    port: int,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 120,
    cwd: Path = REPO,
) -> Iterator[Server]:
    """Run `command` (a server listening on 127.0.0.1:`port`) in `cwd` until ready; SIGTERM it on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_until_ready(server.url, process, ready_timeout_s)
        yield server
    finally:
        try:
            server.stop(timeout_s=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(
    model_dir: Path,
    log_path: Path,
    settings: Mapping[str, object] | None = None,
    ready_timeout_s: float = 120,
    tree: Path = REPO,
) -> Iterator[Server]:
    """Start `python -m app` on 127.0.0.1 with `HWR_<NAME>` for each setting; stop it on exit.
    `tree`: the checkout whose `app` runs (another worktree, to compare two versions of the code)."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("HWR_")}
    env |= {f"HWR_{name.upper()}": str(value) for name, value in (settings or {}).items()}
    env |= {"HWR_HOST": "127.0.0.1", "HWR_PORT": str(port), "HWR_MODEL_DIR": str(model_dir)}
    with serving([sys.executable, "-m", "app"], port, log_path, env, ready_timeout_s, cwd=tree) as server:
        yield server


@contextmanager
def committed_models_server() -> Iterator[Server]:
    """`python -m app` with the committed models and default settings, its log in a temporary folder."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(REPO / "models", Path(tmp) / "server.log") as server,
    ):
        yield server


def post_status(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float = 60) -> str:
    """POST `body`; the answer's status, or the name of the error when none came (a dropped
    connection, a timeout), for the proofs that count answers."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn runs in-process; this also covers any worker children)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with suppress(OSError):
                todo += [int(c) for c in children.read_text().split()]
    return pids
