"""Per-image augmentation presets: the committed recipe unchanged, the study's baseline and Cutout."""

import albumentations as A
import numpy as np
import pytest

from training.augment import SEED_CUTOUT_FRACTION, AugmentConfig, CanvasAugment, build_augment
from training.config import REPO_ROOT, load_config


def kinds(cfg: AugmentConfig) -> list[str]:
    return [type(t).__name__ for t in build_augment(cfg).transforms]


def test_default_preset_is_the_committed_recipe():
    assert kinds(AugmentConfig()) == [
        "Affine",
        "ElasticTransform",
        "OneOf",
        "GaussianBlur",
        "CoarseDropout",
    ]


@pytest.mark.parametrize("name", ["letters", "digits", "graphemes"])
def test_committed_configs_keep_their_augmentation(name):
    cfg = load_config(REPO_ROOT / "training" / "configs" / f"{name}.yaml")
    assert cfg.augment == AugmentConfig() and cfg.mix == () and cfg.loss == "ce"


def test_baseline_preset_is_noise_plus_shift_scale_rotate():
    noise, affine = build_augment(AugmentConfig(preset="baseline")).transforms
    assert isinstance(noise, A.GaussNoise) and isinstance(affine, A.Affine)
    assert affine.rotate == (-30, 30) and affine.scale["x"] == (0.9, 1.1)
    assert affine.translate_percent["x"] == (-0.01, 0.01)


def test_cutout_masks_the_seeds_share_of_the_canvas_every_time():
    assert pytest.approx(0.445, abs=1e-3) == SEED_CUTOUT_FRACTION
    augment = CanvasAugment(AugmentConfig(preset="none", cutout=True), seed=0)
    canvas = np.ones((32, 32), np.float32)
    side = int(32 * SEED_CUTOUT_FRACTION)
    for _ in range(10):
        erased = int((augment(canvas) == 0).sum())
        assert side * side <= erased <= (side + 1) ** 2


def test_unknown_preset_is_rejected():
    with pytest.raises(KeyError, match="baseline"):
        build_augment(AugmentConfig(preset="heavy"))


def test_grain_is_off_by_default_and_only_darkens_or_lightens_the_ink():
    assert "MultiplicativeNoise" not in kinds(AugmentConfig())
    assert kinds(AugmentConfig(grain_p=0.5))[-1] == "MultiplicativeNoise"
    off = {"affine_p": 0.0, "elastic_p": 0.0, "morph_p": 0.0, "blur_p": 0.0, "dropout_p": 0.0}
    augment = CanvasAugment(AugmentConfig(**off, grain_p=1.0, grain=(0.6, 1.0)), seed=0)
    canvas = np.zeros((28, 28), np.float32)
    canvas[8:20, 12:16] = 1.0
    out = augment(canvas)
    assert np.all(out[canvas == 0] == 0)  # paper stays paper
    ink = out[canvas == 1]
    assert ink.min() >= 0.6 - 1e-6 and ink.max() <= 1.0 and ink.std() > 0.05  # uneven, per pixel
