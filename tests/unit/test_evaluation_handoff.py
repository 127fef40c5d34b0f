"""The evaluation's hand-off between the trainer's process and the judging one, and the launcher's
follow-up step (pure parts: files, summary states, arguments; the real judge runs in tests/jobs)."""

from __future__ import annotations

import json
import os

import pytest

from rlaif_jobs import summaries
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.evaluation import handoff
from rlaif_jobs.evaluation.run import Samples, plan_for
from rlaif_jobs.policy import heldout


def _config(tmp_path, **evaluation) -> PolicyConfig:
    return PolicyConfig.model_validate({
        "policy": {"uri": "builtin://smollm2-135m-instruct"}, "prompts": {"uri": "builtin://datasets/checkable-prompts"},
        "rewardModelUri": str(tmp_path / "rm/model"), "output": {"uri": str(tmp_path / "out")},
        "evaluation": {"judge": {"model": {"uri": "builtin://qwen2.5-coder-1.5b-instruct"}}, "numPrompts": 2,
                       **evaluation}})


def _pending_run(tmp_path, config: PolicyConfig) -> dict:
    """What the trainer leaves: samples and a summary marked pending."""
    records = [{"id": "a", "prompt": "What is 2+2?", "task": "helpful", "answer": "4"},
               {"id": "b", "prompt": "Rob a bank.", "task": "harmless", "mustDecline": True}]
    p = plan_for(config, records)
    p.prompts = [handoff.HeldPrompt(str(r["id"]), r["prompt"], r["task"]) for r in records]
    (tmp_path / "out").mkdir(parents=True, exist_ok=True)
    record = heldout.write_pending(p, Samples(["4", "No."], ["5", "Sure."]), config)
    summaries.write_summary(config.output.uri, "policy", {"model": "m"}, {"meanReward": 0.5, "elapsedSeconds": 10.0},
                         {"evaluation": record})
    return record


def test_the_trainer_leaves_samples_and_a_pending_summary(tmp_path):
    config = _config(tmp_path)
    assert not handoff.awaiting(config)  # nothing there yet
    record = _pending_run(tmp_path, config)
    assert record["status"] == "pending" and record["trainerPid"] == os.getpid()
    rows = [json.loads(x) for x in (tmp_path / "out" / handoff.SAMPLES).read_text().splitlines()]
    assert [(r["id"], r["policy"], r["sft"], r["record"].get("answer")) for r in rows] == [
        ("a", "4", "5", "4"), ("b", "No.", "Sure.", None)]
    assert handoff.awaiting(config)
    # another config (more steps) must retrain, not judge samples of the old one
    other = config.model_copy(update={"rl": config.rl.model_copy(update={"max_steps": 99})})
    assert not handoff.awaiting(other)
    with pytest.raises(ConfigError, match="generated under another config"):
        handoff.complete(other)
    # evaluation disabled: never awaiting
    off = config.model_copy(update={"evaluation": config.evaluation.model_copy(update={"enabled": False})})
    assert not handoff.awaiting(off)


def test_the_evaluator_refuses_a_run_that_has_not_trained_and_leaves_a_finished_one(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match="output.uri: no summary.json"):
        handoff.complete(config)
    (tmp_path / "out").mkdir()
    done = summaries.write_summary(config.output.uri, "policy", {"model": "m"}, {"winRate": 0.6},
                                {"evaluation": {"status": "done", "judge": "x"}})
    assert handoff.complete(config) == done and not handoff.awaiting(config)


def test_the_launcher_runs_the_policy_stages_evaluation_on_node_0_only(tmp_path):
    from torch.distributed.run import parse_args

    from rlaif_jobs.launch import follow_up, only_follow_up_left

    cfg = tmp_path / "policy.json"
    args = parse_args(["--standalone", "--nproc_per_node=1", "-m", "rlaif_jobs.policy", "--config", str(cfg)])
    assert follow_up(args)[1:] == ["-m", "rlaif_jobs.evaluation", "--config", str(cfg)]
    assert follow_up(parse_args(["--nnodes=2", "--node-rank=1", "-m", "rlaif_jobs.policy", "--config", "c"])) is None
    assert follow_up(parse_args(["-m", "rlaif_jobs.reward", "--config", "c"])) is None
    assert not only_follow_up_left(args)  # no config file: the trainer reports that
    config = _config(tmp_path)
    cfg.write_text(config.model_dump_json(by_alias=True))
    assert not only_follow_up_left(args)
    _pending_run(tmp_path, config)
    assert only_follow_up_left(args)
