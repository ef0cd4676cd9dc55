"""CutMix and Mixup: pixels and soft targets agree, unknown heads stay unknown, methods alternate."""

import numpy as np
import pytest
import torch

from training.losses import IGNORE
from training.mixing import BatchMixer, cutmix, mixup, soft_targets

HEADS = {"root": 4, "vowel": 3}


def batch(n: int = 6, size: int = 16) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    # each image is filled with its own index, so a pixel tells which sample it came from
    x = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 1, size, size).clone()
    targets = {"root": torch.arange(n) % 4, "vowel": torch.tensor([0, 1, IGNORE, 2, IGNORE, 1])[:n]}
    return x, targets


def test_soft_targets_are_one_hot_with_empty_rows_for_unknown():
    soft = soft_targets(torch.tensor([2, IGNORE, 0]), 3)
    torch.testing.assert_close(soft, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.83])
def test_cutmix_target_weights_equal_the_pasted_area(lam):
    x, targets = batch()
    perm = torch.tensor([1, 2, 3, 4, 5, 0])
    for seed in range(5):
        mixed, soft = cutmix(x, targets, HEADS, lam, perm, np.random.default_rng(seed))
        pasted = (mixed != x).float().mean(dim=(1, 2, 3))  # share of each image that came from the partner
        partner_weight = soft["root"][torch.arange(6), targets["root"][perm]]
        torch.testing.assert_close(partner_weight, pasted)
        torch.testing.assert_close(soft["root"].sum(1), torch.ones(6))


def test_mixup_blends_pixels_and_targets_by_lambda():
    x, targets = batch()
    perm = torch.tensor([1, 0, 3, 2, 5, 4])
    mixed, soft = mixup(x, targets, HEADS, 0.7, perm, np.random.default_rng(0))
    torch.testing.assert_close(mixed[0], 0.7 * x[0] + 0.3 * x[1])
    expected = torch.zeros(4)
    expected[0], expected[1] = 0.7, 0.3
    torch.testing.assert_close(soft["root"][0], expected)


def test_mixing_never_invents_a_label_for_an_unknown_head():
    """Only the known part of a mix carries mass: sample 2 (vowel unknown) mixed with 3 (vowel 2)."""
    x, targets = batch()
    perm = torch.tensor([1, 0, 3, 2, 5, 4])
    _, soft = mixup(x, targets, HEADS, 0.7, perm, np.random.default_rng(0))
    torch.testing.assert_close(soft["vowel"][2], torch.tensor([0.0, 0.0, 0.3]))  # partner's share only
    torch.testing.assert_close(soft["vowel"][3], torch.tensor([0.0, 0.0, 0.7]))  # own share only
    torch.testing.assert_close(soft["vowel"][4], torch.tensor([0.0, 0.3, 0.0]))  # 4 unknown, 5 knows vowel 1
    both_unknown = {"root": targets["root"], "vowel": torch.full((6,), IGNORE)}
    _, soft = mixup(x, both_unknown, HEADS, 0.7, perm, np.random.default_rng(0))
    assert soft["vowel"].sum() == 0


def test_mixer_uses_each_enabled_method_about_equally_often():
    mixer = BatchMixer(["cutmix", "mixup"], HEADS, seed=0)
    x, targets = batch()
    kinds = []
    for _ in range(200):
        mixed, _ = mixer(x, targets)
        fractional = not torch.equal(mixed, mixed.round())  # Mixup blends values; CutMix copies them
        kinds.append("mixup" if fractional else "cutmix")
    assert 70 < kinds.count("mixup") < 130


def test_mixer_with_p_zero_or_no_method_leaves_the_batch_alone():
    x, targets = batch()
    for mixer in (BatchMixer([], HEADS), BatchMixer(["mixup"], HEADS, p=0.0)):
        out, out_targets = mixer(x, targets)
        assert out is x and out_targets is targets


def test_unknown_mix_is_rejected():
    with pytest.raises(KeyError, match="cutmix"):
        BatchMixer(["cutout"], HEADS)
