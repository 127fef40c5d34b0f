"""Pure status logic: what the operator observed in, the resource's ``Status`` out.

``compute_status(resource, observed, now)`` for the three stages and ``compute_pipeline_status`` for a
pipeline; ``transition_events(old, new)`` names the Kubernetes Events a change deserves. No I/O, no
kopf, no client: table-driven tests cover every path (tests/unit/operator/test_status.py).

Conditions (one per type, always all four): ``InputsReady``, ``Running``, ``Succeeded``, ``Failed``;
reasons are CamelCase and messages say what to do. ``phase`` summarises them for ``kubectl get``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rlaif_operator.api.common import Condition, StageStatus, Status
from rlaif_operator.api.conditions import (
    FINAL_FAILURES,
    POD_WAITING_PROBLEMS,
    RESTART_ANNOTATION,
    ConditionType,
    Reason,
)
from rlaif_operator.api.kinds import STAGE_NAMES, RLAIFPipeline, StageResource
from rlaif_operator.evaluation_status import evaluation_conditions

CONDITION_TYPES = tuple(ConditionType)
TERMINAL = ("Succeeded", "Failed")


# --- what the reconcile observed -------------------------------------------------------------------


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


@dataclass(frozen=True)
class ChildObservation:
    """One stage resource of a pipeline."""

    kind: str
    name: str
    exists: bool = False
    owned: bool = True
    status: Status | None = None
    create_error: tuple[int, str] | None = None  # the API refused to create it: (HTTP code, its message)


# --- helpers -------------------------------------------------------------------------------------


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
    outputs = {str(k): str(v) for k, v in (data.get("outputs") or {}).items()}
    metrics = {str(k): float(v) for k, v in (data.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"outputs": outputs, "metrics": metrics}


def is_final(status: Status) -> bool:
    """Whether the stage's own Job finished: Succeeded, or Failed for a reason of the Job's. Such a
    stage is never run again (a new resource is)."""
    if status.phase == "Succeeded":
        return True
    reason = next((c.reason for c in status.conditions if c.type == ConditionType.FAILED and c.status == "True"), "")
    return status.phase == "Failed" and reason in FINAL_FAILURES


def _rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(previous: Status, now: datetime, generation: int | None,
                wanted: dict[str, tuple[bool, str, str]]) -> list[Condition]:
    """Builds the four conditions, keeping lastTransitionTime where the status did not change."""
    before = {c.type: c for c in previous.conditions}
    out = []
    for ctype in CONDITION_TYPES:
        value, reason, message = wanted[ctype]
        status = "True" if value else "False"
        old = before.get(ctype)
        since = old.last_transition_time if old is not None and old.status == status else _rfc3339(now)
        out.append(Condition(type=ctype, status=status, reason=reason, message=message,
                             last_transition_time=since, observed_generation=generation))
    return out


@dataclass
class _Verdict:
    """The outcome being assembled: phase and the four conditions' (value, reason, message)."""

    phase: str
    inputs: tuple[bool, str, str]
    running: tuple[bool, str, str] = (False, Reason.NOT_STARTED, "")
    succeeded: tuple[bool, str, str] = (False, Reason.NOT_FINISHED, "")
    failed: tuple[bool, str, str] = (False, Reason.NO_FAILURE, "")

    @property
    def message(self) -> str:
        for value, _, message in (self.failed, self.succeeded, self.running):
            if value and message:
                return message
        if not self.inputs[0]:
            return self.inputs[2]
        return self.running[2] or self.inputs[2]


def _fail(verdict: _Verdict, reason: str, message: str) -> _Verdict:
    verdict.phase = "Failed"
    verdict.failed = (True, reason, message)
    verdict.running = (False, reason, "")
    verdict.succeeded = (False, reason, "")
    return verdict


def _ref(kind: str, name: str) -> str:
    return f"{kind}/{name}"


# --- stages --------------------------------------------------------------------------------------


