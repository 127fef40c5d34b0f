"""A stage's status (PreferenceLabelJob, RewardModelRun, PolicyRLRun) from what the reconcile observed.

``compute_status(resource, observed, now)``: InputsReady first (spec problems, the upstream, the
Secrets); then, once the inputs are ready and nothing failed, what its children say: a child the API
refused or whose name is taken, a gang restart, a Job that was lost, or the Job (and the merge Job of
sharded labeling) running, failed or done. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rlaif_operator.api.common import Progress, Status
from rlaif_operator.api.conditions import FINAL_FAILURES, RESTART_ANNOTATION, ConditionType, Reason
from rlaif_operator.api.kinds import Resource
from rlaif_operator.status.evaluation import evaluation_conditions
from rlaif_operator.status.observations import JobObservation, StageObservation, report_fields
from rlaif_operator.status.verdict import (
    TERMINAL,
    Verdict,
    conditions,
    fail,
    metrics_line,
    name_conflict,
    refused,
    rfc3339,
)


def _ref(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def is_final(status: Status) -> bool:
    """Whether the stage's own Job finished: Succeeded, or Failed for a reason of the Job's. Such a
    stage is never run again (a new resource is)."""
    if status.phase == "Succeeded":
        return True
    reason = next((c.reason for c in status.conditions if c.type == ConditionType.FAILED and c.status == "True"), "")
    return status.phase == "Failed" and reason in FINAL_FAILURES


def _inputs(resource: Resource, obs: StageObservation) -> Verdict:
    """The InputsReady part: spec problems, the upstream, the Secrets."""
    up = obs.upstream
    if obs.started and not obs.spec_errors:
        kept = next((c for c in resource.status.conditions
                     if c.type == ConditionType.INPUTS_READY and c.status == "True"), None)
        if kept is not None:
            return Verdict("Pending", (True, kept.reason, kept.message))
        return Verdict("Pending", (True, Reason.INPUTS_RESOLVED, "inputs were resolved when the Job was created"))
    if obs.spec_errors:
        text = "; ".join(obs.spec_errors)
        return fail(Verdict("Failed", (False, Reason.INVALID_SPEC, text)), Reason.INVALID_SPEC, text)
    if up is not None:
        ref = _ref(up.kind, up.name)
        if not up.found and up.other_kind:
            text = (f"{up.name} is a {up.other_kind}, not a {up.kind}: point the reference at a {up.kind}"
                    " (recreate this resource with the right name)")
            return fail(Verdict("Failed", (False, Reason.INVALID_REFERENCE, text)), Reason.INVALID_REFERENCE, text)
        if not up.found:
            was_seen = any(c.type == ConditionType.INPUTS_READY
                           and c.reason in (Reason.WAITING_FOR_UPSTREAM, Reason.UPSTREAM_DELETED)
                           for c in resource.status.conditions)
            if was_seen:
                text = f"upstream {ref} was deleted while this resource waited for it: recreate it"
                return Verdict("Waiting", (False, Reason.UPSTREAM_DELETED, text))
            text = f"upstream {ref} does not exist yet: create it (this resource starts once it has Succeeded)"
            return Verdict("Waiting", (False, Reason.UPSTREAM_NOT_FOUND, text))
        if up.phase == "Failed":
            text = f"upstream {ref} failed" + (f": {up.message}" if up.message else "")
            return fail(Verdict("Failed", (False, Reason.UPSTREAM_FAILED, text)), Reason.UPSTREAM_FAILED, text)
        if up.phase != "Succeeded":
            # The upstream's own phase is not repeated here: it would rewrite this status at each change.
            text = f"waiting for upstream {ref} to succeed"
            return Verdict("Waiting", (False, Reason.WAITING_FOR_UPSTREAM, text))
        if not up.outputs.get(up.output):
            text = (f"upstream {ref} succeeded but reported no {up.output!r} output"
                    " (its pods' termination messages were lost?): re-run it")
            return fail(Verdict("Failed", (False, Reason.UPSTREAM_OUTPUT_MISSING, text)),
                         Reason.UPSTREAM_OUTPUT_MISSING, text)
    if obs.missing_secrets:
        names_ = ", ".join(obs.missing_secrets)
        text = (f"Secret {names_} not found in namespace {resource.metadata.namespace or 'default'}:"
                " create it; the stage starts as soon as it exists")
        reason = Reason.SECRET_KEY_NOT_FOUND if all("/" in s for s in obs.missing_secrets) else Reason.SECRET_NOT_FOUND
        return Verdict("Waiting", (False, reason, text))
    if up is not None:
        text = f"using {up.output} from {_ref(up.kind, up.name)}: {up.outputs[up.output]}"
        return Verdict("Pending", (True, Reason.UPSTREAM_SUCCEEDED, text))
    return Verdict("Pending", (True, Reason.INPUTS_GIVEN, "inputs are given as URIs"))


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
    if job.preempted:  # a gang's worker preempted: the operator restarts the group; this is what is left
        return (Reason.JOB_FAILED, f"a pod of Job {job.name} was preempted or evicted and the group was not"
                f" restarted: {detail}; {hint}")
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


def _running(verdict: Verdict, job: JobObservation, what: str) -> Verdict:
    """Running/Pending from a Job that has not finished."""
    if job.suspended:
        return verdict.wait("Pending", Reason.QUEUED, f"{what} {job.name} is suspended until Kueue admits it")
    if job.pod_problem:
        reason, text = job.pod_problem
        fix = POD_PROBLEM_FIX.get(reason, "see `kubectl describe pod`")  # type: ignore[call-overload]
        return verdict.wait("Pending", reason, f"pods of {what} {job.name} cannot run ({reason}): {text} ({fix})")
    if job.active or job.succeeded:
        verdict.phase = "Running"
        verdict.running = (True, Reason.JOB_RUNNING, f"{what} {job.name}: {job.succeeded}/{job.completions}"
                           f" completions done, {job.active} pods active")
        return verdict
    return verdict.wait("Pending", Reason.JOB_CREATED, f"{what} {job.name} created, waiting for its pods")


def _job_deleted(verdict: Verdict, job_name: str, kind: str, name: str, detail: str = "") -> Verdict:
    return fail(verdict, Reason.JOB_DELETED, f"Job {job_name} was deleted before it finished{detail}: the stage"
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


@dataclass
class _Result:
    """What the status reports besides the verdict: outputs, metrics, start and end times."""

    outputs: dict[str, str]
    metrics: dict[str, float]
    start: str | None
    end: str | None


def inputs_ready(resource: Resource, observed: StageObservation) -> bool:
    """Whether the stage may start: InputsReady would be True and nothing has failed (ensure asks this
    before it creates the Job)."""
    return _inputs(resource, observed).open


def compute_status(resource: Resource, observed: StageObservation, now: datetime) -> Status:
    """The stage's status from what was observed (a pipeline whose spec is refused gets its status here
    too: only the resource's kind, metadata and status are read).

    Inputs: the resource (its current status supplies transition times and what was seen before),
    the observation, and the current time. Output: the new ``Status``.
    """
    previous = resource.status
    generation = resource.metadata.generation
    # A stage whose Job finished stays finished, even once the Job is gone (ttlSecondsAfterFinished).
    if is_final(previous):
        return previous.model_copy(update={"observed_generation": generation})

    verdict = _inputs(resource, observed)
    result = _Result(dict(previous.outputs), dict(previous.metrics), previous.start_time, previous.completion_time)
    if verdict.open:
        _children(verdict, resource, observed, result, now)
    job = observed.job
    if verdict.phase == "Failed":
        result.end = result.end or rfc3339(now)
        if job is not None and job.exists:
            result.start = result.start or job.start_time

    job_uid = job.uid if job is not None and job.exists and job.owned and job.uid else previous.job_uid
    restarts, preemptions = previous.restarts, previous.preemptions
    if observed.gang_restart is not None and observed.gang_preempted:  # not counted against backoffLimit
        job_uid, preemptions = None, (previous.preemptions or 0) + 1
    elif observed.gang_restart is not None:
        job_uid, restarts = None, (previous.restarts or 0) + 1
    conds = conditions(previous, now, generation, verdict)
    if verdict.phase == "Succeeded":  # judge independence (the rule: status/evaluation.py)
        conds += evaluation_conditions(resource.kind, result.metrics, rfc3339(now), generation)
    progress, tail = _live(verdict, observed, previous)
    return Status(phase=verdict.phase, message=verdict.message, conditions=conds,  # type: ignore[arg-type]
                  observed_generation=generation, start_time=result.start,
                  completion_time=result.end if verdict.phase in TERMINAL else None,
                  outputs=result.outputs, metrics=result.metrics, job_uid=job_uid, restarts=restarts,
                  restart_handled=previous.restart_handled, progress=progress, log_tail=tail,
                  preemptions=preemptions)


def _live(verdict: Verdict, observed: StageObservation,
          previous: Status) -> tuple[Progress | None, list[str] | None]:
    """(status.progress, status.logTail): the progress read this time (else the last one) while the Job
    runs, none otherwise; the last lines of the Job that ended the stage, once it finished."""
    job = observed.merge_job if observed.merge_job is not None and observed.merge_job.exists else observed.job
    progress = None
    if verdict.phase == "Running" and observed.merge_job is None:
        progress = (job.progress if job is not None else None) or previous.progress
    tail = previous.log_tail
    if verdict.phase in TERMINAL:
        found = next((j.log_tail for j in (job, observed.job) if j is not None and j.log_tail), None)
        tail = list(found) if found else tail
    return progress, tail


def _children(verdict: Verdict, resource: Resource, obs: StageObservation, result: _Result,
              now: datetime) -> None:
    """The verdict once the inputs are ready: what the stage's children say, in order of precedence."""
    kind, job = resource.kind, obs.job
    if obs.create_error is not None:
        code, child, message = obs.create_error
        refused(verdict, code, child, message, "resource")
    elif obs.conflict is not None:
        name_conflict(verdict, obs.conflict, kind)
    elif obs.gang_restart is not None:
        verdict.wait("Pending", Reason.GANG_PREEMPTED if obs.gang_preempted else Reason.GANG_RESTART,
                     obs.gang_restart)
    elif obs.lost:
        _lost(verdict, resource, obs, result, now)
    elif job is None:
        return
    elif not job.exists:
        verdict.running = (False, Reason.JOB_CREATED, "creating the Job")
    elif not job.owned:
        name_conflict(verdict, f"Job/{job.name}", kind)
    else:
        result.start = result.start or job.start_time
        _job(verdict, resource, obs, job, result, now)


