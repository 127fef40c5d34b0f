"""Win rate of the trained policy against the SFT policy, judged pairwise by an AI labeler.

For each held-out prompt, one response from each policy; the judge (a ``rlaif_jobs.feedback`` Engine,
prompted exactly as the labeling stage prompts it: rlaif_jobs.feedback.pairwise) gives P(policy better)
in both orders, and the two are averaged to cancel position bias. A prompt is a win (1) when that
average is above 0.5, a loss (0) below, a tie (0.5) at exactly 0.5. ``winRate`` is the mean outcome.

Length-controlled win rate: a logistic regression of the outcome on x = log(len_policy / len_SFT)
(tokens), read at a length ratio of 1.0 (x = 0), so a policy that wins only by writing longer
answers gets no credit for the length. Fitted by Newton's method with a small ridge penalty (the
outcomes can be separable on a few dozen prompts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fit_logistic(x: Sequence[float], y: Sequence[float], ridge: float = 1e-3, iters: int = 50
                 ) -> tuple[float, float]:
    """(a, b) maximising sum y log s(a + b x) + (1 - y) log(1 - s(a + b x)) - ridge/2 (a^2 + b^2).

    ``y`` may be fractional (a tie counts 0.5). Newton's method on two parameters; pure Python.
    """
    a = b = 0.0
    for _ in range(iters):
        ga = gb = 0.0
        haa = hab = hbb = 0.0
        for xi, yi in zip(x, y, strict=True):
            p = 1.0 / (1.0 + math.exp(-(a + b * xi)))
            r = yi - p
            ga += r
            gb += r * xi
            w = p * (1.0 - p)
            haa += w
            hab += w * xi
            hbb += w * xi * xi
        ga -= ridge * a
        gb -= ridge * b
        haa += ridge
        hbb += ridge
        det = haa * hbb - hab * hab
        if det <= 0:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a += da
        b += db
        if abs(da) < 1e-10 and abs(db) < 1e-10:
            break
    return a, b


def length_controlled_win_rate(outcomes: Sequence[float], policy_lengths: Sequence[int],
                               sft_lengths: Sequence[int]) -> float:
    """The fitted P(win) at length ratio 1.0 (see the module docstring). Lengths are floored at 1."""
    x = [math.log(max(p, 1) / max(s, 1)) for p, s in zip(policy_lengths, sft_lengths, strict=True)]
    a, _ = fit_logistic(x, outcomes)
    return 1.0 / (1.0 + math.exp(-a))


def outcome(p_policy: float) -> float:
    """1 for a win (P(policy better) > 0.5), 0 for a loss, 0.5 for an exact tie."""
    return 1.0 if p_policy > 0.5 else 0.0 if p_policy < 0.5 else 0.5


def judge_pairs(judge: Any, contexts: list[str], policy: list[str], sft: list[str], tasks: list[str | None],
                default_task: str, use_chat_template: bool) -> list[float]:
    """P(policy's response better than SFT's) per prompt, averaged over both orders.

    The feedback package's pairwise judge (rlaif_jobs.feedback.judge_pairs) with the labeling stage's
    prompt (Base preamble, 0-shot, the record's task wording); the policy's response is candidate a.
    A pair the judge cannot score in some order uses the other order; in neither, it counts 0.5.
    """
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import judge_pairs as judge_feedback

    records = [{"context": c, "responseA": a, "responseB": b, "task": t}
               for c, a, b, t in zip(contexts, policy, sft, tasks, strict=True)]
    judgments = judge_feedback(judge, records, PromptSpec(task=default_task), use_chat_template=use_chat_template)
    return [0.5 if j.p_a_scored is None else j.p_a_scored for j in judgments]


def win_rates(p_policy: Sequence[float], policy_lengths: Sequence[int], sft_lengths: Sequence[int]
              ) -> dict[str, float]:
    """winRate, lcWinRate (length-controlled), meanPolicyPreference and the mean length ratio."""
    outcomes = [outcome(p) for p in p_policy]
    n = len(outcomes)
    ratio = sum(max(p, 1) / max(s, 1) for p, s in zip(policy_lengths, sft_lengths, strict=True)) / n
    return {"winRate": sum(outcomes) / n,
            "lcWinRate": length_controlled_win_rate(outcomes, policy_lengths, sft_lengths),
            "meanPolicyPreference": sum(p_policy) / n,
            "evalLengthRatio": ratio,
            "evalPrompts": float(n)}
