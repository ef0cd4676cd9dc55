"""Training and writer configs are validated against their annotations, whatever YAML reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from training.config import REPO_ROOT, TrainConfig, config_from_dict, load_config
from training.writers.config import WriterConfig, load_writer_config


def test_overrides_become_the_fields_types() -> None:
    cfg = load_config(
        None,
        ["lr=3e-3", "epochs=4", "amp=false", "mix=[cutmix, mixup]", "name=7", "augment.scale=[0.9, 1]"],
    )
    assert cfg.lr == 0.003 and isinstance(cfg.lr, float)
    assert cfg.epochs == 4 and cfg.amp is False
    assert cfg.mix == ("cutmix", "mixup")
    assert cfg.name == "7"
    assert cfg.augment.scale == (0.9, 1.0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=fast", "TrainConfig.lr must be a valid number"),
        ("epochs=2.5", "TrainConfig.epochs must be a valid integer"),
        ("amp=maybe", "TrainConfig.amp must be a valid boolean"),
        ("preprocess.max_side=big", "TrainConfig.preprocess.max_side must be a valid integer"),
        ("lrr=0.1", "TrainConfig.lrr: unknown key"),
        ("augment.rotat=5", "TrainConfig.augment.rotat: unknown key"),
    ],
)
def test_wrong_types_and_unknown_keys_are_refused_by_name(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_config(None, [override])


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as caught:
        config_from_dict({"epochs": "ten", "batchsize": 64})
    assert "TrainConfig.epochs" in str(caught.value) and "TrainConfig.batchsize" in str(caught.value)


def test_configs_built_in_code_are_validated_too() -> None:
    with pytest.raises(ValueError):
        TrainConfig(epochs="ten")  # type: ignore[arg-type]
    cfg = TrainConfig()
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, lr="fast")


def test_a_saved_config_loads_back_equal(tmp_path: Path) -> None:
    from training.config import save_config

    cfg = load_config(REPO_ROOT / "training" / "configs" / "letters.yaml", ["lr=2e-3"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "training" / "configs").glob("*.yaml")), ids=str)
def test_every_committed_config_validates(path: Path) -> None:
    if path.name.startswith("writers_"):
        assert isinstance(load_writer_config(path), WriterConfig)
    else:
        assert isinstance(load_config(path), TrainConfig)


def test_writer_config_is_typed_the_same_way() -> None:
    cfg = load_writer_config(None, ["lr=1e-3", "split=[0.8, 0.1, 0.1]", "enrol=[1, 5]", "epochs=3"])
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float)
    assert cfg.split == (0.8, 0.1, 0.1) and cfg.enrol == (1, 5) and cfg.epochs == 3
    for override, message in (
        ("epochs=ten", r"WriterConfig\.epochs must be a valid integer"),
        ("top_writer=5", r"WriterConfig\.top_writer: unknown key"),
        ("preprocess.nope=1", r"WriterConfig\.preprocess\.nope: unknown key"),
    ):
        with pytest.raises(ValueError, match=message):
            load_writer_config(None, [override])
