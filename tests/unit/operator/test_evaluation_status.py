"""A PolicyRLRun whose judge is its reward source gets a warning condition (issue 9), in the operator's
status logic and in the pure rule it calls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rlaif_operator.api.conditions import ExtraConditionType
from rlaif_operator.api.kinds import PolicyRLRun
from rlaif_operator.status import JobObservation, StageObservation, compute_status, evaluation_conditions

JUDGE_CONDITION = ExtraConditionType.JUDGE_INDEPENDENT

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "metrics", "expected"), [
    ("PolicyRLRun", {"winRate": 0.6, "judgeIsRewardSource": 1.0}, ("False", "JudgeIsRewardSource")),
    ("PolicyRLRun", {"winRate": 0.6, "judgeIsRewardSource": 0.0}, ("True", "IndependentJudge")),
    ("PolicyRLRun", {"meanReward": 0.3}, None),  # evaluation disabled: nothing to say
    ("RewardModelRun", {"judgeIsRewardSource": 1.0}, None),
], ids=["judge-is-reward-source", "independent-judge", "no-evaluation", "not-a-policy"])
def test_rule(kind, metrics, expected):
    got = evaluation_conditions(kind, metrics, "2025-03-01T12:00:00Z")
    assert [(c.status, c.reason) for c in got] == ([expected] if expected else [])
    if expected and expected[0] == "False":
        assert "evaluation.judge" in got[0].message and "oracleScore" in got[0].message


def test_a_succeeded_policy_run_carries_the_warning():
    run = PolicyRLRun.model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "PolicyRLRun",
        "metadata": {"name": "pol", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {"policy": {"uri": "/m"}, "prompts": {"uri": "/p.jsonl"}, "output": {"uri": "/o"},
                 "reward": {"direct": {"labeler": {"model": {"uri": "/judge"}}}}}})
    report = {"outputs": {"model": "/o/model"}, "metrics": {"winRate": 0.7, "judgeIsRewardSource": 1.0}}
    job = JobObservation(name="pol-policy", exists=True, complete=True, succeeded=1, reports=(report,),
                         start_time="2025-03-01T11:00:00Z", completion_time="2025-03-01T11:59:00Z")
    status = compute_status(run, StageObservation(job=job, started=True), NOW)
    assert status.phase == "Succeeded"
    judge = [c for c in status.conditions if c.type == JUDGE_CONDITION]
    assert len(judge) == 1 and judge[0].status == "False" and judge[0].reason == "JudgeIsRewardSource"
