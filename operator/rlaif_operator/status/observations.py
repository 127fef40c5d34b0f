"""What a reconcile observed, the input of the status logic: dataclasses filled by observe.py (and by
tests), plus ``parse_report`` for a pod's termination message."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rlaif_operator.api.common import Progress, Status

# What Kubernetes' Job controller says in the Failed condition when a pod condition DisruptionTarget met a
# FailJob rule (pkg/controller/job/pod_failure_policy.go: "Pod %s/%s has condition %v matching %v rule at
# index %d").
PREEMPTED_MESSAGE = "has condition DisruptionTarget matching FailJob rule"


@dataclass(frozen=True)
class UpstreamObservation:
    """The upstream resource a stage takes its input from."""

    kind: str
    name: str
    output: str  # which of its status.outputs is consumed
    found: bool = False
    phase: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    other_kind: str | None = None  # the name exists, but as this other rlaif.dev kind
    completion_time: str | None = None


@dataclass(frozen=True)
class JobObservation:
    """A Job (as the API reports it) and the summaries its finished pods left."""

    name: str
    exists: bool = False
    owned: bool = True  # False: a Job of that name exists but belongs to something else
    suspended: bool = False
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    completions: int = 1
    start_time: str | None = None
    completion_time: str | None = None
    complete: bool = False
    failed_reason: str | None = None  # the Job's Failed condition reason (BackoffLimitExceeded, ...)
    failed_message: str | None = None
    reports: tuple[dict[str, Any], ...] = ()  # termination messages, by completion index
    uid: str | None = None
    deleting: bool = False  # deletionTimestamp set: held by the operator's finalizer until recorded
    # Why pods do not run: (reason, message) such as ("Unschedulable", the scheduler's message),
    # ("ImagePullBackOff", the kubelet's), ("FailedMount", the Event's), ("FailedCreate", the Job's Event).
    pod_problem: tuple[str, str] | None = None
    # What the failed pods said, once the Job failed: ("OOMKilled", memory limit) or ("Error", message).
    pod_failure: tuple[str, str] | None = None
    # While it runs: the latest progress its rank-0 pod logged, when the operator read it this time
    # (None: not read this time, the status keeps what it had).
    progress: Progress | None = None
    # Once it finished: the last lines its rank-0 pod (on success) or its failed pod logged.
    log_tail: tuple[str, ...] | None = None

    @property
    def preempted(self) -> bool:
        """Whether the Job failed because a pod was preempted or evicted: the FailJob rule on the pod
        condition DisruptionTarget that a gang's Job carries (builders/jobs.py), as the Job controller
        words it: "Pod NS/NAME has condition DisruptionTarget matching FailJob rule at index 1"."""
        return self.failed_reason == "PodFailurePolicy" and PREEMPTED_MESSAGE in (self.failed_message or "")


@dataclass(frozen=True)
class StageObservation:
    """Everything ``compute_status`` needs about a stage, gathered by the reconcile."""

    spec_errors: tuple[str, ...] = ()  # input the schema let through but the stage cannot run with
    upstream: UpstreamObservation | None = None
    missing_secrets: tuple[str, ...] = ()  # "name" or "name/key", each missing
    job: JobObservation | None = None
    merge_job: JobObservation | None = None
    needs_merge: bool = False
    started: bool = False  # the Job exists: inputs were resolved when it was created (upstream no longer read)
    # "Kind/name" of a child whose name is taken by an object this resource does not control.
    conflict: str | None = None
    # The API refused to create a child: (HTTP code, "Kind/name", the API's message).
    create_error: tuple[int, str, str] | None = None
    # The Job recorded in status.jobUid is gone (deleted by hand, or by TTL without the finalizer).
    lost: bool = False
    lost_summary: dict[str, Any] | None = None  # its summary.json, when the operator could read it
    lost_detail: str = ""  # why the summary could not be read
    # A multi-node group failed and its Job was deleted to start the whole group again: what failed.
    gang_restart: str | None = None
    gang_preempted: bool = False  # ... because a worker was preempted or evicted (not a failure of its own)


@dataclass(frozen=True)
class ChildObservation:
    """One stage resource of a pipeline."""

    kind: str
    name: str
    exists: bool = False
    owned: bool = True
    status: Status | None = None
    create_error: tuple[int, str] | None = None  # the API refused to create it: (HTTP code, its message)


def parse_report(message: str | None) -> dict[str, Any] | None:
    """A termination message as the workload wrote it ({"outputs", "metrics"}), or None if it is not
    one (e.g. the log tail Kubernetes falls back to when the workload crashed)."""
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None
    if not isinstance(data, dict) or not ({"outputs", "metrics"} & data.keys()):
        return None
    outputs, metrics = report_fields(data)
    return {"outputs": outputs, "metrics": metrics}


def report_fields(data: dict[str, Any]) -> tuple[dict[str, str], dict[str, float]]:
    """(outputs, metrics) of a summary or termination message, as strings and numbers (others dropped)."""
    outputs = {str(k): str(v) for k, v in (data.get("outputs") or {}).items()}
    metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return outputs, metrics
