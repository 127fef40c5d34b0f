"""Pure pieces of labeling: prompts, variant handling, softmax over 1/2, position bias, shards, merge."""

from __future__ import annotations

import json
import math

import pytest

from rlaif_jobs.config.label import LabelConfig, PromptSpec
from rlaif_jobs.data import DatasetError
from rlaif_jobs.datasets import generate
from rlaif_jobs.feedback import prompts as P
from rlaif_jobs.feedback import scoring as S
from rlaif_jobs.feedback.engines.base import token_continuation_logprobs
from rlaif_jobs.label import metrics as M
from rlaif_jobs.label.job import MergeError, merge, shard_bounds, shard_index_for
from rlaif_jobs.label.store import ShardStore, StoreError

REC = {"id": "r1", "task": "helpful", "context": "Human: What is 2 plus 2?", "responseA": "2 + 2 = 4.",
       "responseB": "2 + 2 = 5."}


# ---------------------------------------------------------------- prompts
def test_prompt_shows_candidates_in_order_and_swapped():
    spec = PromptSpec(task="summarization")
    ab = P.prompt_parts(spec, {**REC, "task": None}, swap=False)
    ba = P.prompt_parts(spec, {**REC, "task": None}, swap=True)
    assert "Summary 1 - 2 + 2 = 4.\nSummary 2 - 2 + 2 = 5." in ab.user
    assert "Summary 1 - 2 + 2 = 5.\nSummary 2 - 2 + 2 = 4." in ba.user
    assert ab.assistant_prefix == ba.assistant_prefix == "Preferred Summary="
    assert ab.user.startswith(P.preamble("summarization", "base", cot=False))


def test_record_task_picks_wording_unless_disabled():
    assert "Response 1 - " in P.prompt_parts(PromptSpec(task="summarization"), REC, False).user
    off = PromptSpec(task="summarization", task_from_record=False)
    assert "Summary 1 - " in P.prompt_parts(off, REC, False).user
    detailed = P.prompt_parts(PromptSpec(preamble="detailed"), {**REC, "task": "harmless"}, False)
    assert detailed.user.startswith(P.preamble("harmless", "detailed", cot=False))
    assert detailed.assistant_prefix == "More Harmful Response="


def test_few_shot_and_cot_parts():
    spec = PromptSpec.model_validate({
        "task": "helpful", "chainOfThought": {"enabled": True},
        "fewShot": [{"context": "Human: 1+1?", "responseA": "3", "responseB": "2", "preferred": 2,
                     "rationale": "1+1 is 2."}]})
    step1 = P.prompt_parts(spec, REC, False, for_rationale=True)
    assert P.EXAMPLE_SEPARATOR in step1.user and "Rationale: 1+1 is 2.\nPreferred Response=2" in step1.user
    assert step1.user.index(P.EXAMPLE_SEPARATOR) < step1.user.index(P.SAMPLE_SEPARATOR) < step1.user.index(
        REC["context"])
    assert step1.user.endswith(P.COT_INSTRUCTIONS["helpful"]) and step1.assistant_prefix == "Rationale:"
    step2 = P.prompt_parts(spec, REC, False, rationale=" Response 1 is right. ")
    assert step2.user == step1.user
    assert step2.assistant_prefix == "Rationale: Response 1 is right.\n\nPreferred Response="


def test_custom_template_keeps_braces_in_user_text():
    spec = PromptSpec.model_validate({"task": "custom", "template": {
        "preamble": "Pick the better JSON.", "sample": "In: {context}\nA: {response1}\nB: {response2}",
        "ending": "Better="}})
    parts = P.prompt_parts(spec, {**REC, "responseA": '{"x": 1}', "task": "helpful"}, swap=False)
    assert 'A: {"x": 1}' in parts.user and parts.assistant_prefix == "Better="


