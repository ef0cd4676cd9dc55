"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` on a temporary directory.

The server binaries come from Debian's `postgresql` package (scripts/install-system-deps.sh, run by
`make test`); without them the tests that need a server skip and say so. It listens only on a Unix
socket in its own directory, runs as the `postgres` user when the tests run as root (PostgreSQL
refuses root), and is stopped and deleted at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL bin directory holding initdb and pg_ctl, if any."""
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates = sorted(installed, key=lambda p: int(p.parent.name), reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


@contextmanager
def temporary_server(bindir: Path) -> Iterator[str]:
    """Start a server; yield the libpq URL of its `postgres` database (trust auth, socket only)."""
    root = Path(tempfile.mkdtemp(prefix="hwr-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    try:
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        run(*initdb, "-E", "UTF8", "--no-sync")
        # Socket only, in its own directory: no TCP port to collide with another server.
        options = f"-k {root} -c listen_addresses='' -c fsync=off"
        log = str(root / "server.log")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", log, "-o", options, "-w", "start")
        try:
            yield f"postgresql://postgres@/postgres?host={root}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database `name` on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("postgresql://postgres@/postgres?", f"postgresql://postgres@/{name}?", 1)
