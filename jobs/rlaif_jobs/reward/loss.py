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