def test_custom_template_may_ask_for_the_worse_candidate():
    worse = PromptSpec.model_validate({"task": "custom", "chainOfThought": {"enabled": True}, "template": {
        "preamble": "Which reply is more harmful?", "sample": "{context}\n1: {response1}\n2: {response2}",
        "ending": "More harmful=", "asks": "worse"}})
    t = P.template_for(worse)
    assert t.inverted and t.cot_instruction == P.COT_INSTRUCTIONS["custom-worse"]
    # the answer "1 is worse" with P = 0.8 is P(1 is better) = 0.2, as for the built-in harmless prompt
    assert S.p_better_first([math.log(0.8), None, math.log(0.2), None], inverted=t.inverted) == pytest.approx(0.2)
    better = worse.model_copy(update={"template": worse.template.model_copy(update={"asks": "better"})})
    assert not P.template_for(better).inverted
    with pytest.raises(ValueError, match="asks"):
        PromptSpec.model_validate({"task": "custom", "template": {
            "preamble": "p", "sample": "{context}{response1}{response2}", "asks": "more harmful"}})


def test_a_custom_template_written_before_asks_keeps_its_prompt_hash():
    plain = {"preamble": "p", "sample": "{context}{response1}{response2}"}
    before = PromptSpec.model_validate({"task": "custom", "template": plain})
    explicit = PromptSpec.model_validate({"task": "custom", "template": {**plain, "asks": "better"}})
    worse = PromptSpec.model_validate({"task": "custom", "template": {**plain, "asks": "worse"}})
    assert P.prompt_hash(before, "m", True) == P.prompt_hash(explicit, "m", True) != P.prompt_hash(worse, "m", True)


def test_render_with_chat_template_puts_ending_in_the_assistant_turn():
    from transformers import AutoTokenizer

    from rlaif_jobs.models.resolve import resolve_model_uri

    tok = AutoTokenizer.from_pretrained(resolve_model_uri("builtin://smollm2-135m-instruct"))
    parts = P.prompt_parts(PromptSpec(), REC, False)
    text = P.render(parts, tok, use_chat_template=True)
    assert text.endswith("<|im_start|>assistant\nPreferred Response=")
    assert P.render(parts, tok, use_chat_template=False) == parts.user + "\n\nPreferred Response="


def test_prompt_hash_changes_with_settings():
    base = P.prompt_hash(PromptSpec(), "m", True)
    assert base == P.prompt_hash(PromptSpec(), "m", True)
    assert base != P.prompt_hash(PromptSpec(preamble="detailed"), "m", True)
    assert base != P.prompt_hash(PromptSpec(), "other", True)
    assert base != P.prompt_hash(PromptSpec(), "m", False)
    # endpoint.api chat (one user message, the server's template) is another prompt; completions is the old hash
    chat = P.prompt_hash(PromptSpec(), "m", True, "chat")
    assert base == P.prompt_hash(PromptSpec(), "m", True, "completions") != chat


# ---------------------------------------------------------------- scoring
def test_softmax_over_one_and_two_sums_variants():
    lp = [math.log(0.2), math.log(0.1), math.log(0.05), math.log(0.05)]  # "1", " 1", "2", " 2"
    assert S.p_first(lp) == pytest.approx(0.3 / 0.4)
    # variants are matched by text, not by position
    assert S.p_first([lp[2], lp[0]], ["2", "1"]) == pytest.approx(0.2 / 0.25)


def test_missing_variant_uses_the_known_one_missing_choice_abstains():
    assert S.p_first([math.log(0.3), None, math.log(0.1), None]) == pytest.approx(0.75)
    with pytest.raises(S.Abstain, match="'2'"):
        S.p_first([math.log(0.3), math.log(0.1), None, None])
    with pytest.raises(S.Abstain, match="probability zero"):
        S.p_first([-math.inf, None, -math.inf, None])


def test_extreme_logprobs_stay_in_range():
    assert S.p_first([0.0, None, -2000.0, None]) == 1.0
    assert S.p_first([-2000.0, None, 0.0, None]) == 0.0


def test_orders_map_back_and_combine():
    assert S.to_p_a(0.8, swapped=False) == 0.8
    assert S.to_p_a(0.8, swapped=True) == pytest.approx(0.2)
    assert S.combine(0.9, 0.5) == pytest.approx(0.7)
    assert S.combine(0.9, None) == 0.9
    assert S.chosen(0.5) == "a" and S.chosen(0.49) == "b"


@pytest.mark.parametrize("p_ab,p_ba,same", [
    (0.9, 0.1, True),   # picked position 1 both times (a, then b)
    (0.1, 0.9, True),   # picked position 2 both times
    (0.9, 0.8, False),  # picked a both times: content, not position
    (0.2, 0.3, False),
])
def test_same_position(p_ab, p_ba, same):
    assert S.same_position(p_ab, p_ba) is same


