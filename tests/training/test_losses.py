import torch
import torch.nn.functional as F

from training.losses import IGNORE, multi_head_loss


def test_single_head_equals_mean_cross_entropy():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = multi_head_loss({"h": logits}, {"h": target})
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))


def test_heads_are_weighted_and_unknown_targets_ignored():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, generator=g), torch.randn(4, 5, generator=g)
    ta, tb = torch.tensor([0, 1, 2, 0]), torch.tensor([4, IGNORE, IGNORE, 1])
    loss = multi_head_loss({"a": a, "b": b}, {"a": ta, "b": tb}, weights={"a": 2.0})
    expected = 2 * F.cross_entropy(a, ta) + F.cross_entropy(b[[0, 3]], tb[[0, 3]])
    torch.testing.assert_close(loss, expected)
