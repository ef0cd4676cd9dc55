"""The small, seeded version of `bench/proofs/fuzz_bodies.py` (10,000 bodies there, 200 here)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from bench.proofs.fuzz_bodies import fuzz_endpoint, fuzz_pipeline, generate_bodies

COUNT, SEED = 200, 0
# Pillow warns about the corrupt files it is fed here; that is the point.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def bodies() -> list[tuple[str, bytes]]:
    return list(generate_bodies(COUNT, SEED))


def test_the_bodies_are_deterministic_and_varied(bodies):
    assert bodies == list(generate_bodies(COUNT, SEED))
    assert {kind for kind, _ in bodies} == {"valid", "mutated", "signature+noise", "noise"}


def test_the_pipeline_meets_only_defined_errors(bodies, letter_model):
    report = fuzz_pipeline(bodies, Settings(), letter_model.manifest.preprocessing)
    assert report.failures == []
    assert report.bodies == COUNT
    # Both sides were exercised: images that made it through, and refusals.
    assert report.outcomes["ok"] > 0 and report.outcomes["UnsupportedImage"] > 0


def test_the_endpoint_answers_only_defined_statuses(bodies, model_dir):
    with TestClient(create_app(Settings(model_dir=model_dir)), raise_server_exceptions=False) as client:
        report = fuzz_endpoint(bodies, client, "letter")
    assert report.failures == []
    assert report.outcomes["200"] > 0 and report.outcomes["415"] > 0