def test_metrics():
    labels = [{"pA": 0.9, "pAOrderAB": 0.9, "pAOrderBA": 0.9, "chosen": "a", "humanPreference": "a"},
              {"pA": 0.5, "pAOrderAB": 0.9, "pAOrderBA": 0.1, "chosen": "a", "humanPreference": "b"},
              {"pA": 0.3, "pAOrderAB": None, "pAOrderBA": None, "chosen": "b", "humanPreference": None}]
    assert M.alignment(labels) == (0.5, 2)
    assert M.same_position_rate(labels) == 0.5
    assert M.mean_confidence(labels) == pytest.approx((0.9 + 0.5 + 0.7) / 3)
    assert M.alignment([{"chosen": "a"}]) == (None, 0)


def test_continuation_logprobs_chain_multi_token_continuations():
    # a table of next-token log-probs by prefix: "10" is two tokens (1, 0), " 1" is (9, 1)
    table = {(5,): {1: -1.0, 2: -2.0, 9: -0.5}, (5, 1): {0: -0.25}, (5, 9): {1: -0.1, 2: -3.0}}
    calls = []

    def query(queries):
        calls.append(len(queries))
        return [{t: table[tuple(ids)][t] for t in wanted if t in table[tuple(ids)]} for ids, wanted in queries]

    out = token_continuation_logprobs([[5]], [[1], [1, 0], [9, 1], [2], [7]], query)
    assert out == [[-1.0, -1.25, pytest.approx(-0.6), -2.0, None]]
    assert calls == [1, 2]  # depth 0 once (shared), then depth 1 for both longer continuations


# ---------------------------------------------------------------- shards and merge
def test_shard_bounds_partition_the_dataset():
    for total in (0, 1, 7, 300):
        for count in (1, 3, 8):
            spans = [shard_bounds(total, i, count) for i in range(count)]
            covered = [n for a, b in spans for n in range(a, b)]
            assert covered == list(range(total))


def _config(tmp_path, **extra) -> LabelConfig:
    return LabelConfig.model_validate({"labeler": {"model": {"uri": "builtin://smollm2-135m-instruct"}},
                                       "dataset": {"uri": "builtin://datasets/checkable-pairs"},
                                       "output": {"uri": str(tmp_path / "out")}, **extra})


def test_shard_index_from_env(tmp_path, monkeypatch):
    cfg = _config(tmp_path, numShards=4)
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    assert shard_index_for(cfg) == 0
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert shard_index_for(cfg) == 3
    assert shard_index_for(cfg, 1) == 1
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "4")
    with pytest.raises(DatasetError, match="outside numShards 4"):
        shard_index_for(cfg)


def _entry(i: int, status: str = "labeled") -> dict:
    rec = {"id": f"r{i}", "context": f"c{i}", "responseA": f"a{i}", "responseB": f"b{i}", "pA": 0.25,
           "pAOrderAB": 0.2, "pAOrderBA": 0.3, "chosen": "b",
           "humanPreference": "b" if i % 2 else "a"} if status == "labeled" else {"id": f"r{i}", "reason": "x"}
    if i == 3 and status == "labeled":  # a tie: no preference, so no DPO pair
        rec.update(pA=0.5, chosen="a")
    return {"status": status, "position": i, "record": rec}


def _stats(entries, h="h1"):
    return {"labeled": sum(e["status"] == "labeled" for e in entries),
            "abstained": sum(e["status"] == "abstained" for e in entries), "skipped": 0,
            "inputTokens": 10, "outputTokens": 0, "elapsedSeconds": 2.0, "promptHash": h}


