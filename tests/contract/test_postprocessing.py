from __future__ import annotations

import numpy as np
import pytest

from contract.manifest import Head
from contract.postprocessing import rank_heads, softmax, top_k


def test_softmax_is_stable_for_huge_logits():
    probs = softmax(np.array([1000.0, 1001.0, -1000.0]))
    assert np.isfinite(probs).all()
    assert probs.sum() == pytest.approx(1.0)
    assert probs[1] > probs[0] > probs[2]


def test_softmax_per_row():
    probs = softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probs, [[0.5, 0.5], [0.25, 0.75]])


def test_top_k_best_first_with_labels():
    assert top_k(np.array([0.1, 0.6, 0.3]), ["a", "b", "c"], 2) == [("b", 0.6), ("c", 0.3)]


def test_top_k_ties_keep_label_order():
    assert [label for label, _ in top_k(np.full(4, 0.25), ["w", "x", "y", "z"], 3)] == ["w", "x", "y"]


@pytest.mark.parametrize("k", [0, -1])
def test_top_k_rejects_bad_k(k):
    with pytest.raises(ValueError):
        top_k(np.array([0.5, 0.5]), ["a", "b"], k)


def test_top_k_rejects_label_count_mismatch():
    with pytest.raises(ValueError):
        top_k(np.array([0.5, 0.5]), ["a", "b", "c"], 1)


def test_rank_heads_caps_k_per_head():
    heads = [
        Head(name="big", output="o1", labels=list("abcde")),
        Head(name="small", output="o2", labels=["x", "y"]),
    ]
    logits = {"big": np.array([[5.0, 4.0, 3.0, 2.0, 1.0]]), "small": np.array([[0.0, 1.0]])}
    ranked = rank_heads(logits, heads, k=3)
    assert list(ranked) == ["big", "small"]
    assert [label for label, _ in ranked["big"]] == ["a", "b", "c"]
    assert [label for label, _ in ranked["small"]] == ["y", "x"]
