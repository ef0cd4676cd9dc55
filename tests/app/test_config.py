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
    assert (settings.default_k, settings.max_k, settings.ort_intra_op_threads) == (5, 50, 0)


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
