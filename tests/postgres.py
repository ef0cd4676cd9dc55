"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` on a temporary directory.

The server binaries come from Debian's `postgresql` package (scripts/install-system-deps.sh, run by
`make test`); without them the tests that need a server skip and say so. It listens only on a Unix
socket in its own directory, runs as the `postgres` user when the tests run as root (PostgreSQL
refuses root), and is stopped and deleted at the end of the session. `restart_server` stops a
running one as a crash would (immediate mode: no shutdown checkpoint, so the restart replays the
write-ahead log) and starts it again on the same data, for the durability tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL bin directory holding initdb and pg_ctl, if any."""
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates = sorted(installed, key=lambda p: int(p.parent.name), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


@dataclass(frozen=True)
class _Server:
    bindir: Path
    data: Path
    log: Path
    options: str
    as_user: tuple[str, ...]

    def pg_ctl(self, *args: str) -> None:
        command = [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg_ctl("-l", str(self.log), "-o", self.options, "-w", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "immediate", "-w", "stop")


# Running servers by socket directory (the URL's `host`), so a test holding only a URL can restart one.
_running: dict[str, _Server] = {}


def restart_server(url: str) -> None:
    """Crash-stop and start again the temporary server that `url` (any database on it) points at."""
    host = parse_qs(urlsplit(url).query)["host"][0]
    server = _running[host]
    server.stop()
    server.start()


@contextmanager
def temporary_server(bindir: Path) -> Iterator[str]:
    """Start a server; yield the libpq URL of its `postgres` database (trust auth, socket only)."""
    root = Path(tempfile.mkdtemp(prefix="hwr-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    try:
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        subprocess.run(
            [*as_user, *initdb, "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120
        )
        # Socket only, in its own directory: no TCP port to collide with another server. fsync off:
        # a crash-stop of the server (restart_server) still keeps what the kernel was given, which
        # is what the tests check; only a machine crash would lose it.
        options = f"-k {root} -c listen_addresses='' -c fsync=off"
        server = _Server(bindir, data, root / "server.log", options, tuple(as_user))
        server.start()
        _running[str(root)] = server
        try:
            yield f"postgresql://postgres@/postgres?host={root}"
        finally:
            _running.pop(str(root), None)
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database `name` on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("postgresql://postgres@/postgres?", f"postgresql://postgres@/{name}?", 1)
