"""The enrolments' database: writers, their samples' embeddings (images only when asked), their means.

One code path for SQLite (stdlib `sqlite3`, the embedded default: a file path) and PostgreSQL (a
`postgresql://` URL, through `psycopg`, imported only then). The SQL is the subset both speak; only
the placeholder style and the id/blob column types differ. SQLite opens a connection per operation
(a file open: cheap, and thread-safe without sharing a connection). PostgreSQL borrows one from a
pool (`psycopg_pool`, the `pool` extra of psycopg) so a request does not pay a server connection
(a new backend process) each time; each borrowed connection is checked first, so the pool recovers
by itself from a server restart. Without `psycopg_pool` installed it falls back to a connection per
operation, as SQLite does.
The caps (writers, samples per writer) are checked inside the transaction that would exceed them,
under a lock (`_lock`), so concurrent requests, in any number of processes, cannot pass them together.
Pure (no web framework).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.runtime.embedder import mean_embedding

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# The pool's ceiling per process: enrolment traffic is light, and the server's connection limit
# (max_connections, 100 by default) is shared by every replica and worker.
POOL_SIZE = 8
# How long an operation waits for a pooled connection (all in use, or the server unreachable) before
# the store reports itself unavailable: the same bound as SQLite's wait for its write lock.
POOL_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The database cannot be opened or written (path not writable, server down, driver missing)."""


class TooManyWriters(Exception):
    """Enrolling would pass `max_writers`: nothing was stored."""


class TooManySamples(Exception):
    """The samples would take a writer past `max_samples`: nothing was stored."""


@dataclass(frozen=True)
class Writer:
    id: int
    name: str
    samples: int
    model_version: str
    created: str