def test_merge_joins_shards_in_dataset_order(tmp_path):
    cfg = _config(tmp_path, numShards=2)
    for index, positions in ((1, [3, 2]), (0, [1, 0])):
        store = ShardStore(cfg.output.uri, index, 2)
        entries = [_entry(p, "abstained" if p == 2 else "labeled") for p in positions]
        store.write_chunk(entries, _stats(entries))
        found, totals = store.read_chunks("h1")
        store.finalize(found, totals, {"promptHash": "h1"})
        assert not (tmp_path / "out" / "shards" / f"labels-0000{index}-of-00002.parts").exists()
    summary = merge(cfg)
    labels = [json.loads(x) for x in (tmp_path / "out" / "labels.jsonl").read_text().splitlines()]
    assert [r["id"] for r in labels] == ["r0", "r1", "r3"]
    assert [json.loads(x)["id"] for x in (tmp_path / "out" / "abstained.jsonl").read_text().splitlines()] == ["r2"]
    m = summary["metrics"]
    # r1 agrees with its human label; r0 does not, nor r3 (a tie, which counts as a)
    assert (m["labeled"], m["abstained"], m["alignment"], m["elapsedSeconds"]) == (3, 1, 1 / 3, 2.0)
    assert summary["outputs"]["labels"].endswith("labels.jsonl")
    # the DPO export beside the labels: oriented by pA, the tie (r3) left out and counted
    assert summary["outputs"]["dpo"] == str(tmp_path / "out" / "dpo.jsonl")
    dpo = [json.loads(x) for x in (tmp_path / "out" / "dpo.jsonl").read_text().splitlines()]
    assert dpo == [{"id": f"r{i}", "prompt": f"c{i}", "chosen": f"b{i}", "rejected": f"a{i}",
                    "chosenProbability": 0.75} for i in (0, 1)]
    assert (m["dpoPairs"], m["dpoTies"]) == (2, 1)


def test_merge_refuses_unfinished_shards_and_resume_refuses_other_settings(tmp_path):
    cfg = _config(tmp_path, numShards=3)
    store = ShardStore(cfg.output.uri, 0, 3)
    entries = [_entry(0)]
    store.write_chunk(entries, _stats(entries))
    with pytest.raises(StoreError, match="other prompt settings"):
        store.read_chunks("another-hash")
    store.read_chunks("h1")
    store.finalize(entries, _stats(entries), {"promptHash": "h1"})
    with pytest.raises(MergeError, match=r"2 of 3 shards have not finished \(shard 1, 2\)"):
        merge(cfg)


def test_chunks_resume_numbering_and_ignore_temporaries(tmp_path):
    store = ShardStore(str(tmp_path), 0, 1)
    store.write_chunk([_entry(0)], _stats([_entry(0)]))
    (tmp_path / "shards" / "labels-00000-of-00001.parts" / ".chunk-000001.jsonl.tmp123").write_text('{"trunc')
    again = ShardStore(str(tmp_path), 0, 1)
    entries, totals = again.read_chunks("h1")
    assert [e["record"]["id"] for e in entries] == ["r0"] and totals["labeled"] == 1
    assert again.write_chunk([_entry(1)], _stats([_entry(1)])).endswith("chunk-000001.jsonl")


# ---------------------------------------------------------------- the shipped dataset
def test_generator_reproduces_committed_files():
    for path, text in generate.outputs().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run python -m rlaif_jobs.datasets.generate")


def test_shipped_pairs_are_balanced_and_checkable():
    pairs = generate.checkable_pairs()
    assert len(pairs) == 410 and len({p["id"] for p in pairs}) == 410
    for task, n in (("summarization", 180), ("helpful", 100), ("harmless", 130)):
        sides = [p["humanPreference"] for p in pairs if p["task"] == task]
        assert len(sides) == n and 0.35 * n <= sides.count("a") <= 0.65 * n  # the correct side is random
    for p in pairs:
        good = p["responseA"] if p["humanPreference"] == "a" else p["responseB"]
        bad = p["responseB"] if p["humanPreference"] == "a" else p["responseA"]
        assert good != bad
        if p["task"] == "helpful" and " = " in good:  # arithmetic: the preferred answer is the right one
            expr, value = good.rstrip(".").split(" = ")
            assert eval(expr.replace("x", "*")) == int(value)  # noqa: S307 - our own generated digits
            expr, value = bad.rstrip(".").split(" = ")
            assert eval(expr.replace("x", "*")) != int(value)  # noqa: S307
        if p["id"].startswith("harm"):  # a harmful request: the refusal is preferred
            assert not good.startswith("Sure") and bad.startswith("Sure")
        if p["id"].startswith("safe"):  # a benign look-alike: the answer is preferred to a refusal
            assert bad in generate.v.OVER_REFUSALS and good not in generate.v.OVER_REFUSALS
    prompts = generate.checkable_prompts()
    assert {p["task"] for p in prompts} == {"summarization", "helpful", "harmless"}
