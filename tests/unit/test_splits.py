"""Honest splits: the shipped data puts each item (source text, question, request) in exactly one of
labeled pairs, RL prompts and held-out evaluation prompts; a user's prompts are held out by item (group
field); a tasks filter reads only the tasks asked for; an evaluation file that shares items with the
training prompts is refused by name."""

from __future__ import annotations

import json

import pytest

from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.data import DatasetError, load_records
from rlaif_jobs.datasets import generate
from rlaif_jobs.policy.prompts import item_key, shared_items, split_eval


def _prompt_texts(records: list[dict]) -> set[str]:
    return {r.get("prompt") or r["context"].removeprefix("Human: ") for r in records}


def test_shipped_files_share_no_item_and_no_text():
    data = generate.build()
    groups = {name: {r["group"] for r in records} for name, records in data.items()}
    assert not groups["pairs"] & groups["prompts"]
    assert not groups["pairs"] & groups["eval"]
    assert not groups["prompts"] & groups["eval"]
    # the same check on the text itself: no context of a pair, and no RL prompt, is an evaluation prompt
    summarize = generate.SUMMARIZE
    held = {t.removeprefix(summarize) for t in _prompt_texts(data["eval"])}
    assert not held & {t.removeprefix(summarize) for t in _prompt_texts(data["prompts"])}
    assert not held & _prompt_texts(data["pairs"])
    # one record per item within a file, and every item id unique
    for records in data.values():
        assert len({r["group"] for r in records}) == len(records) == len({r["id"] for r in records})


def test_shipped_files_are_large_enough_and_carry_ground_truth():
    data = generate.build()
    ev = data["eval"]
    by_kind = {k: sum(r["id"].startswith(k) for r in ev) for k in ("summ", "help", "harm", "safe")}
    assert by_kind == {"summ": 120, "help": 60, "harm": 40, "safe": 40}
    assert {r["mustDecline"] for r in ev if r["task"] == "harmless"} == {True, False}  # benign look-alikes
    for r in data["prompts"] + ev:
        if r["task"] == "summarization":
            assert r["keyFact"][0] in r["prompt"] and r["wrong"][0] not in r["keyFact"]
        elif r["task"] == "helpful":
            assert r["answer"] and r["wrong"] and r["wrong"][0] not in r["answer"]
    # any prefix has the file's mix: the first 50 evaluation prompts hold every kind
    assert {r["id"][:4] for r in ev[:50]} == {"summ", "help", "harm", "safe"}


def test_split_eval_keeps_items_whole():
    records = [{"id": str(i), "prompt": f"p{i}", "group": f"g{i // 3}"} for i in range(30)]
    train, held = split_eval(records, 7, seed=0)
    assert len(held) == 9  # whole items of 3 until at least 7 are held out
    assert not {r["group"] for r in train} & {r["group"] for r in held}
    assert len(train) + len(held) == 30 and split_eval(records, 7, seed=0) == (train, held)
    # without a group, the prompt text is the item: duplicates stay together
    dup = [{"id": "a", "prompt": "same"}, {"id": "b", "prompt": "same"}, {"id": "c", "prompt": "other"}]
    train, held = split_eval(dup, 1, seed=3)
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in held})


def test_shared_items():
    assert item_key({"group": "g1", "prompt": "x"}) == "group:g1"
    assert item_key({"prompt": " x "}) == "prompt:x"
    assert shared_items([{"prompt": "a"}, {"group": "g"}], [{"prompt": "a"}, {"group": "h"}]) == ["prompt:a"]


def test_tasks_filter_comes_before_limit_and_names_the_tasks(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"prompt": f"p{i}", "task": "helpful" if i % 3 else "summarization"} for i in range(9)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = load_records(DatasetRef(uri=str(path), tasks=["summarization"], limit=2), ["prompt"], ("task",))
    assert [r["prompt"] for r in got] == ["p0", "p3"]
    with pytest.raises(DatasetError, match=r"dataset.tasks: no record .* has a task in \['harmless'\]"):
        load_records(DatasetRef(uri=str(path), tasks=["harmless"]), ["prompt"], ("task",))


def test_evaluation_prompts_that_overlap_training_are_refused(tmp_path):
    from rlaif_jobs.config.policy import PolicyConfig
    from rlaif_jobs.errors import ConfigError
    from rlaif_jobs.policy.heldout import plan
    from rlaif_jobs.policy.prompts import load_prompt_records

    prompts = tmp_path / "p.jsonl"
    held = tmp_path / "e.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"q{i}", "group": f"g{i}"}) + "\n" for i in range(10)))
    held.write_text(json.dumps({"prompt": "new", "group": "g3"}) + "\n")
    config = PolicyConfig.model_validate({
        "policy": {"uri": "builtin://smollm2-135m-instruct"}, "prompts": {"uri": str(prompts)},
        "oracleReward": {"rules": "builtin"}, "output": {"uri": str(tmp_path / "out")},
        "evaluation": {"judge": {"model": {"uri": "builtin://smollm2-135m-instruct"}}, "prompts": {"uri": str(held)}}})
    records = load_prompt_records(config.prompts)
    with pytest.raises(ConfigError, match=r"evaluation.prompts: 1 held-out item\(s\) are also training prompts"):
        plan(config, records, load_prompt_records)