def _schema(id_type: str, blob: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS writers (
            id {id_type}, name TEXT NOT NULL, created TEXT NOT NULL, model_version TEXT NOT NULL,
            samples INTEGER NOT NULL, mean {blob} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS writer_samples (
            id {id_type}, writer_id INTEGER NOT NULL REFERENCES writers(id) ON DELETE CASCADE,
            embedding {blob} NOT NULL, image {blob}, created TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS writer_samples_writer ON writer_samples (writer_id)",
    ]


class WriterStore:
    """`WriterStore("data/writers.sqlite3")` or `WriterStore("postgresql://user@host/db")`.

    `max_writers`, `max_samples` (per writer): what would pass them raises TooManyWriters or
    TooManySamples (None: no cap; the service always sets both).
    """

    def __init__(
        self,
        target: str,
        *,
        max_writers: int | None = None,
        max_samples: int | None = None,
        pool_size: int = POOL_SIZE,
        pool_timeout: float = POOL_TIMEOUT_S,
    ) -> None:
        self.target = target
        self.max_writers = max_writers
        self.max_samples = max_samples
        self.postgres = target.startswith(POSTGRES_SCHEMES)
        self.mark = "%s" if self.postgres else "?"
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self._driver_errors: type[Exception] = sqlite3.Error
        self._pool: Any = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        if self.postgres:
            statements = _schema("BIGSERIAL PRIMARY KEY", "BYTEA")
        else:
            statements = _schema("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB")
        # The schema goes through a connection of its own: an unreachable server fails here at once
        # with the driver's reason, not after the pool's timeout of retrying.
        with self._connect(pooled=False) as cursor:
            for statement in statements:
                cursor.execute(statement)

    def close(self) -> None:
        """Close the pool's connections (PostgreSQL; nothing to do for SQLite). A later operation
        opens a new pool, so closing is safe at any time."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()

    def __enter__(self) -> WriterStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connect(self, pooled: bool = True) -> Iterator[Any]:
        """A cursor in one transaction: committed on success, rolled back on error, then the
        connection closed or given back to the pool."""
        try:
            connection, pool = self._checkout(pooled)
        except Exception as exc:  # the driver's own errors differ; the cause is kept and logged
            raise StoreUnavailable(f"cannot open the writer database: {exc}") from exc
        try:
            cursor = connection.cursor()
            yield cursor
            connection.commit()
        except self._driver_errors as exc:  # locked past the timeout, disk full, server gone, …
            self._rollback(connection)
            raise StoreUnavailable(f"the writer database failed: {exc}") from exc
        except BaseException:
            self._rollback(connection)
            raise
        finally:
            if pool is not None:
                pool.putconn(connection)  # a broken connection is discarded, not reused
            else:
                connection.close()

    def _rollback(self, connection: Any) -> None:
        try:
            connection.rollback()
        except self._driver_errors:  # the server went away: nothing left to roll back
            log.debug("rollback on a broken writer database connection", exc_info=True)

    def _checkout(self, pooled: bool) -> tuple[Any, Any]:
        """(connection, the pool it came from or None)."""
        if not self.postgres:
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.target, timeout=10)
            connection.execute("PRAGMA foreign_keys = ON")
            return connection, None
        import psycopg  # optional: only PostgreSQL deployments install it

        self._driver_errors = psycopg.Error
        pool = self._postgres_pool() if pooled else None
        if pool is None:
            return psycopg.connect(self.target), None
        return pool.getconn(timeout=self.pool_timeout), pool

    def _postgres_pool(self) -> Any:
        """This process's pool, opened on first use (None without psycopg_pool). A pool inherited
        through fork would share the parent's sockets and lack its worker threads, so a process
        that did not open the pool opens its own."""
        pool_class = _pool_class()
        if pool_class is None:
            return None
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = pool_class(
                    self.target,
                    min_size=1,
                    max_size=max(1, self.pool_size),
                    open=False,
                    # A connection the server dropped (restart, idle timeout) is replaced before use.
                    check=pool_class.check_connection,
                    timeout=self.pool_timeout,
                    name="writer-store",
                )
                self._pool.open(wait=False)
                self._pool_pid = os.getpid()
            return self._pool

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self.mark)

    def _lock(self, cursor: Any, writer_id: int | None = None) -> None:
        """The transaction's first statement when it counts and then inserts: without a lock two
        transactions both see room for one more and both insert (READ COMMITTED, or SQLite's
        deferred transactions). SQLite: its one write lock, taken now rather than at the first
        insert (others wait up to the connect timeout). PostgreSQL: `writer_id` None locks the
        writers table against other enrolments and writes (plain reads go on); an id locks that
        writer's row, so adds to one writer queue and adds to others do not."""
        if not self.postgres:
            cursor.execute("BEGIN IMMEDIATE")
        elif writer_id is None:
            cursor.execute("LOCK TABLE writers IN SHARE ROW EXCLUSIVE MODE")
        else:
            cursor.execute("SELECT id FROM writers WHERE id = %s FOR UPDATE", (writer_id,))

    def enrol(
        self, name: str, embeddings: np.ndarray, model_version: str, images: list[bytes] | None
    ) -> Writer:
        self._check_samples(0, len(embeddings))
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as cursor:
            self._lock(cursor)
            if self.max_writers is not None:
                cursor.execute("SELECT COUNT(*) FROM writers")
                if int(cursor.fetchone()[0]) >= self.max_writers:
                    raise TooManyWriters(
                        f"the writer store is full: it holds its maximum of {self.max_writers} writers"
                        " (HWR_WRITER_MAX_WRITERS); delete one to enrol another"
                    )
            cursor.execute(
                self._sql(
                    "INSERT INTO writers (name, created, model_version, samples, mean)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id"
                ),
                (name, created, model_version, 0, _blob(mean_embedding(embeddings))),
            )
            writer_id = int(cursor.fetchone()[0])
            self._add(cursor, writer_id, embeddings, images, created)
        return Writer(writer_id, name, len(embeddings), model_version, created)

    def add_samples(
        self, writer_id: int, embeddings: np.ndarray, images: list[bytes] | None
    ) -> Writer | None:
        """None when no such writer."""
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as cursor:
            self._lock(cursor, writer_id)
            writer = self._get(cursor, writer_id)
            if writer is None:
                return None
            # Read under the lock: no other add to this writer can commit between count and insert.
            self._check_samples(writer.samples, len(embeddings))
            self._add(cursor, writer_id, embeddings, images, created)
        return self.get(writer_id)

    def _check_samples(self, stored: int, adding: int) -> None:
        if self.max_samples is not None and stored + adding > self.max_samples:
            raise TooManySamples(
                f"at most {self.max_samples} samples per writer: the writer has {stored},"
                f" the request adds {adding}"
            )

    def _add(
        self, cursor: Any, writer_id: int, embeddings: np.ndarray, images: list[bytes] | None, created: str
    ) -> None:
        rows = [
            (writer_id, _blob(e), images[i] if images else None, created) for i, e in enumerate(embeddings)
        ]
        cursor.executemany(
            self._sql(
                "INSERT INTO writer_samples (writer_id, embedding, image, created) VALUES (?, ?, ?, ?)"
            ),
            rows,
        )
        # The mean is recomputed from every sample, so it never drifts from what is stored.
        cursor.execute(self._sql("SELECT embedding FROM writer_samples WHERE writer_id = ?"), (writer_id,))
        stored = np.stack([_vector(row[0]) for row in cursor.fetchall()])
        cursor.execute(
            self._sql("UPDATE writers SET samples = ?, mean = ? WHERE id = ?"),
            (len(stored), _blob(mean_embedding(stored)), writer_id),
        )

    def get(self, writer_id: int) -> Writer | None:
        with self._connect() as cursor:
            return self._get(cursor, writer_id)

    def _get(self, cursor: Any, writer_id: int) -> Writer | None:
        cursor.execute(
            self._sql("SELECT id, name, samples, model_version, created FROM writers WHERE id = ?"),
            (writer_id,),
        )
        row = cursor.fetchone()
        return Writer(*row) if row else None

    def writers(self, after: int = 0, limit: int | None = None) -> list[Writer]:
        """By id, those after the id `after` (a cursor: stable while writers come and go, and an
        index lookup, unlike an offset), at most `limit` of them."""
        statement = "SELECT id, name, samples, model_version, created FROM writers WHERE id > ? ORDER BY id"
        params: tuple[int, ...] = (after,)
        if limit is not None:
            statement, params = f"{statement} LIMIT ?", (after, limit)
        with self._connect() as cursor:
            cursor.execute(self._sql(statement), params)
            return [Writer(*row) for row in cursor.fetchall()]

    def count(self) -> int:
        with self._connect() as cursor:
            cursor.execute("SELECT COUNT(*) FROM writers")
            return int(cursor.fetchone()[0])

    def delete(self, writer_id: int) -> bool:
        with self._connect() as cursor:
            cursor.execute(self._sql("DELETE FROM writer_samples WHERE writer_id = ?"), (writer_id,))
            cursor.execute(self._sql("DELETE FROM writers WHERE id = ?"), (writer_id,))
            return bool(cursor.rowcount)

    def means(self, model_version: str) -> tuple[list[int], np.ndarray]:
        """Every writer enrolled with this model version and their means (K×dim); embeddings of
        another model live in another space and are not comparable."""
        with self._connect() as cursor:
            cursor.execute(
                self._sql("SELECT id, mean FROM writers WHERE model_version = ? ORDER BY id"),
                (model_version,),
            )
            rows = cursor.fetchall()
        if not rows:
            return [], np.zeros((0, 0), np.float32)
        return [int(r[0]) for r in rows], np.stack([_vector(r[1]) for r in rows])

    def names(self, writer_ids: list[int]) -> dict[int, str]:
        with self._connect() as cursor:
            cursor.execute("SELECT id, name FROM writers")
            return {int(i): name for i, name in cursor.fetchall() if int(i) in set(writer_ids)}


def _pool_class() -> Any:
    """psycopg_pool's ConnectionPool, or None where it is not installed (a connection per operation)."""
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return None
    return ConnectionPool


def _blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, "<f4").tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(bytes(blob), "<f4")
