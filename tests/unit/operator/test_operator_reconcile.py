"""The pure parts of observing and acting: what pods say, when to look again, restarts, the cache's memory
of deleted objects. (The whole loop runs against the test API server in tests/integration.)"""

from __future__ import annotations

from typing import Any

import pytest

from rlaif_operator.api.common import Condition, Status
from rlaif_operator.api.kinds import KINDS, Resource
from rlaif_operator.builders.jobs import is_gang
from rlaif_operator.cache import Cache
from rlaif_operator.ensure import restart_request, restart_stage
from rlaif_operator.observe import pod_failure, pod_problem, reports
from rlaif_operator.reconcile import _recheck
from rlaif_operator.settings import OperatorSettings
from rlaif_operator.status import JobObservation, StageObservation


def pod(name: str, phase: str, *, terminated: dict[str, Any] | None = None, waiting: dict[str, Any] | None = None,
        conditions: list[dict[str, Any]] | None = None, index: int = 0, memory: str | None = "16Gi") -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"waiting": waiting} if waiting else {"running": {}}
    resources = {"limits": {"memory": memory}} if memory else {}
    return {"metadata": {"name": name, "uid": f"uid-{name}",
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "spec": {"containers": [{"name": "trainer", "resources": resources}]},
            "status": {"phase": phase, "conditions": conditions or [],
                       "containerStatuses": [{"name": "trainer", "state": state}]}}


def stage(kind: str = "RewardModelRun", nodes: int = 1, annotations: dict[str, str] | None = None,
          status: Status | None = None) -> Resource:
    spec: dict[str, Any] = {"output": {"uri": "s3://b/o"}, "resources": {"nodes": nodes}}
    if kind == "RewardModelRun":
        spec.update(baseModel={"uri": "hf://o/m"}, preferences={"uri": "s3://b/l.jsonl"})
    else:
        spec.update(labeler={"model": {"uri": "hf://o/m"}}, dataset={"uri": "s3://b/d.jsonl"})
        spec.pop("resources")
    return KINDS[kind].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "s", "namespace": "ns", "uid": "u", "annotations": annotations or {}},
        "spec": spec, "status": (status or Status()).model_dump(by_alias=True, exclude_none=True)})


def test_pod_failure_prefers_oom_and_names_the_limit() -> None:
    pods = [pod("a", "Failed", terminated={"exitCode": 1, "message": "boom", "finishedAt": "2025-01-01T00:00:02Z"}),
            pod("b", "Failed", terminated={"exitCode": 137, "reason": "OOMKilled",
                                           "finishedAt": "2025-01-01T00:00:01Z"})]
    assert pod_failure(pods) == ("OOMKilled", "pod b, container trainer: memory limit 16Gi")


def test_pod_failure_carries_the_last_message_tail() -> None:
    long = "x" * 1000 + "ValueError: the end"
    pods = [pod("a", "Failed", terminated={"exitCode": 1, "message": "first", "finishedAt": "2025-01-01T00:00:01Z"}),
            pod("b", "Failed", terminated={"exitCode": 1, "message": long, "finishedAt": "2025-01-01T00:00:02Z"})]
    reason, text = pod_failure(pods)  # type: ignore[misc]
    assert reason == "Error" and text.startswith("b: ...") and text.endswith("ValueError: the end")
    assert len(text) < 450
    no_message = [pod("c", "Failed", terminated={"exitCode": 2, "reason": "Error"})]
    assert pod_failure(no_message) == ("Error", "c: exit code 2 (Error), no message")
    assert pod_failure([pod("d", "Succeeded", terminated={"exitCode": 0})]) is None


