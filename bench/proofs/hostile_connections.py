"""The connection attacks of a hostile-client audit, against `python -m app` with the committed
models and default settings (2 workers): huge headers, idle connections, bodies trickled in.

    .venv/bin/python -m bench.proofs.hostile_connections [--header-mb 300] [--idle 1400] [--slow 60]

Prints, per attack, what the server answered and what it cost it (docs/reliability.md). Exits 1
unless every huge header got 431, every idle connection was closed with the service still live,
and every prediction sent among the slow bodies got 200.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.proofs.load_test import sample_uploads
from bench.server import REPO, Server, process_tree, running_server

BOUNDARY = "hwrprobe"
ATTACKS = ("huge headers", "idle connections", "slow bodies")


def rss_mb(server: Server) -> float:
    """Resident memory of the server's processes together."""
    total = 0
    for pid in process_tree(server.process.pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def status_of(sock: socket.socket) -> str:
    try:
        head = sock.recv(4096)
    except OSError as exc:
        return type(exc).__name__
    return head.split(b" ", 2)[1].decode() if head else "closed"


def huge_headers(server: Server, header_mb: int, clients: int = 4) -> bool:
    """`clients` connections at once, each sending one header of `header_mb` MB. True if each got 431."""
    before = rss_mb(server)
    results: list[tuple[int, str]] = []

    def send_one() -> None:
        sent = 0
        with connect(server) as sock:
            try:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: probe\r\nX-Big: ")
                chunk = b"a" * (1 << 20)
                for _ in range(header_mb):
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            results.append((sent, status_of(sock)))

    threads = [threading.Thread(target=send_one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        f"huge headers: {clients} x {header_mb} MB → statuses {sorted(s for _, s in results)}, "
        f"{max(sent for sent, _ in results) / 1e6:.0f} MB sent at most (the rest of a refused request is "
        f"read and dropped for 2 s); "
        f"server RSS {before:.0f} → {rss_mb(server):.0f} MB"
    )
    return all(status == "431" for _, status in results)


def idle_connections(server: Server, count: int, keep_alive_s: float) -> bool:
    """True if the server closed them all and still answers its liveness probe."""
    socks = [connect(server) for _ in range(count)]
    time.sleep(keep_alive_s + 1.5)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    with urllib.request.urlopen(f"{server.url}/health/live", timeout=5) as response:
        health = response.status
    waited = keep_alive_s + 1.5
    print(f"idle connections: {count} opened, {closed} closed by the server after {waited:g} s")
    print(f"  /health/live then: {health}")
    return closed == count and health == 200


def predict(server: Server, body: bytes) -> str:
    request = urllib.request.Request(
        f"{server.url}/predict/letter",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)


def slow_bodies(server: Server, count: int, seconds: float) -> bool:
    """`count` clients sending a body at 1 byte / 2 s for `seconds`, reconnecting when answered,
    while one client asks for a prediction every 0.25 s. True if every prediction got 200."""
    upload = next(u for u in sample_uploads() if u.task == "letter")
    part = f'Content-Disposition: form-data; name="file"; filename="{upload.name}"'
    body = f"--{BOUNDARY}\r\n{part}\r\n\r\n".encode() + upload.data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST /predict/letter HTTP/1.1\r\nHost: probe\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()
    stop = time.monotonic() + seconds
    slow_answers: dict[str, int] = {}
    lock = threading.Lock()

    def trickle() -> None:
        while time.monotonic() < stop:
            with connect(server) as sock:
                sock.sendall(head)
                sock.settimeout(2)
                status = None
                while status is None and time.monotonic() < stop:
                    try:
                        sock.sendall(b"-")
                        data = sock.recv(4096)
                        status = data.split(b" ", 2)[1].decode() if data else "closed"
                    except TimeoutError:
                        continue
                    except OSError as exc:
                        status = type(exc).__name__
                if status is not None:
                    with lock:
                        slow_answers[status] = slow_answers.get(status, 0) + 1

    threads = [threading.Thread(target=trickle) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(1)  # let them all take their slots first
    answers: dict[str, int] = {}
    while time.monotonic() < stop:
        status = predict(server, body)
        answers[status] = answers.get(status, 0) + 1
        time.sleep(0.25)
    for thread in threads:
        thread.join()
    print(f"slow bodies: {count} clients at 1 byte / 2 s for {seconds:g} s (reconnecting when answered)")
    print(f"  their answers: {slow_answers}; predictions sent meanwhile: {answers}")
    return set(answers) == {"200"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--header-mb", type=int, default=300)
    parser.add_argument("--idle", type=int, default=1400)
    parser.add_argument("--slow", type=int, default=60)
    parser.add_argument("--slow-seconds", type=float, default=20)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.idle + 256)), hard))
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(REPO / "models", Path(tmp) / "server.log") as server,
    ):
        held = [
            huge_headers(server, args.header_mb),
            idle_connections(server, args.idle, keep_alive_s=5),
            slow_bodies(server, args.slow, args.slow_seconds),
        ]
    if not all(held):
        print("FAIL: attacks not held:", [name for name, ok in zip(ATTACKS, held, strict=True) if not ok])
    return 0 if all(held) else 1


if __name__ == "__main__":
    sys.exit(main())
