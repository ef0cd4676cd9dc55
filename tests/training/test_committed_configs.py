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
from contract.manifest import Manifest
from training.config import load_config

REPO = Path(__file__).resolve().parents[2]
# Where the run happened, not how: these may differ between machines and runs.
MACHINE_KEYS = {"data_dir", "num_workers", "threads"}


def config_file(recorded: dict[str, Any]) -> Path | None:
    """The config file a committed model's command trained it with: `--config` of `python -m training
    train`; for `python -m training.packed` (a pack built from training/configs/<name>.yaml, plus
    the command's --set overrides, which the config file must hold by now) the run's name."""
    command = shlex.split(recorded["command"])
    if command[:4] == ["python", "-m", "training", "train"] and "--config" in command:
        return REPO / command[command.index("--config") + 1]
    if command[:3] == ["python", "-m", "training.packed"]:
        return REPO / "training" / "configs" / f"{recorded['config']['name']}.yaml"
    return None


def trained_models() -> list[Path]:
    return [
        path.parent
        for path in sorted(DEFAULT_MODEL_DIR.glob("*/manifest.json"))
        if config_file(json.loads(path.read_text())["training"]) is not None
    ]


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
    path = config_file(recorded)
    assert path is not None
    config = load_config(path)
    assert config.preprocess == Manifest.load(model_dir).preprocessing
    now = flat(config.to_dict())
    drifted = {
        key: (value, now.get(key, "<gone>"))
        for key, value in flat(recorded["config"]).items()
        if key not in MACHINE_KEYS and now.get(key, "<gone>") != value
    }
    assert drifted == {}, f"(recorded, now) per key: {drifted}"
