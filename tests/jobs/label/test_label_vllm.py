"""Labeling with the real in-process vLLM engine (SmolLM2-135M-Instruct, float32, shared per session)."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
from label_helpers import config, pairs, read_jsonl, swapped, write_jsonl

from rlaif_jobs.feedback.scoring import CONTINUATIONS
from rlaif_jobs.label import main, merge

pytestmark = pytest.mark.slow


def test_engine_scores_continuations_like_transformers(smollm2_vllm_engine, tmp_path):
    """vLLM's log-probabilities (including the two-token " 1" = " " + "1") match a plain forward pass."""
    from rlaif_jobs.feedback import open_engine

    prompts = ["<|im_start|>user\nPick 1 or 2.<|im_end|>\n<|im_start|>assistant\nAnswer=",
               "The best number is", "Preferred Summary="]
    continuations = [*CONTINUATIONS, "10"]
    got = smollm2_vllm_engine.continuation_logprobs(prompts, continuations)
    hf = open_engine(config("x", tmp_path, engine="transformers", labeler={"batchSize": 4}).labeler)
    try:
        want = hf.continuation_logprobs(prompts, continuations)
        (text, n), = hf.generate(["The capital of France is"], max_tokens=5)
    finally:
        hf.close()
    for g_row, w_row in zip(got, want, strict=True):
        assert all(g is not None and g < 0 for g in g_row)
        assert g_row == pytest.approx(w_row, abs=2e-3)
    assert smollm2_vllm_engine.generate(["The capital of France is"], max_tokens=5) == [(text, n)]
    assert 0 < n <= 5


def test_soft_labels_in_range_and_flip_when_candidates_swap(smollm2_vllm_engine, tmp_path):
    rows = pairs(9)
    fwd = main(config(write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "fwd"), engine=smollm2_vllm_engine)
    rev = main(config(write_jsonl(tmp_path / "s.jsonl", swapped(rows)), tmp_path / "rev"),
               engine=smollm2_vllm_engine)
    a = read_jsonl(tmp_path / "fwd" / "labels.jsonl")
    b = read_jsonl(tmp_path / "rev" / "labels.jsonl")
    assert [r["id"] for r in a] == [r["id"] for r in b] == [r["id"] for r in rows]
    for x, y in zip(a, b, strict=True):
        for key in ("pA", "pAOrderAB", "pAOrderBA"):
            assert 0.0 <= x[key] <= 1.0
        # swapping the candidates turns order AB into order BA: the soft label flips exactly
        assert y["pA"] == pytest.approx(1.0 - x["pA"], abs=1e-4)
        assert y["pAOrderAB"] == pytest.approx(1.0 - x["pAOrderBA"], abs=1e-4)
        assert x["pA"] == pytest.approx((x["pAOrderAB"] + x["pAOrderBA"]) / 2)
        assert x["chosen"] == ("a" if x["pA"] >= 0.5 else "b")
        assert x["labeler"] == "builtin://smollm2-135m-instruct" and len(x["promptHash"]) == 16
        assert x["rationale"] is None
    m = fwd["metrics"]
    assert m["labeled"] == 9 and m["abstained"] == 0 and m["skipped"] == 0
    assert 0 <= m["alignment"] <= 1 and 0 <= m["samePositionRate"] <= 1 and m["inputTokens"] > 9 * 2 * 50
    # SmolLM2 prefers one position whatever the content (it named the same position on every pair when
    # measured on this data): the metric must show it
    assert m["samePositionRate"] >= 0.75
    # ... and which position its answer named there: by hand from the labels (harmless asks for the
    # more harmful, so there the named position is the one NOT preferred)
    named = []
    for x in a:
        first_preferred = x["pAOrderAB"] >= 0.5
        if first_preferred == (x["pAOrderBA"] < 0.5):  # the same position twice
            named.append(first_preferred != (x["task"] == "harmless"))
    assert m["samePositionRate"] == pytest.approx(len(named) / len(a))
    assert m["samePositionFirstShare"] == pytest.approx(sum(named) / len(named))
    assert m["samePositionFirstShare"] + m["samePositionSecondShare"] == pytest.approx(1.0)
    assert set(fwd["alignmentByTask"]) == {r["task"] for r in rows}
    assert m["pairsPerSecond"] > 0 and m["elapsedSeconds"] > 0
    # and alignment with the flipped human labels is the same: a label is about content, not sides
    assert rev["metrics"]["alignment"] == pytest.approx(m["alignment"])
    assert smollm2_vllm_engine.prefix_cache_hit_rate() > 0.2  # the shared preamble is served from cache


