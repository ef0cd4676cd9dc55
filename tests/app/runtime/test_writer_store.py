"""The enrolments' database and the matching, without HTTP: every store test runs on SQLite and on a
real PostgreSQL server (tests/postgres.py; skipped, with the reason, where none is installed), the
PostgreSQL ones through the store's connection pool where psycopg_pool is installed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.runtime import writer_store as store_module
from app.runtime.embedder import l2_normalise, mean_embedding
from app.runtime.writer_store import StoreUnavailable, TooManySamples, TooManyWriters, WriterStore
from app.service.writer_matching import rank_writers
from tests.postgres import restart_server

Opener = Callable[..., WriterStore]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store lives: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "w.db")
    return request.getfixturevalue("postgres_db")


@pytest.fixture
def open_store() -> Iterator[Opener]:
    """`open_store(target, **caps)`: a WriterStore closed at the end of the test, so no pool
    outlives its test holding server connections."""
    opened: list[WriterStore] = []

    def open_(target: str, **kwargs: Any) -> WriterStore:
        opened.append(WriterStore(target, **kwargs))
        return opened[-1]

    yield open_
    for store in opened:
        store.close()


def unit(*values: float) -> np.ndarray:
    return l2_normalise(np.asarray(values, np.float32))


def test_the_mean_is_kept_over_every_sample(target: str, open_store: Opener):
    store = open_store(target)
    writer = store.enrol("A", np.stack([unit(1, 0, 0)]), "v1", None)
    store.add_samples(writer.id, np.stack([unit(0, 1, 0)]), None)
    ids, means = store.means("v1")
    assert ids == [writer.id] and store.get(writer.id).samples == 2  # type: ignore[union-attr]
    np.testing.assert_allclose(means[0], unit(1, 1, 0), atol=1e-6)


def test_writers_of_another_model_version_are_not_compared(target: str, open_store: Opener):
    store = open_store(target)
    old = store.enrol("old", np.stack([unit(1, 0)]), "v1", None)
    new = store.enrol("new", np.stack([unit(0, 1)]), "v2", None)
    assert store.means("v2")[0] == [new.id] and store.means("v1")[0] == [old.id]
    assert store.means("v3")[0] == []


def test_delete_removes_the_samples_too(target: str, open_store: Opener):
    store = open_store(target)
    writer = store.enrol("A", np.stack([unit(1, 0), unit(0, 1)]), "v1", [b"x", b"y"])
    assert store.delete(writer.id) and not store.delete(writer.id)
    with store._connect() as cursor:
        cursor.execute("SELECT COUNT(*) FROM writer_samples")
        assert cursor.fetchone()[0] == 0


def test_postgres_urls_use_the_postgres_dialect():
    store = WriterStore.__new__(WriterStore)
    store.postgres, store.mark = True, "%s"
    assert store._sql("SELECT 1 FROM writers WHERE id = ?") == "SELECT 1 FROM writers WHERE id = %s"


def test_writers_list_in_enrolment_order_and_names_resolve(target: str, open_store: Opener):
    store = open_store(target)
    names = ["Chloé", "Ada", "রবীন্দ্রনাথ"]  # UTF-8 names survive both databases
    ids = [store.enrol(name, np.stack([unit(1, i)]), "v1", None).id for i, name in enumerate(names)]
    assert [w.name for w in store.writers()] == names and ids == sorted(ids)
    assert store.names(ids[1:]) == {ids[1]: "Ada", ids[2]: "রবীন্দ্রনাথ"}
    assert store.get(ids[0]).model_version == "v1" and store.get(10**9) is None  # type: ignore[union-attr]
    assert store.add_samples(10**9, np.stack([unit(1, 0)]), None) is None


def test_stored_images_come_back_byte_for_byte(target: str, open_store: Opener):
    store = open_store(target)
    image = bytes(range(256)) * 4  # every byte value: BLOB and BYTEA both keep them
    writer = store.enrol("A", np.stack([unit(1, 0)]), "v1", [image])
    with store._connect() as cursor:
        cursor.execute(store._sql("SELECT image FROM writer_samples WHERE writer_id = ?"), (writer.id,))
        assert bytes(cursor.fetchone()[0]) == image


def test_an_unreachable_postgres_server_is_store_unavailable(tmp_path: Path):
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailable, match="cannot open the writer database"):
        WriterStore(f"postgresql://postgres@/postgres?host={tmp_path}&port=1&connect_timeout=2")


def test_rank_writers_best_first():
    means = np.stack([unit(1, 0), unit(0, 1), unit(1, 1)])
    matches = rank_writers(unit(1, 0.1), [10, 20, 30], means, k=2)
    assert [m.writer_id for m in matches] == [10, 30] and matches[0].score > matches[1].score
    assert rank_writers(unit(1, 0), [], np.zeros((0, 0), np.float32), k=3) == []
    np.testing.assert_allclose(mean_embedding(np.stack([unit(1, 0), unit(0, 1)])), unit(1, 1))


def test_a_database_failure_is_store_unavailable(target: str, open_store: Opener):
    store = open_store(target)
    with store._connect() as cursor:
        cursor.execute("DROP TABLE writer_samples")
    with pytest.raises(StoreUnavailable, match="writer database failed"):
        store.delete(1)


def all_at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released together; each one's result or the exception it raised."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(timeout=30)
        try:
            results[i] = calls[i]()
        except Exception as exc:  # kept to assert on: the refusals are the point
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_enrolling_past_max_writers_is_refused_and_stores_nothing(target: str, open_store: Opener):
    store = open_store(target, max_writers=2)
    for name in ("A", "B"):
        store.enrol(name, np.stack([unit(1, 0)]), "v1", [b"x"])
    with pytest.raises(TooManyWriters, match="maximum of 2 writers"):
        store.enrol("C", np.stack([unit(0, 1)]), "v1", [b"y"])
    assert [w.name for w in store.writers()] == ["A", "B"]
    with store._connect() as cursor:
        cursor.execute("SELECT COUNT(*) FROM writer_samples")
        assert cursor.fetchone()[0] == 2
    store.delete(store.writers()[0].id)  # room again
    assert store.enrol("C", np.stack([unit(0, 1)]), "v1", None).name == "C"


def test_concurrent_enrolments_cannot_pass_max_writers(target: str, open_store: Opener):
    # The count and the insert are one locked transaction, so eight enrolments released
    # together (each on its own connection) leave exactly the cap, and the rest are refused.
    store = open_store(target, max_writers=3)
    results = all_at_once(
        [lambda i=i: store.enrol(f"W{i}", np.stack([unit(1, i)]), "v1", None) for i in range(8)]
    )
    assert sum(isinstance(r, TooManyWriters) for r in results) == 5, results
    assert len(store.writers()) == 3


def test_concurrent_adds_cannot_pass_max_samples(target: str, open_store: Opener):
    # Adding concurrently once took a writer past its cap. The writer is locked, counted and added
    # to in one transaction: 8 adds of 3 released together onto a writer holding 1, with a cap of
    # 10, leave exactly 10 (3 adds pass, 5 are refused).
    store = open_store(target, max_samples=10)
    writer = store.enrol("A", np.stack([unit(1, 0)]), "v1", None)
    three = np.stack([unit(0, 1)] * 3)
    results = all_at_once([lambda: store.add_samples(writer.id, three, None) for _ in range(8)])
    assert sum(isinstance(r, TooManySamples) for r in results) == 5, results
    assert store.get(writer.id).samples == 10  # type: ignore[union-attr]
    with store._connect() as cursor:
        cursor.execute("SELECT COUNT(*) FROM writer_samples")
        assert cursor.fetchone()[0] == 10


def test_an_enrolment_larger_than_max_samples_is_refused(target: str, open_store: Opener):
    store = open_store(target, max_samples=2)
    with pytest.raises(TooManySamples, match="at most 2 samples per writer"):
        store.enrol("A", np.stack([unit(1, 0)] * 3), "v1", None)
    assert store.writers() == []


def test_writers_page_by_id_from_a_cursor(target: str, open_store: Opener):
    store = open_store(target)
    ids = [store.enrol(f"W{i}", np.stack([unit(1, i)]), "v1", None).id for i in range(5)]
    assert [w.id for w in store.writers(limit=2)] == ids[:2]
    assert [w.id for w in store.writers(after=ids[1], limit=2)] == ids[2:4]
    assert [w.id for w in store.writers(after=ids[3], limit=2)] == ids[4:]
    assert [w.id for w in store.writers(after=ids[0])] == ids[1:] and store.count() == 5


def enrol_two(store: WriterStore) -> tuple[int, int]:
    """Two writers, one with a stored image and an added sample: every table and column written."""
    a = store.enrol("Ada", np.stack([unit(1, 0, 0)]), "v1", [b"\x00png\xff"])
    store.add_samples(a.id, np.stack([unit(0, 1, 0)]), None)
    b = store.enrol("রবীন্দ্রনাথ", np.stack([unit(0, 0, 1)]), "v1", None)
    return a.id, b.id


def assert_enrolled(store: WriterStore, a: int, b: int) -> None:
    assert [(w.id, w.name, w.samples) for w in store.writers()] == [(a, "Ada", 2), (b, "রবীন্দ্রনাথ", 1)]
    ids, means = store.means("v1")
    assert ids == [a, b]
    np.testing.assert_allclose(means, np.stack([unit(1, 1, 0), unit(0, 0, 1)]), atol=1e-6)
    with store._connect() as cursor:
        cursor.execute(store._sql("SELECT image FROM writer_samples WHERE writer_id = ? ORDER BY id"), (a,))
        assert [None if r[0] is None else bytes(r[0]) for r in cursor.fetchall()] == [b"\x00png\xff", None]


def test_enrolments_survive_a_restart(target: str, open_store: Opener):
    # What a deploy does: the store is closed, the database restarts (PostgreSQL: a crash-stop, so
    # only what was committed to the write-ahead log comes back), a new store opens the same database.
    store = open_store(target)
    a, b = enrol_two(store)
    store.close()
    if store.postgres:
        restart_server(target)
    reopened = open_store(target)  # creating the schema again must leave the rows alone
    assert_enrolled(reopened, a, b)
    assert reopened.enrol("C", np.stack([unit(1, 1, 1)]), "v1", None).id > b  # ids never reused


def test_a_pooled_store_recovers_from_a_server_restart(postgres_db: str, open_store: Opener):
    # The pool's connections die with the server; each is checked before use and replaced, so the
    # store in a running service answers again without being reopened.
    pytest.importorskip("psycopg_pool", reason="the pool needs psycopg_pool (psycopg[pool])")
    store = open_store(postgres_db, pool_size=2)
    a, b = enrol_two(store)
    assert store._pool is not None
    restart_server(postgres_db)
    assert_enrolled(store, a, b)
    assert store.enrol("C", np.stack([unit(1, 1, 1)]), "v1", None).id > b


def test_postgres_operations_share_the_pools_connections(postgres_db: str, open_store: Opener):
    pytest.importorskip("psycopg_pool", reason="the pool needs psycopg_pool (psycopg[pool])")
    store = open_store(postgres_db, pool_size=2)
    backends = set()
    for i in range(6):
        store.enrol(f"W{i}", np.stack([unit(1, i)]), "v1", None)
        with store._connect() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])
    assert len(backends) <= 2 and store.count() == 6  # a connection per operation would be 6 backends
    store.close()
    assert store._pool is None and store.count() == 6  # closed, then reopened on the next use


def test_without_psycopg_pool_postgres_connects_per_operation(
    postgres_db: str, open_store: Opener, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(store_module, "_pool_class", lambda: None)
    store = open_store(postgres_db)
    a, b = enrol_two(store)
    assert store._pool is None
    assert_enrolled(store, a, b)


def test_a_pool_that_cannot_reach_the_server_is_store_unavailable(postgres_db: str, open_store: Opener):
    # The server went away after the store opened: an operation waits at most pool_timeout.
    pytest.importorskip("psycopg_pool", reason="the pool needs psycopg_pool (psycopg[pool])")
    store = open_store(postgres_db, pool_timeout=1.0)
    store.target = store.target.replace("?host=", "?port=1&host=")  # nothing listens there
    with pytest.raises(StoreUnavailable, match="cannot open the writer database"):
        store.count()
