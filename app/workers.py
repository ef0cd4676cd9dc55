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
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
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
        uvicorn.Server(uvicorn.Config(**config)).run(sockets=[sock])


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
            wait([process.sentinel for process in self.workers])
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
        self.stopping = True
        for process in self.workers:
            if process.is_alive():
                # SIGTERM: the worker's uvicorn stops accepting, finishes what it has, then exits.
                process.terminate()
