"""Local mode's plan: pipelines expand, stages order by their references, bad references are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_operator.api import load_resources
from rlaif_operator.local.plan import PlanError, expand, order
from rlaif_operator.local.runner import commands

REPO = Path(__file__).resolve().parents[2]


def _stages(*names: str):
    resources = []
    for name in names:
        resources += load_resources(REPO / "examples" / name)
    return expand(resources)


def test_standalone_stages_run_after_their_upstream_whatever_the_file_order():
    stages = _stages("policy-rl-run.yaml", "reward-model-run.yaml", "preference-label-job.yaml")
    assert [s.metadata.name for s in order(stages, {})] == [
        "checkable-labels", "checkable-rm", "checkable-policy"]


def test_an_upstream_finished_earlier_satisfies_the_reference():
    stages = _stages("reward-model-run.yaml")
    assert [s.metadata.name for s in order(stages, {"checkable-labels": "PreferenceLabelJob"})] == ["checkable-rm"]


def test_missing_upstream_is_named_with_the_fix():
    with pytest.raises(PlanError, match=r"spec.preferences.fromLabelJob names 'checkable-labels', which is"
                                        r" neither in this file nor a finished earlier run"):
        order(_stages("reward-model-run.yaml"), {})


def test_upstream_of_the_wrong_kind_is_named():
    with pytest.raises(PlanError, match="which is a RewardModelRun, not a PreferenceLabelJob"):
        order(_stages("reward-model-run.yaml"), {"checkable-labels": "RewardModelRun"})


def test_duplicate_names_are_rejected():
    with pytest.raises(PlanError, match="two resources are named 'checkable-rm'"):
        _stages("reward-model-run.yaml", "reward-model-run.yaml")


def test_commands_shard_then_merge_and_trainers_use_torchrun(tmp_path):
    label, reward, policy = order(_stages("preference-label-job.yaml", "reward-model-run.yaml",
                                          "policy-rl-run.yaml"), {})
    cfg = tmp_path / "config.json"
    label_cmds = commands(label, cfg, nproc=1)
    assert [c[-2:] for c in label_cmds] == [["--shard-index", "0"], ["--shard-index", "1"],
                                           [str(cfg), "--merge"]]
    (train,) = commands(reward, cfg, nproc=2)
    assert train[1:5] == ["-m", "rlaif_jobs.launch", "--standalone", "--nproc_per_node=2"]
    assert "rlaif_jobs.reward" in train