def _inputs(resource: StageResource, obs: StageObservation) -> _Verdict:
    """The InputsReady part: spec problems, the upstream, the Secrets."""
    up = obs.upstream
    if obs.started and not obs.spec_errors:
        kept = next((c for c in resource.status.conditions
                     if c.type == ConditionType.INPUTS_READY and c.status == "True"), None)
        if kept is not None:
            return _Verdict("Pending", (True, kept.reason, kept.message))
        return _Verdict("Pending", (True, Reason.INPUTS_RESOLVED, "inputs were resolved when the Job was created"))
    if obs.spec_errors:
        text = "; ".join(obs.spec_errors)
        return _fail(_Verdict("Failed", (False, Reason.INVALID_SPEC, text)), Reason.INVALID_SPEC, text)
    if up is not None:
        ref = _ref(up.kind, up.name)
        if not up.found and up.other_kind:
            text = (f"{up.name} is a {up.other_kind}, not a {up.kind}: point the reference at a {up.kind}"
                    " (recreate this resource with the right name)")
            return _fail(_Verdict("Failed", (False, Reason.INVALID_REFERENCE, text)), Reason.INVALID_REFERENCE, text)
        if not up.found:
            was_seen = any(c.type == ConditionType.INPUTS_READY
                           and c.reason in (Reason.WAITING_FOR_UPSTREAM, Reason.UPSTREAM_DELETED)
                           for c in resource.status.conditions)
            if was_seen:
                text = f"upstream {ref} was deleted while this resource waited for it: recreate it"
                return _Verdict("Waiting", (False, Reason.UPSTREAM_DELETED, text))
            text = f"upstream {ref} does not exist yet: create it (this resource starts once it has Succeeded)"
            return _Verdict("Waiting", (False, Reason.UPSTREAM_NOT_FOUND, text))
        if up.phase == "Failed":
            text = f"upstream {ref} failed" + (f": {up.message}" if up.message else "")
            return _fail(_Verdict("Failed", (False, Reason.UPSTREAM_FAILED, text)), Reason.UPSTREAM_FAILED, text)
        if up.phase != "Succeeded":
            # The upstream's own phase is not repeated here: it would rewrite this status at each change.
            text = f"waiting for upstream {ref} to succeed"
            return _Verdict("Waiting", (False, Reason.WAITING_FOR_UPSTREAM, text))
        if not up.outputs.get(up.output):
            text = (f"upstream {ref} succeeded but reported no {up.output!r} output"
                    " (its pods' termination messages were lost?): re-run it")
            return _fail(_Verdict("Failed", (False, Reason.UPSTREAM_OUTPUT_MISSING, text)),
                         Reason.UPSTREAM_OUTPUT_MISSING, text)
    if obs.missing_secrets:
        names_ = ", ".join(obs.missing_secrets)
        text = (f"Secret {names_} not found in namespace {resource.metadata.namespace or 'default'}:"
                " create it; the stage starts as soon as it exists")
        reason = Reason.SECRET_KEY_NOT_FOUND if all("/" in s for s in obs.missing_secrets) else Reason.SECRET_NOT_FOUND
        return _Verdict("Waiting", (False, reason, text))
    if up is not None:
        text = f"using {up.output} from {_ref(up.kind, up.name)}: {up.outputs[up.output]}"
        return _Verdict("Pending", (True, Reason.UPSTREAM_SUCCEEDED, text))
    return _Verdict("Pending", (True, Reason.INPUTS_GIVEN, "inputs are given as URIs"))


RESTART_HINT = ("to run it again, `kubectl annotate {kind} {name} " + RESTART_ANNOTATION
                + "=$(date +%s) --overwrite`")

# What to do about a pod stuck in a waiting state, by reason.
POD_PROBLEM_FIX = {
    Reason.UNSCHEDULABLE: "check resources.gpusPerNode, nodeSelector and tolerations",
    Reason.IMAGE_PULL_BACK_OFF: "check runtime.image (or the operator's image settings) and the registry's"
                                " pull secret",
    Reason.ERR_IMAGE_PULL: "check runtime.image (or the operator's image settings) and the registry's pull secret",
    Reason.INVALID_IMAGE_NAME: "fix runtime.image",
    Reason.CREATE_CONTAINER_CONFIG_ERROR: "create the Secret or ConfigMap the pod refers to",
    Reason.CREATE_CONTAINER_ERROR: "see `kubectl describe pod`",
    Reason.FAILED_MOUNT: "check runtime.storage.pvcName and that the volume can be attached to the node",
    Reason.FAILED_CREATE: "the API refused the Job's pods: fix what the message names (quota, service account,"
                          " admission policy)",
}


