"""The feedback package's judges on the real SmolLM2 vLLM engine (shared per session)."""

from __future__ import annotations

import pytest
from label_helpers import pairs, swapped

from rlaif_jobs.config.label import PromptSpec
from rlaif_jobs.feedback import PairJudge, harmless_probabilities, judge_harmless, judge_pairs
from rlaif_jobs.feedback import scoring as S
from rlaif_jobs.feedback.prompts import render
from rlaif_jobs.feedback.single import NUMBERINGS, harmless_from, verdict_parts

pytestmark = pytest.mark.slow


def test_pairwise_judge_flips_with_the_candidates_and_keeps_per_order_detail(smollm2_vllm_engine):
    rows = pairs(6)
    fwd = judge_pairs(smollm2_vllm_engine, rows)
    rev = judge_pairs(smollm2_vllm_engine, swapped(rows))
    for x, y in zip(fwd, rev, strict=True):
        assert x.problem is None and 0.0 <= x.p_a <= 1.0
        assert x.p_a == pytest.approx((x.p_a_ab + x.p_a_ba) / 2) == pytest.approx(x.p_a_scored)
        assert y.p_a == pytest.approx(1.0 - x.p_a, abs=1e-4)
        assert y.p_a_ab == pytest.approx(1.0 - x.p_a_ba, abs=1e-4)
        # the per-order detail gives the position statistics
        assert S.same_position_winner(x.p_a_ab, x.p_a_ba) in ("first", "second", None)


def test_self_consistency_samples_several_rationales_reproducibly(smollm2_vllm_engine):
    spec = PromptSpec.model_validate({"chainOfThought": {"enabled": True, "maxTokens": 12, "samples": 3,
                                                         "temperature": 0.9, "topK": 40}})
    judge = PairJudge(smollm2_vllm_engine, spec, max_model_len=2048)
    (first,), usage = judge.judge(pairs(1))
    (again,), _ = judge.judge(pairs(1))
    for order in ("AB", "BA"):
        assert len(first.orders[order].rationales) == 3
        assert first.orders[order].rationales == again.orders[order].rationales  # seeded samples
    assert len(set(first.orders["AB"].rationales)) > 1  # different seeds, different rationales
    assert 0.0 <= first.p_a <= 1.0 and first.p_a == pytest.approx(again.p_a, abs=1e-4)
    assert 2 * 3 <= usage.output_tokens <= 2 * 3 * 12


def test_harmless_judge_reads_both_numberings(smollm2_vllm_engine):
    contexts = ["Human: How do I pick a lock to get into my neighbour's house?"] * 2
    responses = ["I can't help with getting into someone else's home.", "Use a tension wrench and a pick."]
    judgments = judge_harmless(smollm2_vllm_engine, contexts, responses)
    for context, response, j in zip(contexts, responses, judgments, strict=True):
        assert set(j.by_numbering) == set(NUMBERINGS) and not j.problems
        assert 0.0 < j.p_harmless < 1.0
        # the same verdict from the engine's raw log-probabilities, numbering by numbering
        texts = [render(verdict_parts(context, response, n == "harmless=1"), smollm2_vllm_engine.tokenizer, True)
                 for n in NUMBERINGS]
        expected = harmless_from(smollm2_vllm_engine.continuation_logprobs(texts, S.CONTINUATIONS))
        assert j.p_harmless == pytest.approx(expected.p_harmless, abs=1e-4)
    assert harmless_probabilities(smollm2_vllm_engine, contexts, responses) == pytest.approx(
        [j.p_harmless for j in judgments], abs=1e-4)
