"""From the labeler's log-probabilities to soft labels. Pure functions.

Scoring (paper, Stage 1): read the log-probabilities of "1" and "2" at the answer position and softmax
over those two only. Tokenizers spell a digit several ways ("1", " 1"); the probabilities of a choice's
variants are summed before the softmax. A choice with no known variant probability cannot be scored:
the record abstains (``Abstain``), it is never given a made-up label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The strings whose probabilities make up "the labeler answered 1" and "... 2".
VARIANTS: dict[int, tuple[str, ...]] = {1: ("1", " 1"), 2: ("2", " 2")}
CONTINUATIONS: list[str] = [*VARIANTS[1], *VARIANTS[2]]


class Abstain(Exception):  # noqa: N818 - an outcome, not an error
    """The labeler's answer cannot be read; the message is the reason recorded for the record."""


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def choice_logprob(logprobs: Sequence[float | None], variants: Sequence[str], choice: int) -> float:
    """log of the summed probability of ``choice``'s variants; raises Abstain if none is known.

    ``logprobs`` are aligned with ``variants`` (a subset of CONTINUATIONS, in any order).
    """
    known = [lp for text, lp in zip(variants, logprobs, strict=True) if text in VARIANTS[choice] and lp is not None]
    if not known:
        raise Abstain(f"the labeler gave no probability for {VARIANTS[choice][0]!r}")
    return _logsumexp(known)


def p_first(logprobs: Sequence[float | None], variants: Sequence[str] = CONTINUATIONS) -> float:
    """P(candidate 1 preferred): softmax over the two choices' (variant-summed) log-probabilities."""
    lp1 = choice_logprob(logprobs, variants, 1)
    lp2 = choice_logprob(logprobs, variants, 2)
    if lp1 == -math.inf and lp2 == -math.inf:
        raise Abstain("both '1' and '2' have probability zero")
    return 1.0 / (1.0 + math.exp(lp2 - lp1)) if lp2 - lp1 < 700 else 0.0


def p_better_first(logprobs: Sequence[float | None], inverted: bool = False,
                   variants: Sequence[str] = CONTINUATIONS) -> float:
    """P(candidate 1 is the better one). ``inverted``: the question asked for the WORSE one (harmless
    labeling asks which response is more harmful), so the answer's P(1) is P(candidate 1 is worse) and
    the better-one probability is 1 - P(1). Raises Abstain like ``p_first``."""
    p1 = p_first(logprobs, variants)
    return 1.0 - p1 if inverted else p1


def to_p_a(p1: float, swapped: bool) -> float:
    """Maps P(candidate 1) back to P(a preferred): in the swapped order candidate 1 is b."""
    return 1.0 - p1 if swapped else p1


def combine(p_a_ab: float, p_a_ba: float | None) -> float:
    """The soft label: the mean of the two orders' P(a) (or the single order's, when only one ran)."""
    return p_a_ab if p_a_ba is None else (p_a_ab + p_a_ba) / 2.0


def chosen(p_a: float) -> str:
    """'a' when P(a) >= 0.5, else 'b' (a tie goes to a; ties are rare with float log-probabilities)."""
    return "a" if p_a >= 0.5 else "b"


def same_position(p_a_ab: float, p_a_ba: float) -> bool:
    """True when the labeler picked the same position (1 or 2) in both orders.

    In order AB, position 1 is a: picks 1 iff P(a) >= 0.5. In order BA, position 1 is b: picks 1 iff
    P(a) < 0.5. Same position: both picked 1, or both picked 2.
    """
    return (p_a_ab >= 0.5) == (p_a_ba < 0.5)


def same_position_winner(p_a_ab: float, p_a_ba: float, inverted: bool = False) -> str | None:
    """Which position the labeler's answer named in both orders: "first", "second", or None (not the
    same position). ``inverted``: the prompt asked for the worse candidate (harmless), so the answer
    named the position NOT preferred; counting the answer, not the preference, shows the labeler's own
    position bias alike for every task."""
    if not same_position(p_a_ab, p_a_ba):
        return None
    preferred_first = p_a_ab >= 0.5
    return "first" if preferred_first != inverted else "second"