def _job_failure(job: JobObservation, kind: str, name: str) -> tuple[str, str]:
    """(reason, message) of a failed Job, from its Failed condition and what its failed pods said."""
    reason = job.failed_reason or Reason.JOB_FAILED
    detail = job.failed_message or "the Job failed"
    hint = RESTART_HINT.format(kind=kind, name=name)
    said = ""
    if job.pod_failure is not None:
        if job.pod_failure[0] == Reason.OOM_KILLED:
            return (Reason.OOM_KILLED, f"a pod of Job {job.name} was killed for using more memory than its limit"
                    f" ({job.pod_failure[1]}), not retried with the same limit: raise spec.resources.memory, or"
                    f" lower the batch size (create a new resource; {hint})")
        said = f"; the last failed pod said: {job.pod_failure[1]}"
    if reason == "PodFailurePolicy" and "exit code 137" in detail:  # SIGKILL, but no OOMKilled pod left to say so
        return (Reason.JOB_FAILED, f"a pod of Job {job.name} was killed (exit code 137, not retried){said}: if it ran"
                " out of memory, raise spec.resources.memory")
    if reason == "PodFailurePolicy":
        return (Reason.CONFIG_ERROR, f"the workload rejected its configuration (exit code 3), not retried: {detail}"
                f"{said}. Fix the spec and create a new resource; `kubectl logs job/{job.name}` shows why")
    if reason == Reason.BACKOFF_LIMIT_EXCEEDED:
        return (reason, f"pods of Job {job.name} failed more often than runtime.backoffLimit allows: {detail}{said}."
                f" See `kubectl logs job/{job.name}`; {hint}")
    if reason == Reason.DEADLINE_EXCEEDED:
        return (reason, f"Job {job.name} ran longer than runtime.activeDeadlineSeconds: {detail}{said}")
    return (Reason.JOB_FAILED, f"Job {job.name} failed ({reason}): {detail}{said}")


def _running(verdict: _Verdict, job: JobObservation, what: str) -> _Verdict:
    """Running/Pending from a Job that has not finished."""
    if job.suspended:
        verdict.phase = "Pending"
        verdict.running = (False, Reason.QUEUED, f"{what} {job.name} is suspended until Kueue admits it")
    elif job.pod_problem:
        reason, text = job.pod_problem
        fix = POD_PROBLEM_FIX.get(reason, "see `kubectl describe pod`")  # type: ignore[call-overload]
        verdict.phase = "Pending"
        verdict.running = (False, reason, f"pods of {what} {job.name} cannot run ({reason}): {text} ({fix})")
    elif job.active or job.succeeded:
        verdict.phase = "Running"
        verdict.running = (True, Reason.JOB_RUNNING, f"{what} {job.name}: {job.succeeded}/{job.completions}"
                           f" completions done, {job.active} pods active")
    else:
        verdict.phase = "Pending"
        verdict.running = (False, Reason.JOB_CREATED, f"{what} {job.name} created, waiting for its pods")
    return verdict


def _job_deleted(verdict: _Verdict, job_name: str, kind: str, name: str, detail: str = "") -> _Verdict:
    return _fail(verdict, Reason.JOB_DELETED, f"Job {job_name} was deleted before it finished{detail}: the stage"
                 f" is not re-run on its own; {RESTART_HINT.format(kind=kind, name=name)}")


def _results(job: JobObservation) -> tuple[dict[str, str], dict[str, float]]:
    """Outputs and metrics from the summaries: rank 0 / the merge pod reports the stage's summary."""
    outputs: dict[str, str] = {}
    metrics: dict[str, float] = {}
    for report in reversed(job.reports):  # index 0 last, so it wins
        if report:
            outputs.update(report.get("outputs", {}))
            metrics.update(report.get("metrics", {}))
    return outputs, metrics


