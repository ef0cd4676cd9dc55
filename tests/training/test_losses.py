import torch
import torch.nn.functional as F

from training.losses import IGNORE, make_loss, multi_head_loss, ohem, per_sample_loss
from training.mixing import soft_targets


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


def test_ohem_with_rate_one_is_mean_cross_entropy():
    g = torch.Generator().manual_seed(2)
    logits, target = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    loss = make_loss("ohem", {}, ohem_rate=1.0)({"h": logits}, {"h": target})
    torch.testing.assert_close(loss, F.cross_entropy(logits, target))


def test_ohem_keeps_exactly_the_hardest():
    g = torch.Generator().manual_seed(3)
    logits, target = torch.randn(10, 4, generator=g), torch.randint(0, 4, (10,), generator=g)
    per_sample = F.cross_entropy(logits, target, reduction="none")
    hardest = per_sample.sort(descending=True).values[:5]
    loss = make_loss("ohem", {}, ohem_rate=0.5)({"h": logits}, {"h": target})
    torch.testing.assert_close(loss, hardest.mean())


def test_ohem_picks_only_among_samples_that_know_the_head():
    logits = torch.tensor([[0.0, 9.0], [9.0, 0.0], [0.0, 9.0], [1.0, 0.0]])
    target = torch.tensor([0, IGNORE, 1, 0])  # sample 1 would be the hardest if it were known
    loss = ohem(*per_sample_loss(logits, target), rate=0.5)
    torch.testing.assert_close(loss, F.cross_entropy(logits[:1], target[:1]))


def test_soft_one_hot_targets_equal_hard_targets_with_label_smoothing():
    g = torch.Generator().manual_seed(4)
    logits, target = torch.randn(6, 5, generator=g), torch.tensor([0, 1, IGNORE, 3, 4, IGNORE])
    soft = soft_targets(target, 5)
    for smoothing in (0.0, 0.1):
        hard_loss = multi_head_loss({"h": logits}, {"h": target}, label_smoothing=smoothing)
        soft_loss = multi_head_loss({"h": logits}, {"h": soft}, label_smoothing=smoothing)
        torch.testing.assert_close(soft_loss, hard_loss)


def test_a_half_known_soft_row_counts_half():
    """A row holding only the partner's known 0.3 is 0.3·CE(partner class), normalised by mass 0.3."""
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    soft = torch.tensor([[0.0, 0.3, 0.0], [0.0, 0.0, 1.0]])
    expected = (
        0.3 * F.cross_entropy(logits[:1], torch.tensor([1])) + F.cross_entropy(logits[1:], torch.tensor([2]))
    ) / 1.3
    torch.testing.assert_close(multi_head_loss({"h": logits}, {"h": soft}), expected)


def test_a_head_nobody_knows_adds_nothing():
    logits = torch.randn(3, 4)
    for target in (torch.full((3,), IGNORE), torch.zeros(3, 4)):
        for name in ("ce", "ohem"):
            assert make_loss(name, {})({"h": logits}, {"h": target}).item() == 0.0
