"""The paper's soft-label loss against values worked out by hand, including p = 0, 0.5 and 1."""

from __future__ import annotations

import math

import pytest
import torch

from rlaif_jobs.reward.loss import preferred_a, soft_label_loss


def by_hand(ra: float, rb: float, p: float) -> float:
    # L = -[p log sigmoid(ra - rb) + (1 - p) log sigmoid(rb - ra)], with sigmoid(x) = 1 / (1 + e^-x)
    sig = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731
    return -(p * math.log(sig(ra - rb)) + (1 - p) * math.log(sig(rb - ra)))


@pytest.mark.parametrize(
    ("ra", "rb", "p", "expected"),
    [
        # equal scores: log 2 whatever the label
        (0.0, 0.0, 1.0, 0.6931471805599453),
        (0.3, 0.3, 0.0, 0.6931471805599453),
        (-1.0, -1.0, 0.5, 0.6931471805599453),
        # margin +2: p=1 -> log(1 + e^-2); p=0 -> log(1 + e^2); p=0.5 -> the average of the two
        (2.0, 0.0, 1.0, 0.1269280110429725),
        (2.0, 0.0, 0.0, 2.1269280110429727),
        (2.0, 0.0, 0.5, 1.1269280110429726),
        # margin -1 with p = 0.8: 0.8 log(1 + e^1) + 0.2 log(1 + e^-1)
        (0.5, 1.5, 0.8, 0.8 * 1.3132616875182228 + 0.2 * 0.31326168751822286),
    ],
)
def test_matches_hand_computed_values(ra, rb, p, expected):
    assert by_hand(ra, rb, p) == pytest.approx(expected, rel=1e-12)  # the table itself is right
    got = soft_label_loss(torch.tensor([ra]), torch.tensor([rb]), torch.tensor([p]))
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_reductions_and_batching():
    ra, rb, p = torch.tensor([2.0, 0.0, 0.5]), torch.tensor([0.0, 0.0, 1.5]), torch.tensor([1.0, 0.5, 0.8])
    per = soft_label_loss(ra, rb, p, reduction="none")
    hand = [by_hand(2, 0, 1), by_hand(0, 0, 0.5), by_hand(0.5, 1.5, 0.8)]
    assert per.tolist() == pytest.approx(hand, rel=1e-6)
    assert float(soft_label_loss(ra, rb, p, reduction="sum")) == pytest.approx(sum(hand), rel=1e-6)
    assert float(soft_label_loss(ra, rb, p)) == pytest.approx(sum(hand) / 3, rel=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        soft_label_loss(ra, rb, p, reduction="max")


def test_gradient_is_sigmoid_margin_minus_p():
    # dL/d(ra - rb) = sigmoid(ra - rb) - p: zero exactly when the model's P(a) equals the label
    for margin, p in [(0.0, 1.0), (0.0, 0.5), (1.0, 0.0), (-2.0, 0.3)]:
        ra = torch.tensor([margin], requires_grad=True)
        soft_label_loss(ra, torch.tensor([0.0]), torch.tensor([p])).backward()
        assert float(ra.grad) == pytest.approx(1 / (1 + math.exp(-margin)) - p, abs=1e-6)


def test_large_margins_stay_finite():
    # log(sigmoid(-100)) underflows if computed naively; softplus keeps it exact
    ra, rb = torch.tensor([100.0, 100.0]), torch.tensor([0.0, 0.0])
    got = soft_label_loss(ra, rb, torch.tensor([1.0, 0.0]), reduction="none")
    assert got.tolist() == pytest.approx([0.0, 100.0], abs=1e-6)


def test_bf16_scores_are_lifted_to_float32():
    got = soft_label_loss(torch.tensor([2.0], dtype=torch.bfloat16), torch.tensor([0.0], dtype=torch.bfloat16),
                          torch.tensor([1.0]))
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(0.1269280110429725, rel=1e-6)


def test_reference_label_for_accuracy():
    assert preferred_a(0.9) is True and preferred_a(0.1) is False
    assert preferred_a(0.5) is None  # a tie counts for neither side
    assert preferred_a(0.9, "b") is False  # the human label wins where present
    assert preferred_a(None, "a") is True and preferred_a(None, None) is None


def test_loss_floor_is_the_label_entropy_by_hand():
    from rlaif_jobs.reward.loss import label_entropy, loss_floor

    # H(p) = -(p ln p + (1 - p) ln(1 - p)): ln 2 at one half, 0 at certainty
    assert label_entropy(0.5) == pytest.approx(math.log(2))
    assert label_entropy(1.0) == 0.0 and label_entropy(0.0) == 0.0
    assert label_entropy(0.9) == pytest.approx(-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)))  # 0.3251
    assert label_entropy(0.9) == pytest.approx(0.32508297339144826)
    # labels of confidence 0.56 (the old quickstart's mean): the floor is 0.6859, barely under ln 2
    assert loss_floor([0.56, 0.44]) == pytest.approx(0.6859, abs=1e-4)
    assert math.isnan(loss_floor([]))
    # the floor is what the loss reaches at the best margin, logit(p): no score pair goes below it
    p = torch.tensor([0.8])
    best = soft_label_loss(torch.tensor([math.log(0.8 / 0.2)]), torch.tensor([0.0]), p)
    assert float(best) == pytest.approx(label_entropy(0.8), abs=1e-6)
    assert float(soft_label_loss(torch.tensor([2.5]), torch.tensor([0.0]), p)) > label_entropy(0.8)


def test_wilson_interval_by_hand():
    from rlaif_jobs.reward.loss import wilson_interval

    # 45 of 50: centre (0.9 + 1.96^2/100) / (1 + 1.96^2/50) = 0.8714, half-width 0.0930
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-4) and hi == pytest.approx(0.9565, abs=1e-4)
    lo, hi = wilson_interval(10, 10)  # all right: the interval still has width
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
