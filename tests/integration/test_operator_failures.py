"""Failure and retry, deletion and cleanup, bad input, Kueue: the real operator process, via kubectl."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from clusterkit import Cluster, Operator, eventually
from test_operator_pipeline import (
    LABEL_REPORT,
    LABELING,
    POLICY_REPORT,
    REWARD,
    REWARD_REPORT,
    STORAGE,
    pipeline,
    wait_job,
)

pytestmark = pytest.mark.usefixtures("testapi_only")


def stage(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": copy.deepcopy(spec)}


def reason(cluster: Cluster, kind: str, name: str, ns: str, ctype: str) -> str | None:
    cond = cluster.condition(kind, name, ns, ctype)
    return cond["reason"] if cond else None


# --- failure and retry --------------------------------------------------------------------------------


def test_failed_pod_is_retried_within_backoff_limit(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(stage("PreferenceLabelJob", "flaky", {**LABELING, "runtime": {**STORAGE, "backoffLimit": 2}}), ns)
    wait_job(cluster, "flaky-label", ns)
    eventually(lambda: cluster.pods_of("flaky-label", ns), what="first pod")
    cluster.finish_pods("flaky-label", ns, exit_code=1, message="CUDA error: an illegal memory access")
    # The Job replaces the pod; the stage is still running, not failed.
    eventually(lambda: len(cluster.pods_of("flaky-label", ns)) == 2, what="replacement pod")
    assert cluster.phase("plj", "flaky", ns) != "Failed"
    cluster.finish_pods("flaky-label", ns, 0, LABEL_REPORT)
    cluster.wait("plj/flaky", ns, "condition=Succeeded")


def test_preemption_does_not_count_against_backoff(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(stage("PreferenceLabelJob", "preempted", {**LABELING, "runtime": {**STORAGE, "backoffLimit": 0}}), ns)
    eventually(lambda: cluster.pods_of("preempted-label", ns), what="first pod")
    cluster.finish_pods("preempted-label", ns, exit_code=137, disruption="PreemptionByScheduler")
    eventually(lambda: len(cluster.pods_of("preempted-label", ns)) == 2, what="replacement after preemption")
    cluster.finish_pods("preempted-label", ns, 0, LABEL_REPORT)
    cluster.wait("plj/preempted", ns, "condition=Succeeded")


def test_exhausted_backoff_fails_the_stage(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(stage("PreferenceLabelJob", "doomed", {**LABELING, "runtime": {**STORAGE, "backoffLimit": 0}}), ns)
    eventually(lambda: cluster.pods_of("doomed-label", ns), what="pod")
    cluster.finish_pods("doomed-label", ns, exit_code=1, message="Traceback: out of memory")
    cluster.wait("plj/doomed", ns, "condition=Failed")
    failed = cluster.condition("plj", "doomed", ns, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "runtime.backoffLimit" in failed["message"]


def test_config_error_fails_fast_and_the_pipeline_retries_a_recreated_stage(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("retry"), ns)
    eventually(lambda: cluster.pods_of("retry-label-label", ns), what="label pod")
    # Exit code 3 = config error: podFailurePolicy fails the Job at once, backoffLimit (3) unused.
    cluster.finish_pods("retry-label-label", ns, exit_code=3, message="--config: labeler.model.uri: not found")
    cluster.wait("rlp/retry", ns, "condition=Failed")
    assert reason(cluster, "plj", "retry-label", ns, "Failed") == "ConfigError"
    assert len(cluster.pods_of("retry-label-label", ns)) == 1  # not retried
    # Downstream stages fail with the reason, not silently wait forever.
    eventually(lambda: reason(cluster, "rmr", "retry-reward", ns, "Failed") == "UpstreamFailed", what="upstream")
    rlp = cluster.get("rlp", "retry", ns)["status"]
    failed = next(c for c in rlp["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "StageFailed" and "retry-label" in failed["message"]
    assert [e["type"] for e in cluster.events(ns, "retry-label") if e["reason"] == "ConfigError"] == ["Warning"]

    # Retry: delete the failed stage; the pipeline recreates it and the chain resumes.
    cluster.kubectl("delete", "plj", "retry-label", "-n", ns)
    eventually(lambda: (j := cluster.get("job", "retry-label-label", ns)) and not j.get("status", {}).get(
        "conditions"), what="a fresh label Job")
    eventually(lambda: cluster.pods_of("retry-label-label", ns), what="fresh label pod")
    cluster.finish_pods("retry-label-label", ns, 0, LABEL_REPORT)
    wait_job(cluster, "retry-reward-reward", ns)
    eventually(lambda: len(cluster.pods_of("retry-reward-reward", ns)) == 2, what="reward pods")
    cluster.finish_pods("retry-reward-reward", ns, 0, REWARD_REPORT)
    wait_job(cluster, "retry-policy-policy", ns)
    cluster.finish_pods("retry-policy-policy", ns, 0, POLICY_REPORT)
    cluster.wait("rlp/retry", ns, "condition=Succeeded")


def test_deadline_exceeded(cluster: Cluster, operator: Operator, ns: str) -> None:
    slow = {**LABELING, "runtime": {**STORAGE, "activeDeadlineSeconds": 1}}
    cluster.apply(stage("PreferenceLabelJob", "slow", slow), ns)
    cluster.wait("plj/slow", ns, "condition=Failed", timeout=20)
    assert reason(cluster, "plj", "slow", ns, "Failed") == "DeadlineExceeded"


# --- deletion and cleanup -------------------------------------------------------------------------------


def test_deleting_a_pipeline_removes_everything_it_made(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("gone"), ns)
    cluster.finish_pods("gone-label-label", ns, 0, LABEL_REPORT) if wait_job(cluster, "gone-label-label", ns) \
        and eventually(lambda: cluster.pods_of("gone-label-label", ns)) else None
    wait_job(cluster, "gone-reward-reward", ns)
    cluster.kubectl("delete", "rlp", "gone", "-n", ns)  # waits until the pipeline itself is gone
    for kind in ("plj", "rmr", "prl", "jobs", "pods", "configmaps", "services"):
        eventually(lambda k=kind: cluster.items(k, ns) == [], what=f"{kind} garbage-collected")


def test_upstream_deleted_while_downstream_waits(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply([stage("PreferenceLabelJob", "up", LABELING),
                   stage("RewardModelRun", "down", {**REWARD, "preferences": {"fromLabelJob": "up"}})], ns)
    eventually(lambda: reason(cluster, "rmr", "down", ns, "InputsReady") == "WaitingForUpstream", what="waiting")
    cluster.kubectl("delete", "plj", "up", "-n", ns)
    eventually(lambda: reason(cluster, "rmr", "down", ns, "InputsReady") == "UpstreamDeleted", what="reported")
    assert cluster.phase("rmr", "down", ns) == "Waiting"
    assert operator.healthy()
    # Recreated upstream: the downstream picks it up again.
    cluster.apply(stage("PreferenceLabelJob", "up", LABELING), ns)
    eventually(lambda: cluster.pods_of("up-label", ns), what="new upstream pod")
    cluster.finish_pods("up-label", ns, 0, LABEL_REPORT)
    wait_job(cluster, "down-reward", ns)


# --- bad input ------------------------------------------------------------------------------------------


def test_schema_rejects_invalid_manifests_naming_the_field(cluster: Cluster, operator: Operator, ns: str) -> None:
    bad = stage("PreferenceLabelJob", "bad", {**LABELING, "numShards": 0})
    result = cluster.apply(bad, ns, check=False)
    assert result.returncode != 0 and "spec.numShards" in result.stderr
    typo = stage("RewardModelRun", "typo", {**REWARD, "preferences": {"uri": "/x"}, "trainng": {}})
    result = cluster.apply(typo, ns, check=False)
    assert result.returncode != 0 and 'unknown field "spec.trainng"' in result.stderr


def test_reference_to_the_wrong_kind_fails_clearly(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply([stage("RewardModelRun", "rm", {**REWARD, "preferences": {"uri": "/data/labels.jsonl"}}),
                   stage("PolicyRLRun", "pol", {"policy": {"uri": "builtin://smollm2-135m-instruct"},
                                                "prompts": {"uri": "/data/prompts.jsonl"},
                                                "output": {"uri": "/data/pol"}, "runtime": STORAGE,
                                                "evaluation": {"enabled": False},
                                                "reward": {"fromRewardModelRun": "rm"}}),
                   stage("RewardModelRun", "wrong", {**REWARD, "preferences": {"fromLabelJob": "rm"}})], ns)
    cluster.wait("rmr/wrong", ns, "condition=Failed")
    failed = cluster.condition("rmr", "wrong", ns, "Failed")
    assert failed["reason"] == "InvalidReference"
    assert "rm is a RewardModelRun, not a PreferenceLabelJob" in failed["message"]


def test_missing_secret_waits_then_starts_when_created(cluster: Cluster, operator: Operator, ns: str) -> None:
    spec = {**LABELING, "runtime": {**STORAGE, "hubTokenSecret": {"name": "hf", "key": "token"}}}
    cluster.apply(stage("PreferenceLabelJob", "secretive", spec), ns)
    eventually(lambda: reason(cluster, "plj", "secretive", ns, "InputsReady") == "SecretNotFound", what="waiting")
    message = cluster.condition("plj", "secretive", ns, "InputsReady")["message"]
    assert "Secret hf not found" in message and ns in message
    assert cluster.get("job", "secretive-label", ns) is None
    cluster.kubectl("create", "secret", "generic", "hf", "-n", ns, "--from-literal=wrong=x")
    eventually(lambda: reason(cluster, "plj", "secretive", ns, "InputsReady") == "SecretKeyNotFound",
               what="key missing")
    cluster.kubectl("delete", "secret", "hf", "-n", ns)
    cluster.kubectl("create", "secret", "generic", "hf", "-n", ns, "--from-literal=token=hf_x")
    job = wait_job(cluster, "secretive-label", ns, timeout=30)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in env


def test_gpu_request_no_node_can_hold(cluster: Cluster, operator: Operator, ns: str) -> None:
    # The operator is told nodes hold 8 GPUs: 12 fails at once, with the fix in the message.
    huge = {**LABELING, "resources": {"gpusPerNode": 12}}
    cluster.apply(stage("PreferenceLabelJob", "huge", huge), ns)
    cluster.wait("plj/huge", ns, "condition=Failed")
    failed = cluster.condition("plj", "huge", ns, "Failed")
    assert failed["reason"] == "InvalidSpec" and "gpusPerNode is 12" in failed["message"]
    assert cluster.get("job", "huge-label", ns) is None
    # The one node really has 4: 6 passes the operator's check but the scheduler cannot place it.
    cluster.apply(stage("PreferenceLabelJob", "big", {**LABELING, "resources": {"gpusPerNode": 6}}), ns)
    eventually(lambda: reason(cluster, "plj", "big", ns, "Running") == "Unschedulable", what="unschedulable")
    running = cluster.condition("plj", "big", ns, "Running")
    assert "Insufficient nvidia.com/gpu" in running["message"]
    assert cluster.phase("plj", "big", ns) == "Pending"


def test_invalid_spec_the_schema_misses_fails_without_a_retry_storm(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    # Inside a pipeline, a stage must not name another upstream: the model rejects it, the schema cannot.
    bad = pipeline("storm", rewardModel={**REWARD, "preferences": {"fromLabelJob": "elsewhere"}})
    cluster.apply(bad, ns)
    cluster.wait("rlp/storm", ns, "condition=Failed")
    failed = cluster.condition("rlp", "storm", ns, "Failed")
    assert failed["reason"] == "InvalidSpec" and "fromLabelJob" in failed["message"]
    def writes() -> int:
        return cluster.testapi.call(lambda store: sum(
            1 for _, key, _, obj, _ in store.history
            if key == ("rlaif.dev", "rlaifpipelines") and obj["metadata"]["namespace"] == ns))

    before = writes()
    time.sleep(2)
    assert writes() == before, "the operator keeps rewriting a resource it cannot fix"
    assert cluster.items("plj", ns) == []


# --- Kueue -----------------------------------------------------------------------------------------------


def test_kueue_queue_suspends_the_job_until_admitted(cluster: Cluster, operator: Operator, ns: str) -> None:
    queued = {**LABELING, "resources": {"queueName": "gpu-queue", "gpusPerNode": 1}, "numShards": 2}
    cluster.apply(stage("PreferenceLabelJob", "queued", queued), ns)
    job = wait_job(cluster, "queued-label", ns)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    eventually(lambda: reason(cluster, "plj", "queued", ns, "Running") == "Queued", what="queued")
    assert cluster.pods_of("queued-label", ns) == []
    # Kueue admits the whole gang: it unsuspends the Job; both shards start together.
    cluster.kubectl("patch", "job", "queued-label", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    eventually(lambda: len(cluster.pods_of("queued-label", ns)) == 2, what="both shards")
    cluster.wait("plj/queued", ns, "jsonpath={.status.phase}=Running")
