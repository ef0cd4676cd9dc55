from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import app
from app.config import Settings


def test_defaults():
    settings = Settings()
    assert settings.model_dir == Path(app.__file__).resolve().parent.parent / "models"
    assert (settings.max_upload_bytes, settings.max_pixels, settings.max_side) == (
        10_000_000,
        40_000_000,
        20_000,
    )
    assert (settings.default_k, settings.max_k, settings.ort_intra_op_threads, settings.workers) == (
        5,
        50,
        1,
        2,
    )


def test_reads_hwr_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HWR_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("HWR_MAX_K", "7")
    monkeypatch.setenv("HWR_LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.model_dir, settings.max_k, settings.log_level) == (tmp_path, 7, "DEBUG")


@pytest.mark.parametrize(
    "bad",
    [{"max_upload_bytes": 0}, {"max_k": 0}, {"default_k": 9, "max_k": 3}, {"log_level": "LOUD"}, {"port": 0}],
)
def test_invalid_settings_fail_at_start(bad):
    with pytest.raises(ValidationError):
        Settings(**bad)


def test_hardening_defaults_are_closed_and_bounded():
    settings = Settings()
    assert settings.cors_origins == () and settings.api_token is None  # closed CORS, no auth
    assert (settings.max_concurrency, settings.max_queue, settings.retry_after_s) == (1, 20, 1)
    assert (settings.request_timeout_s, settings.shutdown_timeout_s) == (30.0, 8)


def test_hardening_settings_from_the_environment(monkeypatch):
    for name, value in {
        "HWR_MAX_CONCURRENCY": "2",
        "HWR_MAX_QUEUE": "0",
        "HWR_RETRY_AFTER_S": "5",
        "HWR_REQUEST_TIMEOUT_S": "2.5",
        "HWR_SHUTDOWN_TIMEOUT_S": "45",
        "HWR_CORS_ORIGINS": "https://a.org",
        "HWR_API_TOKEN": "0123456789abcdef",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.max_concurrency, settings.max_queue, settings.retry_after_s) == (2, 0, 5)
    assert (settings.request_timeout_s, settings.shutdown_timeout_s) == (2.5, 45)
    assert settings.cors_origins == ("https://a.org",)
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "0123456789abcdef"


def test_work_per_request_is_bounded_by_default():
    # Regression: pieces per /read image, and inputs per ONNX Runtime call.
    settings = Settings()
    assert (settings.read_max_pieces, settings.inference_max_batch) == (256, 64)
    with pytest.raises(ValidationError):
        Settings(read_max_pieces=0)
    with pytest.raises(ValidationError):
        Settings(inference_max_batch=0)
