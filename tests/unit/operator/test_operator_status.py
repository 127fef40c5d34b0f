"""compute_status / compute_pipeline_status / transition_events: table-driven, one readable id per case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from rlaif_operator.api.common import Condition, Status
from rlaif_operator.api.kinds import KINDS, Resource
from rlaif_operator.status import (
    ChildObservation,
    JobObservation,
    StageObservation,
    UpstreamObservation,
    compute_pipeline_status,
    compute_status,
    parse_report,
    transition_events,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
REWARD_SPEC = {"baseModel": {"uri": "/sft"}, "preferences": {"fromLabelJob": "labels"}, "output": {"uri": "/o"}}
LABEL_SPEC = {"labeler": {"model": {"uri": "builtin://x"}}, "dataset": {"uri": "/d"}, "output": {"uri": "/o"}}
UP_OK = UpstreamObservation("PreferenceLabelJob", "labels", "labels", found=True, phase="Succeeded",
                            outputs={"labels": "/o/labels.jsonl"})
REPORT = {"outputs": {"model": "/o/model"}, "metrics": {"evalAccuracy": 0.7}}


def reward(status: Status | None = None) -> Resource:
    return KINDS["RewardModelRun"].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun",
        "metadata": {"name": "rm", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": REWARD_SPEC, "status": (status or Status()).model_dump(by_alias=True, exclude_none=True)})


def running_job(**kw: Any) -> JobObservation:
    return JobObservation(name="rm-reward", exists=True, active=1, start_time="2025-03-01T11:00:00Z", **kw)


def waiting_status(reason: str) -> Status:
    return Status(phase="Waiting", conditions=[Condition(type="InputsReady", status="False", reason=reason)])


@dataclass
class Case:
    obs: StageObservation
    phase: str
    reasons: dict[str, str]  # condition type -> expected reason (and status True for the ones named in true)
    true: tuple[str, ...] = ()
    previous: Status | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES: dict[str, Case] = {
    "upstream-running-waits": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels", found=True,
                                                      phase="Running")),
        "Waiting", {"InputsReady": "WaitingForUpstream"}, message="waiting for upstream PreferenceLabelJob/labels"),
    "upstream-absent-waits": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels")),
        "Waiting", {"InputsReady": "UpstreamNotFound"}, message="does not exist yet"),
    "upstream-deleted-while-waiting": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels")),
        "Waiting", {"InputsReady": "UpstreamDeleted"}, previous=waiting_status("WaitingForUpstream"),
        message="was deleted"),
    "upstream-failed-fails": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels", found=True,
                                                      phase="Failed", message="OOM")),
        "Failed", {"Failed": "UpstreamFailed", "InputsReady": "UpstreamFailed"}, true=("Failed",),
        message="upstream PreferenceLabelJob/labels failed: OOM"),
    "upstream-wrong-kind-fails": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels",
                                                      other_kind="RewardModelRun")),
        "Failed", {"Failed": "InvalidReference"}, true=("Failed",), message="labels is a RewardModelRun"),
    "upstream-without-output-fails": Case(
        StageObservation(upstream=UpstreamObservation("PreferenceLabelJob", "labels", "labels", found=True,
                                                      phase="Succeeded")),
        "Failed", {"Failed": "UpstreamOutputMissing"}, true=("Failed",), message="reported no 'labels' output"),
    "missing-secret-waits": Case(
        StageObservation(upstream=UP_OK, missing_secrets=("hf",)), "Waiting", {"InputsReady": "SecretNotFound"},
        message="Secret hf not found in namespace ns"),
    "missing-secret-key-waits": Case(
        StageObservation(upstream=UP_OK, missing_secrets=("hf/token",)), "Waiting",
        {"InputsReady": "SecretKeyNotFound"}),
    "invalid-spec-fails": Case(
        StageObservation(spec_errors=("spec.resources.gpusPerNode is 12 but the largest node offers 8",)),
        "Failed", {"Failed": "InvalidSpec"}, true=("Failed",), message="gpusPerNode is 12"),
    "inputs-ready-job-being-created": Case(
        StageObservation(upstream=UP_OK), "Pending", {"InputsReady": "UpstreamSucceeded"}, true=("InputsReady",),
        message="using labels from PreferenceLabelJob/labels: /o/labels.jsonl"),
    "job-pending-pods": Case(
        StageObservation(job=JobObservation(name="rm-reward", exists=True), started=True), "Pending",
        {"Running": "JobCreated", "InputsReady": "InputsResolved"}, true=("InputsReady",)),
    "job-running": Case(
        StageObservation(job=running_job(completions=2), started=True), "Running", {"Running": "JobRunning"},
        true=("InputsReady", "Running"), message="0/2 completions done, 1 pods active",
        extra={"start_time": "2025-03-01T11:00:00Z"}),
    "job-queued-by-kueue": Case(
        StageObservation(job=JobObservation(name="rm-reward", exists=True, suspended=True), started=True),
        "Pending", {"Running": "Queued"}, true=("InputsReady",), message="until Kueue admits it"),
    "pods-unschedulable": Case(
        StageObservation(job=running_job(pod_problem=(
            "Unschedulable", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")), started=True),
        "Pending", {"Running": "Unschedulable"}, true=("InputsReady",), message="Insufficient nvidia.com/gpu"),
    "job-succeeded-with-report": Case(
        StageObservation(job=running_job(complete=True, completion_time="2025-03-01T11:30:00Z", reports=(REPORT,)),
                         started=True),
        "Succeeded", {"Succeeded": "JobSucceeded", "Running": "Completed"}, true=("InputsReady", "Succeeded"),
        message="evalAccuracy=0.7",
        extra={"outputs": {"model": "/o/model"}, "metrics": {"evalAccuracy": 0.7},
               "completion_time": "2025-03-01T11:30:00Z"}),
    "config-error-fails-fast": Case(
        StageObservation(job=running_job(failed_reason="PodFailurePolicy", failed_message="exit code 3"),
                         started=True),
        "Failed", {"Failed": "ConfigError"}, true=("InputsReady", "Failed"), message="exit code 3"),
    "backoff-exhausted": Case(
        StageObservation(job=running_job(failed_reason="BackoffLimitExceeded", failed_message="limit"),
                         started=True),
        "Failed", {"Failed": "BackoffLimitExceeded"}, true=("InputsReady", "Failed"), message="runtime.backoffLimit"),
    "deadline-exceeded": Case(
        StageObservation(job=running_job(failed_reason="DeadlineExceeded", failed_message="late"), started=True),
        "Failed", {"Failed": "DeadlineExceeded"}, true=("InputsReady", "Failed"),
        message="runtime.activeDeadlineSeconds"),
    "job-name-taken-by-someone-else": Case(
        StageObservation(upstream=UP_OK, job=JobObservation(name="rm-reward", exists=True, owned=False)),
        "Waiting", {"Running": "NameConflict"}, true=("InputsReady",), message="Job/rm-reward already exists and is"
        " not owned by this RewardModelRun"),
    "configmap-name-taken-waits-naming-it": Case(
        StageObservation(upstream=UP_OK, job=JobObservation(name="rm-reward"),
                         conflict="ConfigMap/rm-reward-config (controlled by no object)"),
        "Waiting", {"Running": "NameConflict"}, true=("InputsReady",),
        message="ConfigMap/rm-reward-config (controlled by no object) already exists"),
    "child-forbidden-waits-with-the-api-message": Case(
        StageObservation(upstream=UP_OK, job=JobObservation(name="rm-reward"),
                         create_error=(403, "Job/rm-reward", 'jobs.batch is forbidden: User "x" cannot create')),
        "Waiting", {"Running": "CreateForbidden"}, true=("InputsReady",), message="jobs.batch is forbidden"),
    "child-invalid-fails": Case(
        StageObservation(upstream=UP_OK, job=JobObservation(name="rm-reward"),
                         create_error=(422, "Job/rm-reward", "spec.template.spec.affinity: Invalid value")),
        "Failed", {"Failed": "ChildRejected"}, true=("InputsReady", "Failed"), message="affinity: Invalid value"),
    "image-pull-back-off-is-pending-with-the-fix": Case(
        StageObservation(job=running_job(pod_problem=("ImagePullBackOff", 'Back-off pulling image "x:1"')),
                         started=True),
        "Pending", {"Running": "ImagePullBackOff"}, true=("InputsReady",), message="check runtime.image"),
    "failed-create-is-pending-with-the-event": Case(
        StageObservation(job=JobObservation(name="rm-reward", exists=True,
                                            pod_problem=("FailedCreate", "exceeded quota")), started=True),
        "Pending", {"Running": "FailedCreate"}, true=("InputsReady",), message="exceeded quota"),
    "oom-killed-names-the-limit-and-the-fix": Case(
        StageObservation(job=running_job(failed_reason="BackoffLimitExceeded", failed_message="limit",
                                         pod_failure=("OOMKilled", "pod p, container trainer: memory limit 16Gi")),
                         started=True),
        "Failed", {"Failed": "OOMKilled"}, true=("InputsReady", "Failed"), message="memory limit 16Gi"),
    "failed-pod-message-is-carried": Case(
        StageObservation(job=running_job(failed_reason="BackoffLimitExceeded", failed_message="limit",
                                         pod_failure=("Error", "p: CUDA error: illegal memory access")),
                         started=True),
        "Failed", {"Failed": "BackoffLimitExceeded"}, true=("InputsReady", "Failed"),
        message="the last failed pod said: p: CUDA error"),
    "gang-worker-failed-restarts-counted": Case(
        StageObservation(job=JobObservation(name="rm-reward"), started=True,
                         gang_restart="a worker of Job rm-reward failed: restarting all 2 workers"),
        "Pending", {"Running": "GangRestart"}, true=("InputsReady",), message="restarting all 2 workers",
        previous=Status(phase="Running", job_uid="j1", restarts=1, preemptions=2),
        extra={"restarts": 2, "preemptions": 2, "job_uid": None}),
    "gang-worker-preempted-restarts-not-counted": Case(
        StageObservation(job=JobObservation(name="rm-reward"), started=True, gang_preempted=True,
                         gang_restart="a worker of Job rm-reward was preempted or evicted: restarting all 2"),
        "Pending", {"Running": "GangPreempted"}, true=("InputsReady",), message="preempted",
        previous=Status(phase="Running", job_uid="j1", restarts=1),
        extra={"restarts": 1, "preemptions": 1, "job_uid": None}),
    "preempted-job-left-unrestarted-is-no-config-error": Case(
        StageObservation(job=running_job(failed_reason="PodFailurePolicy", failed_message=(
            "Pod ns/rm-reward-1-x has condition DisruptionTarget matching FailJob rule at index 1")), started=True),
        "Failed", {"Failed": "JobFailed"}, true=("InputsReady", "Failed"), message="was preempted or evicted"),
    "job-deleted-by-hand-while-running": Case(
        StageObservation(job=running_job(deleting=True), started=True),
        "Failed", {"Failed": "JobDeleted"}, true=("InputsReady", "Failed"), message="rlaif.dev/restart"),
    "job-deleted-after-completing-succeeds": Case(
        StageObservation(job=running_job(deleting=True, complete=True, reports=(REPORT,)), started=True),
        "Succeeded", {"Succeeded": "JobSucceeded"}, true=("InputsReady", "Succeeded")),
    "job-lost-without-summary-fails": Case(
        StageObservation(job=JobObservation(name="rm-reward"), started=True, lost=True,
                         lost_detail="; its summary /o/summary.json is on a volume the operator does not mount"),
        "Failed", {"Failed": "JobDeleted"}, true=("InputsReady", "Failed"),
        message="Job rm-reward (uid j1) was deleted before it finished; its summary /o/summary.json",
        previous=Status(phase="Running", job_uid="j1")),
    "job-lost-with-summary-succeeds": Case(
        StageObservation(job=JobObservation(name="rm-reward"), started=True, lost=True, lost_summary=REPORT),
        "Succeeded", {"Succeeded": "JobSucceeded"}, true=("InputsReady", "Succeeded"),
        message="read from its summary.json", extra={"outputs": {"model": "/o/model"}},
        previous=Status(phase="Running", job_uid="j1")),
    "shards-done-merge-pending": Case(
        StageObservation(job=running_job(complete=True, completions=4), needs_merge=True, started=True),
        "Running", {"Running": "Merging"}, true=("InputsReady", "Running"), message="merging their labels"),
    "merge-succeeded-wins-over-shards": Case(
        StageObservation(job=running_job(complete=True, reports=({"outputs": {"labels": "/shard"},
                                                                  "metrics": {"labeled": 1}},)),
                         merge_job=JobObservation(name="m", exists=True, complete=True, reports=(
                             {"outputs": {"labels": "/merged"}, "metrics": {"labeled": 4}},)),
                         needs_merge=True, started=True),
        "Succeeded", {"Succeeded": "JobSucceeded"}, true=("InputsReady", "Succeeded"),
        extra={"outputs": {"labels": "/merged"}, "metrics": {"labeled": 4}}),
}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_compute_status(name: str) -> None:
    case = CASES[name]
    status = compute_status(reward(case.previous), case.obs, NOW)
    assert status.phase == case.phase
    conditions = {c.type: c for c in status.conditions}
    assert list(conditions) == ["InputsReady", "Running", "Succeeded", "Failed", "Ready", "Reconciling", "Stalled"]
    for ctype, reason in case.reasons.items():
        assert conditions[ctype].reason == reason, ctype
    # kstatus (kubectl wait --for=condition=Ready, Flux, kpt): Ready once Succeeded, Stalled once Failed,
    # Reconciling until then; each with the reason of the phase
    true = {*case.true, *(("Ready",) if case.phase == "Succeeded" else ()), *(("Stalled",) if case.phase == "Failed"
                                                                             else ("Reconciling",)
                                                                             if case.phase != "Succeeded" else ())}
    for ctype, cond in conditions.items():
        assert cond.status == ("True" if ctype in true else "False"), ctype
        assert cond.observed_generation == 1
        assert cond.reason and cond.reason[0].isupper() and " " not in cond.reason
    assert case.message in (status.message or "")
    assert status.observed_generation == 1
    for key, value in case.extra.items():
        assert getattr(status, key) == value, key


def test_transition_time_is_kept_while_a_condition_holds() -> None:
    first = compute_status(reward(), StageObservation(job=running_job(), started=True), NOW)
    later = compute_status(reward(first), StageObservation(job=running_job(), started=True),
                           NOW.replace(hour=13))
    assert [c.last_transition_time for c in later.conditions] == [c.last_transition_time for c in first.conditions]
    done = compute_status(reward(later), StageObservation(job=running_job(complete=True, reports=(REPORT,)),
                                                          started=True), NOW.replace(hour=14))
    running = next(c for c in done.conditions if c.type == "Running")
    assert running.last_transition_time == "2025-03-01T14:00:00Z"


def test_finished_stage_stays_finished_when_its_job_is_gone() -> None:
    done = compute_status(reward(), StageObservation(job=running_job(complete=True, reports=(REPORT,)),
                                                     started=True), NOW)
    after_ttl = compute_status(reward(done), StageObservation(upstream=UP_OK), NOW.replace(hour=20))
    assert after_ttl == done


def test_upstream_failure_is_not_final_a_recreated_upstream_can_still_succeed() -> None:
    failed = compute_status(reward(), CASES["upstream-failed-fails"].obs, NOW)
    retried = compute_status(reward(failed), StageObservation(upstream=UP_OK), NOW)
    assert retried.phase == "Pending"


def stage_status(phase: str, metrics: dict[str, float] | None = None, reason: str = "") -> Status:
    conditions = [Condition(type="Failed", status="True", reason=reason)] if reason else []
    return Status(phase=phase, metrics=metrics or {}, outputs={"model": f"/{phase}"}, conditions=conditions,
                  start_time="2025-03-01T10:00:00Z", message="boom" if reason else None,
                  completion_time="2025-03-01T11:00:00Z" if phase in ("Succeeded", "Failed") else None)


def children(*phases: str | None, failed_reason: str = "") -> list[ChildObservation]:
    kinds = [("PreferenceLabelJob", "p-label"), ("RewardModelRun", "p-reward"), ("PolicyRLRun", "p-policy")]
    out = []
    for (kind, name), phase in zip(kinds, phases, strict=True):
        if phase is None:
            out.append(ChildObservation(kind, name))
        else:
            out.append(ChildObservation(kind, name, exists=True, status=stage_status(
                phase, {"labeled": 1.0} if kind == "PreferenceLabelJob" else {"winRate": 0.6},
                failed_reason if phase == "Failed" else "")))
    return out


PIPELINE_CASES = {
    "creating-stages": (children(None, None, None), "Pending", "CreatingStages", "p-label"),
    "first-stage-running": (children("Running", "Waiting", "Waiting"), "Running", "StagesCreated", "p-label"),
    "second-stage-pending": (children("Succeeded", "Pending", "Waiting"), "Pending", "StagesCreated", "p-reward"),
    "stage-failed": (children("Succeeded", "Failed", "Failed", failed_reason="ConfigError"), "Failed",
                     "StagesCreated", None),
    "all-succeeded": (children("Succeeded", "Succeeded", "Succeeded"), "Succeeded", "StagesCreated", None),
}


@pytest.mark.parametrize("name", list(PIPELINE_CASES), ids=list(PIPELINE_CASES))
def test_compute_pipeline_status(name: str) -> None:
    observed, phase, inputs_reason, current = PIPELINE_CASES[name]
    pipe = KINDS["RLAIFPipeline"].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 2},
        "spec": {"labeling": LABEL_SPEC}})
    status = compute_pipeline_status(pipe, observed, NOW)
    assert status.phase == phase
    assert status.current_stage == current
    assert [s.name for s in status.stages] == ["p-label", "p-reward", "p-policy"]
    assert next(c for c in status.conditions if c.type == "InputsReady").reason == inputs_reason
    assert status.observed_generation == 2
    if phase == "Failed":
        failed = next(c for c in status.conditions if c.type == "Failed")
        assert failed.reason == "StageFailed" and "p-reward" in failed.message and "ConfigError" in failed.message
    if phase == "Succeeded":
        assert status.metrics == {"labeled": 1.0, "winRate": 0.6}
        assert status.outputs["policy.model"] == "/Succeeded"
        assert status.completion_time == "2025-03-01T11:00:00Z"


def test_pipeline_waits_while_a_stranger_holds_a_stage_name() -> None:
    pipe = KINDS["RLAIFPipeline"].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 1}, "spec": {"labeling": LABEL_SPEC}})
    status = compute_pipeline_status(pipe, [ChildObservation("PreferenceLabelJob", "p-label", exists=True,
                                                             owned=False, status=Status(phase="Running"))], NOW)
    assert status.phase == "Waiting"
    running = next(c for c in status.conditions if c.type == "Running")
    assert running.reason == "NameConflict" and "PreferenceLabelJob/p-label already exists" in running.message
    assert [s.phase for s in status.stages] == [None]  # a stranger's phase is not reported as the stage's


@pytest.mark.parametrize(("code", "phase", "ctype", "reason"), [
    (403, "Waiting", "Running", "CreateForbidden"),
    (422, "Failed", "Failed", "ChildRejected"),
])
def test_pipeline_stage_the_api_refuses(code: int, phase: str, ctype: str, reason: str) -> None:
    pipe = KINDS["RLAIFPipeline"].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 1}, "spec": {"labeling": LABEL_SPEC}})
    observed = [ChildObservation("PreferenceLabelJob", "p-label", create_error=(code, "admission webhook said no"))]
    status = compute_pipeline_status(pipe, observed, NOW)
    assert status.phase == phase
    cond = next(c for c in status.conditions if c.type == ctype)
    assert cond.reason == reason and "PreferenceLabelJob/p-label" in cond.message
    assert "admission webhook said no" in cond.message


def test_events_on_transitions_only() -> None:
    waiting = compute_status(reward(), CASES["upstream-running-waits"].obs, NOW)
    events = transition_events(Status(), waiting)
    assert [(e.type, e.reason) for e in events] == [("Normal", "WaitingForUpstream")]
    assert transition_events(waiting, compute_status(reward(waiting), CASES["upstream-running-waits"].obs, NOW)) == []
    failed = compute_status(reward(waiting), CASES["config-error-fails-fast"].obs, NOW)
    assert ("Warning", "ConfigError") in [(e.type, e.reason) for e in transition_events(waiting, failed)]


@pytest.mark.parametrize("message,expected", [
    ('{"outputs":{"labels":"/l"},"metrics":{"alignment":0.8,"ok":true}}',
     {"outputs": {"labels": "/l"}, "metrics": {"alignment": 0.8}}),
    ("Traceback (most recent call last): ...", None),
    ("", None),
    ('["not", "a", "report"]', None),
], ids=["report", "log-tail", "empty", "json-not-a-report"])
def test_parse_report(message: str, expected: dict[str, Any] | None) -> None:
    assert parse_report(message) == expected


def test_kstatus_conditions_carry_the_reason_of_the_phase_and_post_no_events() -> None:
    """Ready/Reconciling/Stalled say what the four say, in the words kstatus, Flux and kubectl wait read;
    they post no Events of their own (the four's Events already say it)."""
    running = compute_status(reward(), StageObservation(job=running_job(), started=True), NOW)
    failed = compute_status(reward(running), StageObservation(
        job=running_job(failed_reason="PodFailurePolicy", failed_message="exit code 3"), started=True), NOW)
    done = compute_status(reward(running), StageObservation(
        job=running_job(complete=True, reports=(REPORT,)), started=True), NOW)
    kstatus = {name: {c.type: (c.status, c.reason) for c in s.conditions if c.type in ("Ready", "Reconciling",
                                                                                        "Stalled")}
               for name, s in (("running", running), ("failed", failed), ("done", done))}
    assert kstatus["running"] == {"Ready": ("False", "JobRunning"), "Reconciling": ("True", "JobRunning"),
                                  "Stalled": ("False", "JobRunning")}
    assert kstatus["failed"] == {"Ready": ("False", "ConfigError"), "Reconciling": ("False", "ConfigError"),
                                 "Stalled": ("True", "ConfigError")}
    assert kstatus["done"] == {"Ready": ("True", "JobSucceeded"), "Reconciling": ("False", "JobSucceeded"),
                               "Stalled": ("False", "JobSucceeded")}
    for old, new in ((running, failed), (running, done)):
        assert not [e for e in transition_events(old, new) if e.reason not in ("ConfigError", "JobSucceeded",
                                                                                 "Completed")]
        assert len([e for e in transition_events(old, new) if e.type == "Warning"]) == (new is failed)


def test_a_preemption_is_recognised_by_the_job_controllers_message_only() -> None:
    """Kubernetes' Job controller words a FailJob on a pod condition "Pod NS/NAME has condition TYPE matching
    FailJob rule at index I": DisruptionTarget there is a preemption; an exit code is not."""
    said = "Pod ns/rm-reward-1-abcde has condition DisruptionTarget matching FailJob rule at index 1"
    assert JobObservation(name="j", failed_reason="PodFailurePolicy", failed_message=said).preempted
    assert not JobObservation(name="j", failed_reason="PodFailurePolicy", failed_message=(
        "Container trainer for pod ns/p failed with exit code 3 matching FailJob rule at index 0")).preempted
    assert not JobObservation(name="j", failed_reason="BackoffLimitExceeded", failed_message=said).preempted
    assert not JobObservation(name="j").preempted


def test_a_gang_preemption_posts_a_preempted_event() -> None:
    running = compute_status(reward(), StageObservation(job=running_job(), started=True), NOW)
    preempted = compute_status(reward(running), CASES["gang-worker-preempted-restarts-not-counted"].obs, NOW)
    events = transition_events(running, preempted)
    assert [(e.type, e.reason) for e in events] == [("Warning", "GangPreempted")]
    assert "preempted" in events[0].message