@pytest.mark.parametrize(("pods", "expected"), [
    ([pod("a", "Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                       "message": "0/1 nodes"}])], ("Unschedulable", "0/1 nodes")),
    ([pod("a", "Pending", waiting={"reason": "ImagePullBackOff", "message": "Back-off pulling"})],
     ("ImagePullBackOff", "Back-off pulling")),
    ([pod("a", "Pending", waiting={"reason": "CreateContainerConfigError", "message": 'secret "x" not found'})],
     ("CreateContainerConfigError", 'secret "x" not found')),
    ([pod("a", "Running")], None),
    ([pod("a", "Failed", waiting={"reason": "ImagePullBackOff"})], None),  # only active pods count
])
def test_pod_problem(pods: list[dict[str, Any]], expected: tuple[str, str] | None) -> None:
    assert pod_problem(None, "ns", pods) == expected  # type: ignore[arg-type]  # no pod is creating: no API call


def test_reports_by_completion_index() -> None:
    pods = [pod("b", "Succeeded", index=1, terminated={"exitCode": 0, "message": '{"outputs": {"x": "1"}}'}),
            pod("a", "Succeeded", index=0, terminated={"exitCode": 0, "message": '{"metrics": {"m": 2}}'}),
            pod("c", "Failed", index=2, terminated={"exitCode": 1, "message": '{"outputs": {"x": "3"}}'})]
    assert reports(pods) == ({"outputs": {}, "metrics": {"m": 2.0}}, {"outputs": {"x": "1"}, "metrics": {}})


def test_restart_request_is_a_new_annotation_value() -> None:
    assert restart_request(stage()) is None
    assert restart_request(stage(annotations={"rlaif.dev/restart": "1"})) == "1"
    handled = Status(restart_handled="1")
    assert restart_request(stage(annotations={"rlaif.dev/restart": "1"}, status=handled)) is None
    assert restart_request(stage(annotations={"rlaif.dev/restart": "2"}, status=handled)) == "2"


def test_a_restart_request_on_a_stage_that_did_not_fail_is_refused_visibly() -> None:
    running = stage(annotations={"rlaif.dev/restart": "7"}, status=Status(phase="Running", job_uid="j"))
    status, events = restart_stage(None, running, "7")  # type: ignore[arg-type]  # touches nothing: no API
    assert status.restart_handled == "7" and status.phase == "Running" and status.job_uid == "j"
    assert [(t, r) for t, r, _ in events] == [("Warning", "RestartIgnored")]
    assert "only a Failed stage is run again" in events[0][2]


def test_only_multi_node_training_is_a_gang() -> None:
    assert is_gang(stage(nodes=2))
    assert not is_gang(stage(nodes=1))
    assert not is_gang(stage("PreferenceLabelJob"))


def test_the_cache_ignores_late_events_of_what_the_operator_deleted() -> None:
    cache = Cache()
    job = {"kind": "Job", "metadata": {"name": "j", "namespace": "ns", "uid": "old", "resourceVersion": "5"}}
    cache.put(job)
    cache.mark_gone(("Job", "ns", "j"), "old")
    assert cache.get(("Job", "ns", "j")) is None
    assert not cache.put({**job, "metadata": {**job["metadata"], "resourceVersion": "6"}})
    assert cache.get(("Job", "ns", "j")) is None
    fresh = {"kind": "Job", "metadata": {"name": "j", "namespace": "ns", "uid": "new", "resourceVersion": "7"}}
    assert cache.put(fresh) and cache.get(("Job", "ns", "j")) == fresh


SETTINGS = OperatorSettings(recheck_seconds=3)


@pytest.mark.parametrize(("status", "job", "expected"), [
    (Status(phase="Waiting", conditions=[Condition(type="Running", status="False", reason="NameConflict")]),
     None, 3),
    (Status(phase="Waiting", conditions=[Condition(type="Running", status="False", reason="CreateForbidden")]),
     None, 3),
    (Status(phase="Running"), JobObservation(name="j", exists=True, active=2, ready=1), 3),  # a pod may be stuck
    (Status(phase="Running"), JobObservation(name="j", exists=True, active=2, ready=2), None),  # events say all
    (Status(phase="Pending"), JobObservation(name="j", exists=True), 3),
    (Status(phase="Pending"), JobObservation(name="j", exists=True, suspended=True), None),  # Kueue unsuspends
    (Status(phase="Failed"), JobObservation(name="j", exists=True, active=1), None),
])
def test_recheck(status: Status, job: JobObservation | None, expected: float | None) -> None:
    assert _recheck(SETTINGS, status, StageObservation(job=job)) == expected
