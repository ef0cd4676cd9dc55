"""The enrolments' database and the matching, without HTTP (SQLite; no PostgreSQL server here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.writers.embedder import l2_normalise
from app.writers.matching import mean_embedding, rank_writers
from app.writers.store import StoreUnavailable, WriterStore


def unit(*values: float) -> np.ndarray:
    return l2_normalise(np.asarray(values, np.float32))


def test_the_mean_is_kept_over_every_sample(tmp_path: Path):
    store = WriterStore(str(tmp_path / "w.db"))
    writer = store.enrol("A", np.stack([unit(1, 0, 0)]), "v1", None)
    store.add_samples(writer.id, np.stack([unit(0, 1, 0)]), None)
    ids, means = store.means("v1")
    assert ids == [writer.id] and store.get(writer.id).samples == 2  # type: ignore[union-attr]
    np.testing.assert_allclose(means[0], unit(1, 1, 0), atol=1e-6)


def test_writers_of_another_model_version_are_not_compared(tmp_path: Path):
    store = WriterStore(str(tmp_path / "w.db"))
    old = store.enrol("old", np.stack([unit(1, 0)]), "v1", None)
    new = store.enrol("new", np.stack([unit(0, 1)]), "v2", None)
    assert store.means("v2")[0] == [new.id] and store.means("v1")[0] == [old.id]
    assert store.means("v3")[0] == []


def test_delete_removes_the_samples_too(tmp_path: Path):
    store = WriterStore(str(tmp_path / "w.db"))
    writer = store.enrol("A", np.stack([unit(1, 0), unit(0, 1)]), "v1", [b"x", b"y"])
    assert store.delete(writer.id) and not store.delete(writer.id)
    with store._connect() as cursor:
        cursor.execute("SELECT COUNT(*) FROM writer_samples")
        assert cursor.fetchone()[0] == 0


def test_postgres_urls_use_the_postgres_dialect():
    # Only the dialect is checked: no PostgreSQL server is reachable where these tests run.
    store = WriterStore.__new__(WriterStore)
    store.postgres, store.mark = True, "%s"
    assert store._sql("SELECT 1 FROM writers WHERE id = ?") == "SELECT 1 FROM writers WHERE id = %s"


def test_rank_writers_best_first():
    means = np.stack([unit(1, 0), unit(0, 1), unit(1, 1)])
    matches = rank_writers(unit(1, 0.1), [10, 20, 30], means, k=2)
    assert [m.writer_id for m in matches] == [10, 30] and matches[0].score > matches[1].score
    assert rank_writers(unit(1, 0), [], np.zeros((0, 0), np.float32), k=3) == []
    np.testing.assert_allclose(mean_embedding(np.stack([unit(1, 0), unit(0, 1)])), unit(1, 1))


def test_a_database_failure_is_store_unavailable(tmp_path: Path):
    store = WriterStore(str(tmp_path / "w.db"))
    with store._connect() as cursor:
        cursor.execute("DROP TABLE writer_samples")
    with pytest.raises(StoreUnavailable, match="writer database failed"):
        store.delete(1)
