"""Each committed model's documented training command still trains it the way it was trained.

The manifest records the command and the whole resolved config of the run that produced the
committed ONNX file; the config file today must resolve to the same values (keys added since,
with their defaults, aside) and to the preprocessing the model serves with. A changed default
would otherwise make `make train-…` train a different model without anyone noticing.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from app.config import DEFAULT_MODEL_DIR
from app.manifest import Manifest
from training.config import load_config

REPO = Path(__file__).resolve().parents[2]
# Where the run happened, not how: these may differ between machines and runs.
MACHINE_KEYS = {"data_dir", "num_workers", "threads"}


def trained_models() -> list[Path]:
    dirs = []
    for path in sorted(DEFAULT_MODEL_DIR.glob("*/manifest.json")):
        command = shlex.split(json.loads(path.read_text())["training"]["command"])
        if command[:4] == ["python", "-m", "training", "train"] and "--config" in command:
            dirs.append(path.parent)
    return dirs


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = list(value) if isinstance(value, tuple | list) else value
    return out


def test_every_committed_classifier_is_checked():
    assert {d.name for d in trained_models()} >= {"letters", "digits", "graphemes"}


@pytest.mark.parametrize("model_dir", trained_models(), ids=lambda d: d.name)
def test_the_documented_command_resolves_to_the_committed_models_config(model_dir: Path):
    recorded = json.loads((model_dir / "manifest.json").read_text())["training"]
    command = shlex.split(recorded["command"])
    config = load_config(REPO / command[command.index("--config") + 1])
    assert config.preprocess == Manifest.load(model_dir).preprocessing
    now = flat(config.to_dict())
    drifted = {
        key: (value, now.get(key, "<gone>"))
        for key, value in flat(recorded["config"]).items()
        if key not in MACHINE_KEYS and now.get(key, "<gone>") != value
    }
    assert drifted == {}, f"(recorded, now) per key: {drifted}"
