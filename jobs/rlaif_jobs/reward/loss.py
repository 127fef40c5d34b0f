"""The paper's soft-label reward loss, and pairwise accuracy.

L = -[p log sigmoid(r_a - r_b) + (1 - p) log sigmoid(r_b - r_a)], p = P(a preferred) from the labeler:
the cross-entropy between the soft label and the softmax of the two scores. Written with softplus
(-log sigmoid(x) = softplus(-x)) so that large margins neither overflow nor lose precision.
"""

from __future__ import annotations

from typing import Any


def soft_label_loss(r_a: Any, r_b: Any, p: Any, reduction: str = "mean") -> Any:
    """Soft-label cross-entropy of score pairs.

    Inputs: tensors of scores r_a, r_b and labels p in [0, 1], all of shape [N] (computed in float32
    whatever the model's dtype). reduction: 'mean', 'sum' or 'none' (per pair). At p = 1 it is the
    Bradley-Terry loss -log sigmoid(r_a - r_b); at p = 0.5 its minimum is log 2, at r_a = r_b.
    """
    import torch.nn.functional as F

    margin = r_a.float() - r_b.float()
    p = p.to(margin.dtype)
    loss = p * F.softplus(-margin) + (1 - p) * F.softplus(margin)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def preferred_a(p: float | None = None, human: str | None = None) -> bool | None:
    """The reference answer for accuracy: the human label where there is one, else the AI label's argmax
    (None for p = 0.5 exactly, a tie that no score can get right or wrong)."""
    if human in ("a", "b"):
        return human == "a"
    if p is None or p == 0.5:
        return None
    return p > 0.5


def label_entropy(p: float) -> float:
    """Binary entropy of a soft label in nats: the smallest soft-label loss any score pair can reach on it
    (at r_a - r_b = logit p). ln 2 at p = 0.5, 0 at p in {0, 1}."""
    import math

    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


def loss_floor(labels: list[float]) -> float:
    """Mean label entropy: the floor under the mean soft-label loss on these labels (NaN for none). An
    eval loss near it means the model reproduces the labels; near ln 2 means it learned nothing."""
    return sum(label_entropy(p) for p in labels) / len(labels) if labels else float("nan")


def wilson_interval(correct: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion correct / n (an accuracy on n pairs); (nan, nan) for n = 0.
    Unlike the normal approximation it stays inside [0, 1] and is honest at 0 or n correct."""
    import math

    if n <= 0:
        return float("nan"), float("nan")
    phat = correct / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
