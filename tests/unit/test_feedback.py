"""Pure pieces of rlaif_jobs.feedback: harmless inversion, the judges' aggregation, position statistics."""

from __future__ import annotations

import math

import pytest
from pytest import approx

from rlaif_jobs.feedback import scoring as S
from rlaif_jobs.feedback.pairwise import PairJudgment, Sample, collect
from rlaif_jobs.feedback.single import NUMBERINGS, harmless_from
from rlaif_jobs.label import metrics as M

LN = math.log


def row(p1: float, p2: float) -> list[float | None]:
    """Log-probabilities of CONTINUATIONS ("1", " 1", "2", " 2") with all the mass on the bare digits."""
    return [LN(p1), None, LN(p2), None]


# ---------------------------------------------------------------- harmless inversion
def test_harmless_inversion_by_hand():
    # Order AB (a shown first): the labeler says candidate 1 (= a) is MORE HARMFUL with P = 0.9
    # (unnormalised 0.45 vs 0.05), so P(a more harmless) = 1 - 0.9 = 0.1.
    ab = S.to_p_a(S.p_better_first(row(0.45, 0.05), inverted=True), swapped=False)
    assert ab == approx(0.1)
    # Order BA (b shown first): candidate 1 (= b) more harmful with P = 0.7, so P(b more harmless) = 0.3
    # and P(a more harmless) = 0.7.
    ba = S.to_p_a(S.p_better_first(row(0.7, 0.3), inverted=True), swapped=True)
    assert ba == approx(0.7)
    assert S.combine(ab, ba) == approx(0.4)
    # The same answers read as "which is better" (helpful) give the opposite label.
    assert S.combine(S.to_p_a(S.p_better_first(row(0.45, 0.05)), False),
                     S.to_p_a(S.p_better_first(row(0.7, 0.3)), True)) == approx(0.6)


def test_inversion_keeps_the_same_position_rate():
    # Both orders answered "1" (the first position is the more harmful twice): same position, and
    # after inversion the SECOND position is the preferred (more harmless) one.
    ab = S.to_p_a(S.p_better_first(row(0.8, 0.2), True), False)  # 0.2
    ba = S.to_p_a(S.p_better_first(row(0.6, 0.4), True), True)  # 0.6
    assert S.same_position(ab, ba)
    assert S.same_position_winner(ab, ba) == "second"
    assert S.same_position_winner(0.9, 0.2) == "first"
    assert S.same_position_winner(0.9, 0.8) is None


# ---------------------------------------------------------------- pairwise aggregation
def test_collect_averages_samples_then_orders():
    judgments = [PairJudgment(), PairJudgment()]
    collect([
        # record 0: self-consistency, 3 samples in AB (one abstained), 2 in BA
        Sample(0, False, rationale="r1", p_a=0.9), Sample(0, False, rationale="r2", p_a=0.6),
        Sample(0, False, rationale="r3", problem="no probability for '1'"),
        Sample(0, True, rationale="s1", p_a=0.2), Sample(0, True, rationale="s2", p_a=0.4),
        # record 1: BA could not be scored
        Sample(1, False, p_a=0.8), Sample(1, True, problem="prompt is 5000 tokens"),
    ], judgments)
    first, second = judgments
    assert first.p_a_ab == approx(0.75) and first.p_a_ba == approx(0.3)
    assert first.p_a == approx(0.525) and first.problem is None
    assert first.orders["AB"].rationales == ["r1", "r2", "r3"]
    assert second.p_a is None and second.p_a_scored == approx(0.8)
    assert second.problem == "order BA: prompt is 5000 tokens"


def test_single_order_and_skipped():
    one = [PairJudgment()]
    collect([Sample(0, False, p_a=0.3)], one)
    assert one[0].p_a == approx(0.3) and one[0].p_a_ba is None
    skipped = PairJudgment(skipped="empty responseB")
    assert skipped.p_a is None and skipped.problem == "empty responseB"


# ---------------------------------------------------------------- single-response harmless judge
def test_harmless_verdict_both_numberings_by_hand():
    assert NUMBERINGS == ("harmful=1", "harmless=1")
    # "harmful=1": P(answer 1) = 0.25 -> P(harmless) = 0.75; "harmless=1": P(answer 1) = 0.55.
    j = harmless_from([row(0.1, 0.3), row(0.55, 0.45)])
    assert j.by_numbering == {"harmful=1": approx(0.75), "harmless=1": approx(0.55)}
    assert j.p_harmless == approx(0.65)
    # one numbering unreadable: the other stands alone; none: no verdict, with the reasons
    lone = harmless_from([[None, None, LN(0.5), None], row(0.2, 0.6)])
    assert lone.p_harmless == approx(0.25) and len(lone.problems) == 1
    assert harmless_from([[None] * 4, [None] * 4]).p_harmless is None


# ---------------------------------------------------------------- label summary metrics
def lab(task, p_ab, p_ba, human):
    p = (p_ab + p_ba) / 2
    return {"task": task, "pA": p, "pAOrderAB": p_ab, "pAOrderBA": p_ba, "chosen": S.chosen(p),
            "humanPreference": human}


def test_position_winners_and_alignment_by_task():
    labels = [lab("helpful", 0.9, 0.2, "a"),   # same position: first (a first, then b first)
              lab("helpful", 0.8, 0.1, "b"),   # same: first
              lab("harmless", 0.3, 0.6, "b"),  # same: second
              lab("harmless", 0.9, 0.9, "a"),  # consistent: not same position
              ]
    assert M.same_position_rate(labels) == approx(0.75)
    assert M.same_position_winners(labels) == {"first": approx(2 / 3), "second": approx(1 / 3)}
    # chosen: 0.55 -> a (right), 0.45 -> b (right), 0.45 -> b (right), 0.9 -> a (right)
    assert M.alignment_by_task(labels) == {"harmless": 1.0, "helpful": 1.0}
    assert M.alignment_by_task([lab(None, 0.9, 0.9, "b")]) == {"default": 0.0}
    assert M.same_position_winners([lab("helpful", 0.9, 0.9, "a")]) is None


@pytest.mark.parametrize("temperature, samples, ok", [(0.0, 1, True), (0.7, 4, True), (0.0, 4, False)])
def test_self_consistency_needs_temperature(temperature, samples, ok):
    from pydantic import ValidationError

    from rlaif_jobs.config.label import ChainOfThought

    data = {"enabled": True, "temperature": temperature, "samples": samples}
    if ok:
        assert ChainOfThought.model_validate(data).samples == samples
    else:
        with pytest.raises(ValidationError, match="chainOfThought.temperature"):
            ChainOfThought.model_validate(data)
