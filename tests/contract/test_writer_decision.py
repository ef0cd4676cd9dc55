"""The writer decision the service and the calibration share: profiles, scores, the threshold table
read from the manifest, and the known / unknown answer. Always on: no data, no model run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from contract.writer_decision import (
    DEFAULT_ENROLLED,
    OpenSetCalibration,
    decide,
    identify,
    profile,
    scores,
    unit,
)
from contract.writer_manifest import WriterManifest

REPO = Path(__file__).resolve().parents[2]


def table(**overrides: object) -> OpenSetCalibration:
    values: dict[str, object] = {
        "false_reject": 0.05,
        "enrolled": (1, 20),
        "query": (1, 5, 20),
        "thresholds": ((0.3, 0.4, 0.5), (0.4, 0.6, 0.7)),
    }
    return OpenSetCalibration(**(values | overrides))


def test_thresholds_are_exact_on_the_grid_and_held_beyond_it():
    calibration = table()
    assert calibration.threshold(5, 1) == pytest.approx(0.4)
    assert calibration.threshold(20, 20) == pytest.approx(0.7)
    assert calibration.threshold(100, 500) == pytest.approx(0.7)  # held at the far edge
    assert calibration.threshold(0, 0) == pytest.approx(0.3)  # counts below 1 count as 1


def test_thresholds_interpolate_in_log_counts():
    calibration = table()
    # 5 enrolled lies log(5) / log(20) of the way from 1 to 20 in log space.
    assert calibration.threshold(1, 5) == pytest.approx(0.3 + 0.1 * np.log(5) / np.log(20))
    midway_q = calibration.threshold(10, 20)  # between q = 5 (0.6) and q = 20 (0.7)
    assert 0.6 < midway_q < 0.7
    assert midway_q == pytest.approx(0.6 + 0.1 * np.log(10 / 5) / np.log(20 / 5))


def test_unknown_enrolment_size_uses_the_default():
    calibration = table()
    assert calibration.default_enrolled == DEFAULT_ENROLLED == 20
    assert calibration.threshold(20) == calibration.threshold(20, 20)


@pytest.mark.parametrize(
    "overrides",
    [
        {"enrolled": (20, 1)},  # not ascending
        {"query": (0, 5, 20)},  # not positive
        {"thresholds": ((0.3, 0.4), (0.4, 0.6))},  # wrong width
        {"thresholds": ((0.3, 0.4, 1.5), (0.4, 0.6, 0.7))},  # not a cosine
        {"false_reject": 0.0},
        {"unexpected": 1},
    ],
)
def test_a_malformed_table_is_refused(overrides: dict[str, object]):
    with pytest.raises(ValidationError):
        table(**overrides)


def test_profile_and_scores_are_cosines_of_mean_directions():
    embeddings = unit(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    query = profile(embeddings)
    assert np.allclose(query, [np.sqrt(0.5), np.sqrt(0.5)])
    means = unit(np.array([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]], np.float32))
    assert np.allclose(scores(query, means), [np.sqrt(0.5), 1.0, -np.sqrt(0.5)], atol=1e-6)
    assert scores(query, np.zeros((0, 2), np.float32)).shape == (0,)


def test_identify_names_the_best_writer_only_above_its_threshold():
    means = unit(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32))
    near_second = unit(np.array([[0.2, 1.0, 0.1], [0.1, 1.0, 0.3]], np.float32))
    calibration = table()
    decision = identify(near_second, means, calibration, enrolled=np.array([20, 20, 20]))
    assert decision.order[0] == 1 and decision.known
    assert decision.threshold == pytest.approx(calibration.threshold(2, 20))
    # Twenty characters halfway between the writers (cosine 0.58 to each) are a stranger's...
    between = np.tile(unit(np.array([1.0, 1.0, 1.0], np.float32)), (20, 1))
    far = identify(between, means, calibration, enrolled=np.array([20, 20, 20]))
    assert far.threshold == pytest.approx(0.7) and not far.known
    # ...but the bar is the best writer's own enrolment size's: one character enrolled, lower.
    assert identify(between, means, calibration, enrolled=np.array([1, 1, 1])).known
    # Nobody enrolled: unknown.
    assert not identify(near_second, np.zeros((0, 3), np.float32), calibration).known


def test_ties_rank_like_the_service_by_enrolment_order():
    means = unit(np.array([[1.0, 0.0], [1.0, 0.0]], np.float32))
    assert list(identify(means[:1], means, table()).order) == [0, 1]


def test_decide():
    assert decide(0.5, 0.5) and not decide(0.49, 0.5) and not decide(None, -1.0)


def manifest_with(tmp_path: Path, open_set: dict | None) -> WriterManifest:
    data = json.loads((REPO / "models/writers/writer_manifest.json").read_text())
    data.pop("open_set", None)
    if open_set is not None:
        data["open_set"] = open_set
    data["thresholds_by_query"] = {"1": 0.25, "20": 0.55}
    (tmp_path / "writer_manifest.json").write_text(json.dumps(data))
    return WriterManifest.load(tmp_path)


def test_the_manifest_decides_with_its_open_set_table(tmp_path: Path):
    manifest = manifest_with(tmp_path, table().model_dump(mode="json"))
    assert manifest.threshold_for(20, 1) == pytest.approx(0.5)
    assert manifest.threshold_for(20) == pytest.approx(0.7)  # the default enrolment size


def test_a_manifest_without_a_table_keeps_its_per_query_thresholds(tmp_path: Path):
    manifest = manifest_with(tmp_path, None)
    assert manifest.open_set is None
    assert manifest.threshold_for(1) == pytest.approx(0.25)
    assert manifest.threshold_for(20, 5) == pytest.approx(0.55)


def test_the_committed_model_carries_a_calibrated_table():
    manifest = WriterManifest.load(REPO / "models/writers")
    assert manifest.open_set is not None and manifest.open_set.writers > 0
    grid = np.asarray(manifest.open_set.thresholds)
    # A longer query or enrolment never needs a lower bar.
    assert (np.diff(grid, axis=0) >= 0).all() and (np.diff(grid, axis=1) >= 0).all()
    assert manifest.open_set.false_reject == pytest.approx(0.05)
