"""Several uvicorn worker processes, each accepting on its own `SO_REUSEPORT` socket.

Why not uvicorn's own `workers=`: there every worker accepts from one shared socket, so which
one takes a burst of new connections (a proxy opening its pool, 16 benchmark clients) depends
on which wakes first, and keep-alive connections stay where they landed: measured right after
start, 15 or 16 of 16 on one worker of two, half the CPU idle. With a socket per worker the
kernel spreads new connections over the workers by a hash of their addresses.

The parent only supervises: it holds the port (bound, never listening, so it takes no
connections), restarts a worker that dies, stops everything if one fails to start (every
restart would fail the same way), and passes SIGTERM / SIGINT on, so each worker stops
accepting and finishes its requests in flight (uvicorn's graceful shutdown) before the parent
exits. Linux: elsewhere `SO_REUSEPORT` does not spread connections.

Shutdown is bounded twice. uvicorn bounds only the wait for requests in flight: the lifespan's
shutdown, tasks that ignore their cancellation and `asyncio.run`'s final join of the thread pool
are not, so one stuck step would hold a worker (and the parent waiting for it) until the
orchestrator's SIGKILL, mid-answer for everyone. So a worker exits by itself
`SHUTDOWN_MARGIN_S` after its grace, and the parent kills any worker still there a little later.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from app.logs import configure_logging

log = logging.getLogger(__name__)
_spawn = multiprocessing.get_context("spawn")  # a fresh interpreter each, as uvicorn's workers

# Past its grace (`timeout_graceful_shutdown`), how long a stopping worker may take to exit before
# it ends itself, and then how long more the parent waits before it kills the worker.
SHUTDOWN_MARGIN_S = 1.0
KILL_MARGIN_S = 0.5
POLL_S = 0.25  # how often the parent looks at the clock while it waits for its workers


class BoundedServer(uvicorn.Server):
    """A uvicorn server that is sure to exit `SHUTDOWN_MARGIN_S` after its graceful shutdown's
    timeout, even if a step after that wait hangs (see the module's docstring)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:  # the first signal starts the clock
            limit_s = (self.config.timeout_graceful_shutdown or 0) + SHUTDOWN_MARGIN_S
            threading.Thread(target=_exit_after, args=(limit_s, 128 + sig), daemon=True).start()
        super().handle_exit(sig, frame)


def _exit_after(delay_s: float, status: int) -> None:
    time.sleep(delay_s)
    log.error("shutdown not done %.1f s after the signal; exiting now", delay_s)
    logging.shutdown()
    os._exit(status)  # not sys.exit: whatever hangs may hold the interpreter's own exit too


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port that other processes of this user may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def listening_socket_or_none(config: dict[str, Any]) -> socket.socket | None:
    """`reuse_port_socket` on the config's host and port, or None (logged) if it cannot bind."""
    try:
        return reuse_port_socket(config["host"], config["port"])
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config["host"], config["port"], exc)
        return None


def run_worker(config: dict[str, Any]) -> None:
    """In a worker process: serve `uvicorn.Config(**config)` on this process's own socket."""
    configure_logging(config["log_level"].upper())
    sock = listening_socket_or_none(config)
    if sock is None:
        sys.exit(STARTUP_FAILURE)
    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before uvicorn's own handler is set
        BoundedServer(uvicorn.Config(**config)).run(sockets=[sock])


class Supervisor:
    """`run()` keeps `count` processes of `run_worker(config)` going until SIGTERM or SIGINT."""

    def __init__(
        self, count: int, config: dict[str, Any], on_exit: Callable[[int], None] = lambda pid: None
    ) -> None:
        self.count = count
        self.config = config
        self.on_exit = on_exit  # called with the pid of every worker that has ended
        self.workers: list[BaseProcess] = []
        self.stopping = False
        self.kill_at = float("inf")  # monotonic time after which stopping workers are killed

    def run(self) -> int:
        """The exit status: 0 after a requested stop, STARTUP_FAILURE if a worker could not start."""
        held = listening_socket_or_none(self.config)
        if held is None:
            return STARTUP_FAILURE
        with held:
            # Port 0 asks for any free port: every worker must then bind the one the parent got.
            self.config = {**self.config, "port": held.getsockname()[1]}
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._stop)
            log.info("started parent process, %d workers", self.count)
            self.workers = [self._start() for _ in range(self.count)]
            status = self._supervise()
        log.info("stopped parent process")
        return status

    def _start(self) -> BaseProcess:
        process = _spawn.Process(target=run_worker, args=(self.config,), name="hwr-worker")
        process.start()
        return process

    def _supervise(self) -> int:
        status = 0
        while self.workers:
            # A bounded wait: a signal's handler runs, but the wait it interrupted is resumed
            # (PEP 475), so the kill time it sets is seen only on the next turn.
            wait([process.sentinel for process in self.workers], POLL_S)
            if time.monotonic() >= self.kill_at:
                for process in self.workers:
                    if process.is_alive():
                        log.error("worker %s still running past its grace; killing it", process.pid)
                        process.kill()
                self.kill_at = float("inf")  # they are gone once their sentinels say so
            for process in [p for p in self.workers if not p.is_alive()]:
                process.join()
                self.workers.remove(process)
                self.on_exit(process.pid or 0)
                if self.stopping:
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s failed to start; stopping", process.pid)
                    status = STARTUP_FAILURE
                    self._stop()
                    continue
                log.warning("worker %s died (exit code %s); starting another", process.pid, process.exitcode)
                self.workers.append(self._start())
        return status

    def _stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if not self.stopping:
            grace_s = self.config.get("timeout_graceful_shutdown") or 0
            self.kill_at = time.monotonic() + grace_s + SHUTDOWN_MARGIN_S + KILL_MARGIN_S
        self.stopping = True
        for process in self.workers:
            if process.is_alive():
                # SIGTERM: the worker's uvicorn stops accepting, finishes what it has, then exits.
                process.terminate()