def _lost(verdict: Verdict, resource: Resource, obs: StageObservation, result: _Result, now: datetime) -> None:
    """The Job recorded in the status is gone: its summary.json, if the operator could read it, says
    how it ended; else the stage failed (it is not re-run on its own)."""
    kind, name = resource.kind, resource.metadata.name
    if obs.lost_summary is None:
        _job_deleted(verdict, names_job(obs, resource.status), kind, name, obs.lost_detail)
        return
    result.outputs, result.metrics = report_fields(obs.lost_summary)
    result.end = result.end or rfc3339(now)
    verdict.succeed(Reason.JOB_SUCCEEDED, f"{kind} {name} succeeded (its Job is gone; the result was read from its"
                    f" summary.json): {metrics_line(result.metrics)}")


def _job(verdict: Verdict, resource: Resource, obs: StageObservation, job: JobObservation, result: _Result,
         now: datetime) -> None:
    """The verdict from the stage's Job, and for sharded labeling its merge Job, once they exist."""
    kind, name = resource.kind, resource.metadata.name
    final = obs.merge_job if obs.needs_merge else job
    if _unfinished(verdict, job, "Job", kind, name):
        return
    if final is None or not final.exists:  # only when a merge is needed
        verdict.phase = "Running"
        verdict.running = (True, Reason.MERGING, f"all {job.completions} shards done; merging their labels")
    elif not final.owned:
        name_conflict(verdict, f"Job/{final.name}", kind)
    elif final is not job and _unfinished(verdict, final, "merge Job", kind, name):
        if verdict.phase == "Running":
            verdict.running = (True, Reason.MERGING, verdict.running[2])
    else:
        result.outputs, result.metrics = _results(final)
        if obs.needs_merge:  # shard summaries carry per-shard metrics; the merge's win
            result.outputs = {**_results(job)[0], **result.outputs}
        result.end = final.completion_time or rfc3339(now)
        verdict.succeed(Reason.JOB_SUCCEEDED, f"{kind} {name} succeeded: {metrics_line(result.metrics)}")


def _unfinished(verdict: Verdict, job: JobObservation, what: str, kind: str, name: str) -> bool:
    """Whether ``job`` has not completed: failed, deleted before it finished, or still running (the
    verdict then says which). False for a completed Job: the caller reads its result."""
    if job.failed_reason:
        fail(verdict, *_job_failure(job, kind, name))
    elif not job.complete and job.deleting:
        _job_deleted(verdict, job.name, kind, name)
    elif not job.complete:
        _running(verdict, job, what)
    else:
        return False
    return True


def names_job(observed: StageObservation, previous: Status) -> str:
    """The lost Job's name, for the message (the observation names it; the uid is in the status)."""
    base = observed.job.name if observed.job is not None else "of this stage"
    return f"{base} (uid {previous.job_uid})" if previous.job_uid else base