def test_single_order_leaves_per_order_fields_null(smollm2_vllm_engine, tmp_path):
    cfg = config(write_jsonl(tmp_path / "d.jsonl", pairs(3)), tmp_path / "o", prompt={"bothOrders": False},
                 outputFormat="parquet")
    summary = main(cfg, engine=smollm2_vllm_engine)
    table = pq.read_table(tmp_path / "o" / "labels.parquet").to_pylist()
    assert len(table) == 3 and summary["outputs"]["labels"].endswith("labels.parquet")
    assert all(r["pAOrderAB"] is None and r["pAOrderBA"] is None and 0 <= r["pA"] <= 1 for r in table)
    assert "samePositionRate" not in summary["metrics"]


def test_chain_of_thought_decodes_a_rationale_then_scores(smollm2_vllm_engine, tmp_path):
    cfg = config(write_jsonl(tmp_path / "d.jsonl", pairs(2)), tmp_path / "cot",
                 prompt={"preamble": "detailed", "chainOfThought": {"enabled": True, "maxTokens": 16}})
    summary = main(cfg, engine=smollm2_vllm_engine)
    labels = read_jsonl(tmp_path / "cot" / "labels.jsonl")
    assert len(labels) == 2
    for r in labels:
        assert r["rationale"] and r["rationaleOrderBA"]  # greedy text for each order
        assert 0 <= r["pA"] <= 1
    m = summary["metrics"]
    assert 2 * 2 <= m["outputTokens"] <= 2 * 2 * 16
    # two calls per pair and order: the scoring prompt repeats the rationale prompt plus the rationale
    assert m["inputTokens"] > 2 * 2 * 2 * 300


def test_shards_then_merge_equal_one_shard(smollm2_vllm_engine, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", pairs(8))
    one = main(config(data, tmp_path / "one"), engine=smollm2_vllm_engine)
    cfg = config(data, tmp_path / "three", numShards=3)
    for index in (2, 0, 1):  # any order: pods finish when they finish
        stats = main(cfg, engine=smollm2_vllm_engine, shard_index=index)
        assert stats["shardIndex"] == index
    assert not (tmp_path / "three" / "labels.jsonl").exists()  # several shards: merging is its own step
    three = merge(cfg)
    a = read_jsonl(tmp_path / "one" / "labels.jsonl")
    b = read_jsonl(tmp_path / "three" / "labels.jsonl")
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if not k.startswith("pA")} == {
            k: v for k, v in y.items() if not k.startswith("pA")}
        assert y["pA"] == pytest.approx(x["pA"], abs=1e-4)
    for key in ("labeled", "abstained", "skipped", "alignment", "samePositionRate", "inputTokens"):
        assert three["metrics"][key] == pytest.approx(one["metrics"][key], abs=1e-3)


def test_empty_response_is_skipped_and_counted(smollm2_vllm_engine, tmp_path):
    rows = pairs(3)
    rows[1] = {**rows[1], "responseB": "   "}
    summary = main(config(write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "o"), engine=smollm2_vllm_engine)
    assert [r["id"] for r in read_jsonl(tmp_path / "o" / "labels.jsonl")] == [rows[0]["id"], rows[2]["id"]]
    (skipped,) = read_jsonl(tmp_path / "o" / "abstained.jsonl")
    assert skipped["id"] == rows[1]["id"] and skipped["kind"] == "skipped"
    assert skipped["reason"] == "empty responseB"
    assert summary["metrics"]["skipped"] == 1 and summary["metrics"]["labeled"] == 2


def test_prompt_longer_than_the_context_abstains_with_the_reason(smollm2_vllm_engine, tmp_path):
    rows = pairs(2)
    rows[0] = {**rows[0], "context": "word " * 3000}
    summary = main(config(write_jsonl(tmp_path / "d.jsonl", rows), tmp_path / "o"), engine=smollm2_vllm_engine)
    (abst,) = read_jsonl(tmp_path / "o" / "abstained.jsonl")
    assert abst["kind"] == "abstained" and "exceeds maxModelLen 2048" in abst["reason"]
    assert summary["metrics"]["abstained"] == 1 and summary["metrics"]["labeled"] == 1
    assert not math.isnan(summary["metrics"]["pairsPerSecond"])
