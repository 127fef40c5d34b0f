"""Observing a stage: reads only (the watch cache first, the API where the cache cannot know).

``observe_stage`` gathers what ``status.compute_status`` needs: the upstream and the Secrets until the
Job exists; then the Job, and its pods only when the Job's counts cannot explain what happens (finished
pods' summaries, why pods do not run, what failed pods said). Nothing here creates or changes anything:
``ensure`` does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from rlaif_jobs import io, summaries
from rlaif_operator.api.common import API_VERSION, Progress
from rlaif_operator.api.conditions import POD_WAITING_PROBLEMS, Reason
from rlaif_operator.api.kinds import StageResource
from rlaif_operator.builders import names
from rlaif_operator.builders.children import needs_merge
from rlaif_operator.builders.pod import referenced_secrets
from rlaif_operator.builders.workload import upstream_ref
from rlaif_operator.context import Context, owned_by, seconds
from rlaif_operator.kube import KubeError
from rlaif_operator.status import JobObservation, StageObservation, UpstreamObservation, parse_report
from rlaif_operator.status.progress import latest_event, log_tail, to_progress

log = logging.getLogger(__name__)
MAX_MESSAGE = 400  # characters of a pod's termination message carried into a condition


def _true(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", [])
                 if c.get("type") == ctype and c.get("status") == "True"), None)


# --- the Job's pods ------------------------------------------------------------------------------------


def job_pods(ctx: Context, namespace: str | None, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods of this Job (by its uid: an earlier Job of the same name may still have pods)."""
    pods = ctx.kube.list("v1", "Pod", namespace, f"{names.JOB_NAME_LABEL}={job['metadata']['name']}")
    return [p for p in pods if owned_by(p, job["metadata"].get("uid"))]


