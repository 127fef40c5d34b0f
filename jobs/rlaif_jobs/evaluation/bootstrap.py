"""95% bootstrap intervals over prompts (percentile method), paired: one resample of prompt indices
serves both policies, so an interval of a difference keeps the per-prompt pairing.

Deterministic: the resamples come from ``random.Random(seed)``, so the same inputs give the same
interval on every machine. Pure Python (a few thousand resamples of a few dozen prompts take well under
a second, the logistic refits of the length-controlled win rate a few seconds).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

RESAMPLES = 2000
LEVEL = 0.95


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The inverted-CDF q-quantile: the smallest value with at least a share q of values at or below it."""
    n = len(sorted_values)
    k = min(n - 1, max(0, math.ceil(q * n) - 1))
    return sorted_values[k]


def interval(n: int, stat: Callable[[list[int]], float], resamples: int = RESAMPLES, seed: int = 0,
             level: float = LEVEL) -> tuple[float, float]:
    """(low, high) percentile interval of ``stat`` over ``resamples`` draws of n prompt indices with
    replacement. ``stat`` gets the drawn indices (a list of length n)."""
    if n <= 0:
        raise ValueError("a bootstrap interval needs at least one prompt")
    rng = random.Random(seed)
    values = sorted(stat([rng.randrange(n) for _ in range(n)]) for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    return percentile(values, tail), percentile(values, 1.0 - tail)


def mean_interval(values: Sequence[float], **kw: float) -> tuple[float, float]:
    """Interval of the mean of ``values``."""
    return interval(len(values), lambda idx: sum(values[i] for i in idx) / len(idx), **kw)  # type: ignore[arg-type]


def difference_interval(a: Sequence[float], b: Sequence[float], **kw: float) -> tuple[float, float]:
    """Interval of mean(a) - mean(b), resampling the prompts (pairs (a_i, b_i)) together."""
    if len(a) != len(b):
        raise ValueError("paired values must have the same length")
    return interval(len(a), lambda idx: sum(a[i] - b[i] for i in idx) / len(idx), **kw)  # type: ignore[arg-type]
