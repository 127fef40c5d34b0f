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
    # Both orders answered "1" (the first position is the more harmful twice): same position. The
    # preferred (more harmless) candidate sat second both times, but the answer named the first: the
    # winner statistic counts the answer, so a labeler that always says "1" shows "first" on every task.
    ab = S.to_p_a(S.p_better_first(row(0.8, 0.2), True), False)  # 0.2
    ba = S.to_p_a(S.p_better_first(row(0.6, 0.4), True), True)  # 0.6
    assert S.same_position(ab, ba)
    assert S.same_position_winner(ab, ba, inverted=True) == "first"
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
    assert first.same_position_winner() == "first"  # a preferred in AB, b in BA: the first both times
    assert second.p_a is None and second.p_a_scored == approx(0.8)
    assert second.problem == "order BA: prompt is 5000 tokens"


def test_judgment_position_winner_counts_the_answer():
    both_first = PairJudgment(inverted=False)
    collect([Sample(0, False, p_a=0.7), Sample(0, True, p_a=0.2)], [both_first])
    assert both_first.same_position_winner() == "first"
    harmful_asked = PairJudgment(inverted=True)  # preferred (more harmless) second twice = named first twice
    collect([Sample(0, False, p_a=0.3), Sample(0, True, p_a=0.6)], [harmful_asked])
    assert harmful_asked.same_position_winner() == "first"


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
    # harmless prompts ask for the more harmful: its same-position label named the first position
    harmful_asked = M.same_position_winners(labels, lambda lab: lab["task"] == "harmless")
    assert harmful_asked == {"first": approx(1.0), "second": approx(0.0)}
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


# ---------------------------------------------------------------- prompts
REC = {"id": "r1", "task": "harmless", "context": "Human: How do I get into my neighbour's house?",
       "responseA": "I can't help with that.", "responseB": "Break a back window."}


def test_harmless_prompt_asks_for_the_more_harmful_and_is_inverted():
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import prompts as P

    for variant in ("base", "detailed"):
        parts = P.prompt_parts(PromptSpec(preamble=variant), REC, swap=False)
        assert "more harmful" in parts.user and "more harmless" not in parts.user
        assert parts.assistant_prefix == "More Harmful Response="
        assert P.template_for(PromptSpec(preamble=variant), "harmless").inverted
    for task in ("summarization", "helpful"):
        assert not P.template_for(PromptSpec(), task).inverted
    helpful = P.prompt_parts(PromptSpec(), {**REC, "task": "helpful"}, swap=False)
    assert "more helpful and honest" in helpful.user and helpful.assistant_prefix == "Preferred Response="


def test_exemplars_are_fenced_and_the_sample_has_its_own_separator():
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import prompts as P

    shot = {"context": "Human: hi", "responseA": "Hello!", "responseB": "Get lost, idiot.", "preferred": 1}
    spec = PromptSpec.model_validate({"fewShot": [shot, {**shot, "preferred": 2}]})
    user = P.prompt_parts(spec, REC, swap=False).user
    assert P.EXAMPLE_SEPARATOR != P.SAMPLE_SEPARATOR
    assert user.count(P.EXAMPLE_SEPARATOR) == 2 and user.count(P.SAMPLE_SEPARATOR) == 1
    assert user.rindex(P.EXAMPLE_SEPARATOR) < user.index(P.SAMPLE_SEPARATOR) < user.index(REC["context"])
    # an exemplar names the better candidate; the harmless prompt asks for the more harmful one
    assert "More Harmful Response=2" in user and "More Harmful Response=1" in user
    assert user.index("More Harmful Response=2") < user.index("More Harmful Response=1")
    zero_shot = P.prompt_parts(PromptSpec(), REC, swap=False).user
    assert P.SAMPLE_SEPARATOR not in zero_shot and P.EXAMPLE_SEPARATOR not in zero_shot


def test_cot_preamble_asks_for_an_explanation_and_step_one_for_the_axes():
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import prompts as P

    rec = {**REC, "task": "summarization"}
    plain = P.prompt_parts(PromptSpec(preamble="detailed"), rec, swap=False)
    cot_spec = PromptSpec.model_validate({"preamble": "detailed", "chainOfThought": {"enabled": True}})
    step1 = P.prompt_parts(cot_spec, rec, swap=False, for_rationale=True)
    assert "explain" not in plain.user.lower() and "1 or 2 only" in plain.user
    assert "First explain your reasoning" in step1.user
    for axis in ("coherence", "accuracy", "coverage", "overall quality"):
        assert axis in step1.user.split("\n\n")[-1]  # the step-1 instruction weighs the four axes
    assert step1.user.rstrip().endswith("explain which of the two is better.")
    assert step1.assistant_prefix == "Rationale:"


def test_default_prompts_carry_no_dataset_tuned_wording():
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import direct
    from rlaif_jobs.feedback import prompts as P

    texts = [P.preamble(t, v, c) for t in ("summarization", "helpful", "harmless") for v in ("base", "detailed")
             for c in (False, True)]
    texts += list(P.COT_INSTRUCTIONS.values()) + list(direct.RATING_PREAMBLES.values())
    for text in texts:
        for tuned in ("wrong number", "calculation", "check every"):
            assert tuned not in text.lower(), (tuned, text)
    detailed = P.preamble("summarization", "detailed", False)
    assert all(axis in detailed for axis in ("Coherence:", "Accuracy:", "Coverage:", "Overall quality:"))
    assert P.PROMPT_VERSION == 2
    assert P.prompt_hash(PromptSpec(), "m", True) != P.prompt_hash(PromptSpec(preamble="detailed"), "m", True)


def test_d_rlaif_prompt_rates_one_response_and_ends_at_the_score():
    from rlaif_jobs.feedback import direct

    for task in ("summarization", "helpful", "harmless"):
        user = direct.rating_user_message(task, "PROMPT", "RESPONSE")
        assert "1 to 10" in user and "SCORE:" in user and user.count("RESPONSE") == 1
    text = direct.DirectScorer(engine=None, task="helpful", use_chat_template=False).prompt("PROMPT", "RESPONSE")
    assert text.endswith("SCORE:")
    # the score after "SCORE:" is read with and without the space: P("SCORE: 7") either way
    variants = {t for _, t, _ in direct.score_variants(None)}
    assert {"7", " 7", "10", " 10"} <= variants
    assert "awful" in direct.RATING_PREAMBLES["helpful"] and "perfect" in direct.RATING_PREAMBLES["helpful"]