def compute_status(resource: StageResource, observed: StageObservation, now: datetime) -> Status:
    """The stage's status from what was observed.

    Inputs: the resource (its current status supplies transition times and what was seen before),
    the observation, and the current time. Output: the new ``Status``.
    """
    previous = resource.status
    generation = resource.metadata.generation
    job = observed.job
    final = observed.merge_job if observed.needs_merge else job

    # A stage whose Job finished stays finished, even once the Job is gone (ttlSecondsAfterFinished).
    if is_final(previous):
        return previous.model_copy(update={"observed_generation": generation})

    verdict = _inputs(resource, observed)
    start_time, completion_time = previous.start_time, previous.completion_time
    outputs, metrics = dict(previous.outputs), dict(previous.metrics)

    kind, name = resource.kind, resource.metadata.name
    if verdict.phase != "Failed" and verdict.inputs[0] and observed.create_error is not None:
        code, child, message = observed.create_error
        if code in (400, 422):
            _fail(verdict, Reason.CHILD_REJECTED, f"the API rejected {child} ({code}): {message}. Fix the spec"
                  " field it names and create a new resource")
        else:
            verdict.phase = "Waiting"
            verdict.running = (False, Reason.CREATE_FORBIDDEN, f"the API refused to create {child} ({code}):"
                               f" {message}. Fix what it names (RBAC, quota, admission policy); the operator"
                               " tries again with backoff")
    elif verdict.phase != "Failed" and verdict.inputs[0] and observed.conflict is not None:
        verdict.phase = "Waiting"
        verdict.running = (False, Reason.NAME_CONFLICT, f"{observed.conflict} already exists and is not owned by"
                           f" this {kind}: delete it or rename this resource; the stage starts once it is gone")
    elif verdict.phase != "Failed" and verdict.inputs[0] and observed.gang_restart is not None:
        verdict.phase = "Pending"
        verdict.running = (False, Reason.GANG_RESTART, observed.gang_restart)
    elif verdict.phase != "Failed" and verdict.inputs[0] and observed.lost:
        if observed.lost_summary is not None:
            outputs = {str(k): str(v) for k, v in (observed.lost_summary.get("outputs") or {}).items()}
            metrics = {str(k): float(v) for k, v in (observed.lost_summary.get("metrics") or {}).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            verdict.phase = "Succeeded"
            completion_time = completion_time or _rfc3339(now)
            verdict.running = (False, Reason.COMPLETED, "")
            verdict.succeeded = (True, Reason.JOB_SUCCEEDED, f"{kind} {name} succeeded (its Job is gone; the"
                                 f" result was read from its summary.json): {_summary(metrics)}")
        else:
            _job_deleted(verdict, names_job(observed, previous), kind, name, observed.lost_detail)
    elif verdict.phase != "Failed" and verdict.inputs[0] and job is not None:
        if job.exists and not job.owned:
            verdict.phase = "Waiting"
            verdict.running = (False, Reason.NAME_CONFLICT, f"Job/{job.name} already exists and is not owned by"
                               f" this {kind}: delete it or rename this resource; the stage starts once it is"
                               " gone")
        elif job.exists:
            start_time = start_time or job.start_time
            if job.failed_reason:
                _fail(verdict, *_job_failure(job, kind, name))
            elif not job.complete and job.deleting:
                _job_deleted(verdict, job.name, kind, name)
            elif not job.complete:
                _running(verdict, job, "Job")
            elif observed.needs_merge and (final is None or not final.exists):
                verdict.phase = "Running"
                verdict.running = (True, Reason.MERGING, f"all {job.completions} shards done; merging their labels")
            elif final is not None and final.exists and not final.owned:
                verdict.phase = "Waiting"
                verdict.running = (False, Reason.NAME_CONFLICT, f"Job/{final.name} already exists and is not"
                                   f" owned by this {kind}: delete it or rename this resource")
            elif final is not None and final.failed_reason:
                _fail(verdict, *_job_failure(final, kind, name))
            elif final is not None and not final.complete and final.deleting:
                _job_deleted(verdict, final.name, kind, name)
            elif final is not None and not final.complete:
                _running(verdict, final, "merge Job")
                if verdict.phase == "Running":
                    verdict.running = (True, Reason.MERGING, verdict.running[2])
            else:
                assert final is not None
                outputs, metrics = _results(final)
                if observed.needs_merge:  # shard summaries carry per-shard metrics; the merge's win
                    shard_out, _ = _results(job)
                    outputs = {**shard_out, **outputs}
                verdict.phase = "Succeeded"
                completion_time = final.completion_time or _rfc3339(now)
                verdict.running = (False, Reason.COMPLETED, "")
                verdict.succeeded = (True, Reason.JOB_SUCCEEDED, f"{kind} {name} succeeded: {_summary(metrics)}")
        else:
            verdict.running = (False, Reason.JOB_CREATED, "creating the Job")
    if verdict.phase == "Failed":
        completion_time = completion_time or _rfc3339(now)
        if job is not None and job.exists:
            start_time = start_time or job.start_time

    job_uid = job.uid if job is not None and job.exists and job.owned and job.uid else previous.job_uid
    restarts = previous.restarts
    if observed.gang_restart is not None:
        job_uid, restarts = None, (previous.restarts or 0) + 1
    conditions = _conditions(previous, now, generation, {
        ConditionType.INPUTS_READY: verdict.inputs, ConditionType.RUNNING: verdict.running,
        ConditionType.SUCCEEDED: verdict.succeeded, ConditionType.FAILED: verdict.failed})
    if verdict.phase == "Succeeded":  # judge independence (the rule: evaluation_status.py)
        conditions += evaluation_conditions(resource.kind, metrics, _rfc3339(now), generation)
    return Status(phase=verdict.phase, message=verdict.message, conditions=conditions,  # type: ignore[arg-type]
                  observed_generation=generation, start_time=start_time,
                  completion_time=completion_time if verdict.phase in TERMINAL else None,
                  outputs=outputs, metrics=metrics, job_uid=job_uid, restarts=restarts,
                  restart_handled=previous.restart_handled)


def _summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())) or "no metrics reported"