def reports(pods: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The summaries the succeeded pods left in their termination messages, by completion index."""
    by_index: dict[int, dict[str, Any]] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        index = int((pod["metadata"].get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION, 0))
        for cs in pod["status"].get("containerStatuses", []):
            found = parse_report(((cs.get("state") or {}).get("terminated") or {}).get("message"))
            if found is not None:
                by_index[index] = found
                break
    return tuple(by_index[i] for i in sorted(by_index))


def _memory_limit(pod: dict[str, Any], container: str) -> str:
    for c in pod["spec"].get("containers", []):
        if c.get("name") == container:
            return ((c.get("resources") or {}).get("limits") or {}).get("memory") or "no limit set"
    return "no limit set"


def pod_failure(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """What the last failed pod said: ("OOMKilled", "container X, memory limit Y") if any pod was killed
    for memory, else ("Error", its termination message or exit code)."""
    failed = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Failed":
            continue
        for cs in pod["status"].get("containerStatuses", []):
            term = (cs.get("state") or {}).get("terminated") or {}
            if term and term.get("exitCode", 0) != 0:
                failed.append((term.get("finishedAt") or "", pod, cs["name"], term))
    if not failed:
        return None
    failed.sort(key=lambda f: f[0])
    for _, pod, container, term in reversed(failed):
        if term.get("reason") == Reason.OOM_KILLED:
            return (Reason.OOM_KILLED, f"pod {pod['metadata']['name']}, container {container}: memory limit"
                    f" {_memory_limit(pod, container)}")
    _, pod, container, term = failed[-1]
    message = (term.get("message") or "").strip()
    if len(message) > MAX_MESSAGE:
        message = "..." + message[-MAX_MESSAGE:]
    said = message or f"exit code {term.get('exitCode')} ({term.get('reason') or 'Error'}), no message"
    return ("Error", f"{pod['metadata']['name']}: {said}")


def pod_problem(ctx: Context, namespace: str | None, pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """Why active pods do not run: the scheduler's verdict, a container stuck waiting (image pull, a
    missing Secret), or a volume the kubelet cannot mount (its FailedMount Event)."""
    creating = []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") not in ("Pending", "Running"):
            continue
        for cond in status.get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                    and cond.get("reason") == "Unschedulable":
                return (Reason.UNSCHEDULABLE, cond.get("message") or "Unschedulable")
        statuses = status.get("initContainerStatuses", []) + status.get("containerStatuses", [])
        for cs in statuses:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in POD_WAITING_PROBLEMS:
                return (waiting["reason"], waiting.get("message") or waiting["reason"])
        scheduled = any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                        for c in status.get("conditions", []))
        if scheduled and not any((cs.get("state") or {}).get("running") for cs in statuses):
            creating.append(pod["metadata"].get("uid"))
    if creating:
        events = _events(ctx, namespace, "involvedObject.kind=Pod,reason=FailedMount")
        mine = [e for e in events if (e.get("involvedObject") or {}).get("uid") in creating]
        if mine:
            latest = max(mine, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
            return (Reason.FAILED_MOUNT, latest.get("message") or "FailedMount")
    return None


def _events(ctx: Context, namespace: str | None, selector: str) -> list[dict[str, Any]]:
    """Events matching a field selector; none when the operator may not list Events (an RBAC without
    ``events list`` loses these details, not the reconcile)."""
    try:
        return ctx.kube.list("v1", "Event", namespace, field_selector=selector)
    except KubeError as err:
        if err.status != 403:
            raise
        log.warning("cannot list Events in %s (%s): pod problems are reported without their Events", namespace, err)
        return []


def failed_create(ctx: Context, namespace: str | None, job: dict[str, Any]) -> tuple[str, str] | None:
    """The Job controller's FailedCreate Event: it could not create the pods (admission, quota)."""
    uid = job["metadata"].get("uid")
    events = _events(ctx, namespace, f"involvedObject.uid={uid},reason=FailedCreate")
    if not events:
        return None
    latest = max(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return (Reason.FAILED_CREATE, latest.get("message") or "FailedCreate")


# --- the pods' logs: live progress, and the last lines of a finished stage ------------------------------


def _index(pod: dict[str, Any]) -> int:
    return int((pod["metadata"].get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION, 0))


def _container(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["name"])


def _rank0(pods: list[dict[str, Any]], phases: tuple[str, ...]) -> dict[str, Any] | None:
    """The newest pod of completion index 0 in one of ``phases`` (rank 0 of a trainer, shard 0 of labeling)."""
    mine = [p for p in pods if _index(p) == 0 and (p.get("status") or {}).get("phase") in phases]
    return max(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def finished_log_tail(ctx: Context, namespace: str | None, pods: list[dict[str, Any]],
                      failed: bool) -> tuple[str, ...] | None:
    """The last lines of the pod that says how the Job ended: the failed pod that finished last, or
    rank 0 of a completed Job (None: no such pod, or its log is gone)."""
    if failed:
        done = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        pod = max(done, key=lambda p: max((((cs.get("state") or {}).get("terminated") or {}).get("finishedAt") or ""
                                           for cs in p["status"].get("containerStatuses", [])), default=""),
                  default=None)
    else:
        pod = _rank0(pods, ("Succeeded",))
    if pod is None:
        return None
    text = ctx.kube.read_log(namespace or "", pod["metadata"]["name"], _container(pod))
    return tuple(log_tail(text)) if text else None


def running_progress(ctx: Context, namespace: str | None, job: dict[str, Any]) -> Progress | None:
    """Reads the latest progress of a running Job from its rank-0 pod's log tail, at most every
    ``progress_interval_seconds`` (None: not due, off, or nothing reported yet)."""
    interval = ctx.settings.progress_interval_seconds
    uid = job["metadata"].get("uid") or ""
    last, pod_name = ctx.progress_reads.get(uid, (None, ""))
    now = time.monotonic()
    if not interval or (last is not None and now - last < interval * 0.9):  # a timer may fire a little early
        return None
    text = ctx.kube.read_log(namespace or "", pod_name) if pod_name else None
    if text is None:  # first read, or that pod is gone (replaced): find rank 0 again
        selector = f"{names.JOB_NAME_LABEL}={job['metadata']['name']},{names.COMPLETION_INDEX_ANNOTATION}=0"
        pods = [p for p in ctx.kube.list("v1", "Pod", namespace, selector) if owned_by(p, uid)]
        pod = _rank0(pods, ("Running",))
        pod_name = pod["metadata"]["name"] if pod is not None else ""
        text = ctx.kube.read_log(namespace or "", pod_name, _container(pod)) if pod is not None else None
    ctx.progress_reads[uid] = (now, pod_name)
    event = latest_event(text or "")
    return None if event is None else to_progress(event, ctx.now())


# --- the Job -------------------------------------------------------------------------------------------


def observe_job(ctx: Context, resource: StageResource, job: dict[str, Any] | None, name: str) -> JobObservation:
    """A JobObservation from the Job's body (None: it does not exist). Lists the pods only when the
    Job finished (summaries, failure messages) or its active pods are not all ready after a while."""
    if job is None:
        return JobObservation(name=name)
    spec, status = job.get("spec") or {}, job.get("status") or {}
    failed = _true(job, "Failed")
    complete = _true(job, "Complete") is not None
    obs = JobObservation(
        name=name, exists=True, owned=owned_by(job, resource.metadata.uid),
        suspended=bool(spec.get("suspend")), active=status.get("active", 0), ready=status.get("ready", 0) or 0,
        succeeded=status.get("succeeded", 0), failed=status.get("failed", 0),
        completions=spec.get("completions") or 1, start_time=status.get("startTime"),
        completion_time=status.get("completionTime"), complete=complete,
        failed_reason=failed.get("reason") if failed else None,
        failed_message=failed.get("message") if failed else None,
        uid=job["metadata"].get("uid"), deleting=bool(job["metadata"].get("deletionTimestamp")),
    )
    if not obs.owned:
        return obs
    namespace = resource.metadata.namespace
    if complete or failed:
        ctx.progress_reads.pop(obs.uid or "", None)
        pods = job_pods(ctx, namespace, job)
        tail = finished_log_tail(ctx, namespace, pods, failed=not complete)
        if complete:
            return replace(obs, reports=reports(pods), log_tail=tail)
        return replace(obs, pod_failure=pod_failure(pods), log_tail=tail)
    stuck_for = None if obs.start_time is None else ctx.now().timestamp() - seconds(obs.start_time)
    too_soon = stuck_for is not None and stuck_for < ctx.settings.unschedulable_after_seconds
    if obs.suspended or obs.deleting or too_soon:
        return obs
    if obs.active > obs.ready:
        return replace(obs, pod_problem=pod_problem(ctx, namespace, job_pods(ctx, namespace, job)))
    if not obs.active and not obs.succeeded and stuck_for is not None:
        return replace(obs, pod_problem=failed_create(ctx, namespace, job))
    if obs.ready:
        progress = running_progress(ctx, namespace, job)
        if progress is not None:
            return replace(obs, progress=progress)
    return obs


def job_body(ctx: Context, namespace: str | None, name: str, ask: bool = False) -> dict[str, Any] | None:
    """The Job as the watch last reported it; with ``ask``, a GET on a miss (after an operator restart
    the watch may not have delivered it yet). Without: a Job the watch has not delivered yet is found
    by the create's 409 (and its event reconciles the owner again anyway)."""
    body = ctx.cache.get(("Job", namespace, name))
    if body is None and ask:
        body = ctx.kube.get("batch/v1", "Job", namespace, name)
    return body


# --- inputs --------------------------------------------------------------------------------------------


def observe_upstream(ctx: Context, resource: StageResource) -> UpstreamObservation | None:
    ref = upstream_ref(resource)
    if ref is None:
        return None
    ns = resource.metadata.namespace
    body = ctx.cache.get((ref.kind, ns, ref.name))
    if body is None:
        body = ctx.kube.get(API_VERSION, ref.kind, ns, ref.name)
    if body is None:
        others = [k for k in ctx.cache.kinds_named(ns, ref.name) if k != ref.kind]
        return UpstreamObservation(ref.kind, ref.name, ref.output, other_kind=others[0] if others else None)
    status = body.get("status") or {}
    return UpstreamObservation(ref.kind, ref.name, ref.output, found=True, phase=status.get("phase"),
                               outputs=dict(status.get("outputs") or {}), message=status.get("message"),
                               completion_time=status.get("completionTime"))


def missing_secrets(ctx: Context, resource: StageResource) -> tuple[str, ...]:
    missing = []
    for name, key in referenced_secrets(resource):
        secret = ctx.kube.get("v1", "Secret", resource.metadata.namespace, name)
        if secret is None:
            missing.append(name)
        elif key is not None and key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
            missing.append(f"{name}/{key}")
    return tuple(missing)


def lost_summary(resource: StageResource) -> tuple[dict[str, Any] | None, str]:
    """The summary.json a stage whose Job is gone left at its output URI, if the operator can read it.

    Only object-store URIs are read: a path lives on a volume the operator does not mount (reading the
    same path on the operator's own disk would answer for the wrong file). Returns (summary or None,
    why not, for the condition message)."""
    uri = resource.spec.output.uri
    where = summaries.summary_uri(uri)
    if not io.is_remote(uri):
        return None, f"; its summary {where} is on a volume the operator does not mount, so its result is unknown"
    try:
        summary = summaries.read_summary(uri)
    except Exception as err:  # noqa: BLE001 - any failure to read means "unknown", said in the message
        return None, f"; reading {where} failed ({type(err).__name__}: {err}), so its result is unknown"
    if summary is None:
        return None, f"; it left no {where}"
    return summary, ""


# --- the stage -----------------------------------------------------------------------------------------


def observe_stage(ctx: Context, resource: StageResource, spec_errors: list[str]) -> StageObservation:
    """What the stage's status depends on, read from the cache and the API; creates nothing."""
    if spec_errors:
        return StageObservation(spec_errors=tuple(spec_errors))
    ns = resource.metadata.namespace
    merge = needs_merge(resource)
    name = names.job_name(resource)
    recorded = resource.status.job_uid
    body = job_body(ctx, ns, name, ask=recorded is not None)
    if body is not None and ctx.cache.is_gone(body["metadata"].get("uid")):
        body = None  # a Job the operator deleted (a restart) whose deletion the watch has not reported yet
    if recorded is not None and (body is None or body["metadata"].get("uid") != recorded):
        summary, detail = lost_summary(resource)
        return StageObservation(job=JobObservation(name=name), needs_merge=merge, started=True, lost=True,
                                lost_summary=summary, lost_detail=detail)
    if body is not None and owned_by(body, resource.metadata.uid):
        obs = StageObservation(job=observe_job(ctx, resource, body, name), needs_merge=merge, started=True)
        if merge and obs.job is not None and obs.job.complete:
            merge_name = names.merge_job_name(resource)
            merge_body = job_body(ctx, ns, merge_name)
            if merge_body is not None:
                obs = replace(obs, merge_job=observe_job(ctx, resource, merge_body, merge_name))
        return obs
    return StageObservation(upstream=observe_upstream(ctx, resource), needs_merge=merge,
                            missing_secrets=missing_secrets(ctx, resource),
                            job=observe_job(ctx, resource, body, name))
