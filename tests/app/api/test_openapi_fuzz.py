"""Property-based API fuzzing from the OpenAPI schema (schemathesis): small and deterministic here,
`bench/proofs/schema_fuzz.py` runs the full one against the real server. Both use
bench/proofs/schemathesis.toml.

Every operation, with inputs the schema allows (positive) and inputs it forbids (negative): no
5xx, and every answer conforms to the documented statuses, content types, headers and bodies.
Driven by hypothesis directly (`derandomize=True`: the same examples every run).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from app.config import Settings
from app.main import create_app
from bench.server import REPO
from tests.app.writer_models import write_writer_model

EXAMPLES_PER_OPERATION = 25
PREDICT = "POST /predict/{task}"
BATCH = "POST /predict/{task}/batch"
READ = "POST /read/{task}"
ENROL = "POST /writers"
SAMPLES = "POST /writers/{writer_id}/samples"
IDENTIFY = "POST /identify/writer"


@pytest.fixture(scope="module")
def operations(model_dir, tmp_path_factory):
    config = SchemathesisConfig.from_path(REPO / "bench" / "proofs" / "schemathesis.toml")
    writers = tmp_path_factory.mktemp("writers")
    writer_model = write_writer_model(writers / "model")
    app = create_app(
        Settings(model_dir=model_dir, writer_model_dir=writer_model, writer_db=str(writers / "w.db"))
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    return {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in schema.get_all_operations())}


def test_every_operation_is_covered(operations):
    assert set(operations) == {
        PREDICT,
        BATCH,
        READ,
        "GET /models",
        "GET /health/live",
        "GET /health/ready",
        "GET /metrics",
        ENROL,
        SAMPLES,
        "GET /writers",
        "DELETE /writers/{writer_id}",
        IDENTIFY,
    }


@pytest.mark.parametrize(
    ("mode", "names"),
    # Only an operation with inputs can be sent inputs that break its schema.
    [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, [PREDICT, BATCH, READ, ENROL, SAMPLES, "GET /writers", IDENTIFY]),
    ],
    ids=["positive", "negative"],
)
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow, on the garbage it is fed
def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(operations, mode, names):
    for name in names or operations:

        @given(case=operations[name].as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()


def test_a_batch_file_of_the_wrong_schema_type_is_a_file_that_is_not_an_image(client):
    # schemathesis' negative data for the batch (a number where the schema says a binary string)
    # is still a multipart file part: its entry answers 415 inside the batch's 200 (ST201 flagged
    # it), which bench/proofs/schemathesis.toml allows for this one operation and no other.
    import tomllib

    config = tomllib.loads((REPO / "bench" / "proofs" / "schemathesis.toml").read_text(encoding="utf-8"))
    overrides = {op["include-name"]: op for op in config["operations"]}
    assert set(overrides) == {"POST /predict/{task}/batch"}
    expected = overrides["POST /predict/{task}/batch"]["checks"]["negative_data_rejection"][
        "expected-statuses"
    ]
    assert 200 in expected and not any(str(s).startswith("5") for s in expected)
    response = client.post(
        "/predict/letter/batch",
        files=[("files", ("files", b"2.220446049250313e-16", "application/octet-stream"))],
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["error"]["status"] == 415