def names_job(observed: StageObservation, previous: Status) -> str:
    """The lost Job's name, for the message (the observation names it; the uid is in the status)."""
    base = observed.job.name if observed.job is not None else "of this stage"
    return f"{base} (uid {previous.job_uid})" if previous.job_uid else base


# --- pipeline ------------------------------------------------------------------------------------


def compute_pipeline_status(pipeline: RLAIFPipeline, children: Iterable[ChildObservation],
                            now: datetime) -> Status:
    """One phase for the pipeline plus each stage's; metrics of all stages; outputs by stage.

    Inputs: the pipeline, its stage resources in run order as observed, the current time.
    """
    children = list(children)
    previous = pipeline.status
    stages = [StageStatus(name=c.name, kind=c.kind,
                          phase=(c.status.phase if c.exists and c.owned and c.status else None))
              for c in children]
    metrics: dict[str, float] = {}
    outputs: dict[str, str] = {}
    starts, ends = [], []
    for c in children:
        if c.exists and c.owned and c.status:
            metrics.update(c.status.metrics)
            short = STAGE_NAMES[c.kind]
            outputs.update({f"{short}.{k}": v for k, v in c.status.outputs.items()})
            if c.status.start_time:
                starts.append(c.status.start_time)
            if c.status.completion_time:
                ends.append(c.status.completion_time)

    conflict = next((c for c in children if c.exists and not c.owned), None)
    failed = next((c for c in children if c.exists and c.owned and c.status and c.status.phase == "Failed"), None)
    current = next((c for c in children if not (c.status and c.status.phase == "Succeeded")), None)
    missing = [c.name for c in children if not c.exists]
    created = (True, Reason.STAGES_CREATED, f"{len(children)} stages created") if not missing else \
        (False, Reason.CREATING_STAGES, f"creating {', '.join(missing)}")
    verdict = _Verdict("Pending", created)
    refused = next((c for c in children if c.create_error is not None), None)
    if refused is not None:
        assert refused.create_error is not None
        code, message = refused.create_error
        if code in (400, 422):
            _fail(verdict, Reason.CHILD_REJECTED, f"the API rejected {refused.kind}/{refused.name} ({code}):"
                  f" {message}. Fix the pipeline's field it names and create a new pipeline")
        else:
            verdict.phase = "Waiting"
            verdict.running = (False, Reason.CREATE_FORBIDDEN, f"the API refused to create {refused.kind}/"
                               f"{refused.name} ({code}): {message}. Fix what it names (RBAC, quota, admission"
                               " policy); the operator tries again with backoff")
    elif conflict is not None:
        verdict.phase = "Waiting"
        verdict.running = (False, Reason.NAME_CONFLICT, f"{conflict.kind}/{conflict.name} already exists and is not"
                           " owned by this pipeline: delete it or rename the pipeline; it goes on once the name"
                           " is free")
    elif failed is not None:
        assert failed.status is not None
        reason = next((c.reason for c in failed.status.conditions if c.type == ConditionType.FAILED), "")
        _fail(verdict, Reason.STAGE_FAILED, f"stage {failed.name} ({failed.kind}) failed: {reason}:"
              f" {failed.status.message or ''}".rstrip(": "))
    elif current is None and children:
        verdict.phase = "Succeeded"
        verdict.running = (False, Reason.COMPLETED, "")
        summary = ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())) or "no metrics reported"
        verdict.succeeded = (True, Reason.ALL_STAGES_SUCCEEDED, f"all stages succeeded: {summary}")
    else:
        phases = [s.phase for s in stages]
        if "Running" in phases:
            verdict.phase = "Running"
        elif "Pending" in phases or "Waiting" in phases:
            verdict.phase = "Pending" if any(p == "Pending" for p in phases) else "Waiting"
        if current is not None:
            cur_status = current.status.phase if current.status else None
            # Not the stage's own message: it changes with every pod, the pipeline's status need not.
            text = f"stage {current.name} ({current.kind}) is {cur_status or 'being created'}"
            verdict.running = (verdict.phase == "Running", Reason.STAGE_RUNNING if verdict.phase == "Running"
                               else Reason.STAGE_PENDING, text)
    conditions = _conditions(previous, now, pipeline.metadata.generation, {
        ConditionType.INPUTS_READY: verdict.inputs, ConditionType.RUNNING: verdict.running,
        ConditionType.SUCCEEDED: verdict.succeeded, ConditionType.FAILED: verdict.failed})
    terminal = verdict.phase in TERMINAL
    return Status(
        phase=verdict.phase, message=verdict.message, conditions=conditions,  # type: ignore[arg-type]
        observed_generation=pipeline.metadata.generation,
        start_time=min(starts) if starts else previous.start_time,
        completion_time=(previous.completion_time or (max(ends) if ends and not failed else _rfc3339(now)))
        if terminal else None,
        outputs=outputs, metrics=metrics,
        current_stage=None if terminal or current is None else current.name,
        stages=stages,
    )


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """A Kubernetes Event to post on the resource."""

    type: str  # Normal or Warning
    reason: str
    message: str


_WARNING_WAITS = (Reason.UPSTREAM_NOT_FOUND, Reason.UPSTREAM_DELETED, Reason.SECRET_NOT_FOUND,
                  Reason.SECRET_KEY_NOT_FOUND)
# InputsReady=False reasons whose Event the Failed condition already posts.
_FAILED_INPUTS = (Reason.INVALID_SPEC, Reason.INVALID_REFERENCE, Reason.UPSTREAM_FAILED, Reason.UPSTREAM_OUTPUT_MISSING)
# Running=False reasons that deserve an Event: the stage waits on something a user must see.
_RUNNING_EVENTS = (Reason.QUEUED, Reason.GANG_RESTART, Reason.UNSCHEDULABLE, Reason.NAME_CONFLICT,
                   Reason.CREATE_FORBIDDEN, Reason.FAILED_MOUNT, Reason.FAILED_CREATE, *POD_WAITING_PROBLEMS)


def transition_events(old: Status, new: Status) -> list[EventSpec]:
    """Events for what changed between two statuses: a condition becoming True, a new waiting reason,
    a stage that cannot be scheduled. Nothing when nothing changed (so restarts post no duplicates)."""
    before = {c.type: (c.status, c.reason) for c in old.conditions}
    events = []
    for c in new.conditions:
        if before.get(c.type) == (c.status, c.reason):
            continue
        if c.status == "True":
            kind = "Warning" if c.type == ConditionType.FAILED else "Normal"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
        elif c.type == ConditionType.INPUTS_READY and c.reason not in _FAILED_INPUTS:
            kind = "Warning" if c.reason in _WARNING_WAITS else "Normal"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
        elif c.type == ConditionType.RUNNING and c.reason in _RUNNING_EVENTS:  # JobCreated: InputsReady says it
            kind = "Normal" if c.reason == Reason.QUEUED else "Warning"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
    return events


def status_for_patch(status: Status) -> dict[str, Any]:
    """The status as the API stores it (camelCase, unset fields left out, empty maps kept out)."""
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
