"""Acting on a stage: create its missing children, release its finished Jobs, restart it on request.

Every write the operator makes to objects other than its resources' status lives here:

- ``ensure_stage``: creates the ConfigMap, a trainer's NetworkPolicy (and Service, on several nodes)
  and the Job (then the merge Job) once the inputs are ready, under deterministic names. A create that
  meets an existing object keeps it only if this resource is its controller; a stranger is reported
  (``conflict``), never adopted. A create the API refuses (4xx) is reported with the API's message
  (``create_error``) instead of retried unseen.
- ``release_jobs`` / ``release_orphan``: take the operator's finalizer off a Job once its result is in
  the stage's status (or its owner is gone), so TTL, a hand delete or the garbage collector can finish.
- ``restart_gang``: a failed worker of a multi-node training group fails the group; its Job is deleted
  so that the whole group starts again from the last checkpoint (bounded by ``runtime.backoffLimit``).
  A preempted or evicted worker does too (the Job's FailJob rule on DisruptionTarget), counted in
  ``status.preemptions`` and not bounded: like the Job controller's Ignore rule for a single pod,
  which replaces a disrupted pod however often, a disruption is the cluster's decision, not the
  workload's failure, and every one is announced (a ``GangPreempted`` Event); ``activeDeadlineSeconds``
  still bounds each attempt, and deleting the resource stops it.
- ``restart_stage``: the ``rlaif.dev/restart`` annotation, a user's explicit request to run a failed
  stage again: its Jobs are deleted and its status starts over.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import replace
from typing import Any

from rlaif_operator import metrics, reaction
from rlaif_operator.api.common import API_VERSION, Status
from rlaif_operator.api.conditions import RESTART_ANNOTATION, Reason
from rlaif_operator.api.kinds import StageResource
from rlaif_operator.builders import names
from rlaif_operator.builders.children import build_stage_children
from rlaif_operator.builders.jobs import is_gang
from rlaif_operator.context import Context, owned_by, seconds
from rlaif_operator.kube import KubeError
from rlaif_operator.observe import job_body, job_pods, observe_job
from rlaif_operator.status import StageObservation, inputs_ready

log = logging.getLogger(__name__)
REFUSED = (400, 403, 422)  # the API's "no" to a create: bad request, forbidden (RBAC, quota, admission), invalid
# Sends the creates that go out together beside the reconcile's own thread (each waits on its API call).
CREATE_THREADS = 4
_WRITERS = futures.ThreadPoolExecutor(max_workers=CREATE_THREADS, thread_name_prefix="create")


def _describe_owner(obj: dict[str, Any]) -> str:
    ref = next((r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")), None)
    if ref is None:
        return "controlled by no object"
    return f"controlled by {ref.get('kind')}/{ref.get('name')} uid {ref.get('uid')}"


def create_child(ctx: Context, resource: StageResource, manifest: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                      dict[str, Any]]:
    """Creates one child. Returns (the child, {}) when it is this resource's, else (None, the
    observation fields that say why not: ``conflict`` or ``create_error``). Other API errors raise."""
    kind, name = manifest["kind"], manifest["metadata"]["name"]
    try:
        obj, created = ctx.kube.create(manifest)
    except KubeError as err:
        if err.status not in REFUSED:
            raise
        message = err.body.get("message") or str(err)
        log.warning("creating %s %s/%s was refused: %s", kind, resource.metadata.namespace, name, message)
        return None, {"create_error": (err.status, f"{kind}/{name}", message)}
    if created:
        metrics.CHILDREN_CREATED.labels(kind).inc()
        log.info("created %s %s/%s", kind, resource.metadata.namespace, name)
        return obj, {}
    if not owned_by(obj, resource.metadata.uid):
        return None, {"conflict": f"{kind}/{name} ({_describe_owner(obj)})"}
    if obj["metadata"].get("deletionTimestamp") or ctx.cache.is_gone(obj["metadata"].get("uid")):
        # Ours, from before a restart, and still going away: try again once it is gone.
        raise KubeError(409, "Conflict", {"message": f"{kind} {name} from before a restart is still being deleted"})
    return obj, {}


def create_together(ctx: Context, resource: StageResource, manifests: list[dict[str, Any]]
                    ) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """``create_child`` of each manifest, all sent at once (one round trip to wait for, not one each:
    nothing among them refers to another). Returns their results in order; the first API error any of
    them raised is raised once all are done."""
    if len(manifests) < 2:
        return [create_child(ctx, resource, m) for m in manifests]
    others = [_WRITERS.submit(reaction.in_context(create_child), ctx, resource, m) for m in manifests[1:]]
    try:
        first = create_child(ctx, resource, manifests[0])
    finally:
        futures.wait(others)
    return [first] + [f.result() for f in others]


def ensure_stage(ctx: Context, resource: StageResource, obs: StageObservation) -> StageObservation:
    """Creates what the stage is missing and returns the observation updated with what now exists."""
    if obs.spec_errors or obs.lost:
        return obs
    if obs.started:
        job = obs.job
        if job is not None and job.owned and job.preempted and is_gang(resource):
            return restart_gang(ctx, resource, obs, preempted=True)  # not counted against backoffLimit
        if job is not None and job.owned and job.failed_reason == "BackoffLimitExceeded" and is_gang(resource) \
                and (resource.status.restarts or 0) < resource.spec.runtime.backoff_limit:
            return restart_gang(ctx, resource, obs)
        if obs.needs_merge and job is not None and job.complete and not job.failed_reason and obs.merge_job is None:
            children = build_stage_children(resource, None, ctx.settings)
            assert children.merge_job is not None
            merge, problem = create_child(ctx, resource, children.merge_job)
            if merge is None:
                return replace(obs, **problem)
            ctx.cache.put(merge)
            obs = replace(obs, merge_job=observe_job(ctx, resource, merge, names.merge_job_name(resource)))
        return obs
    if obs.job is not None and obs.job.exists:
        return obs  # a Job of that name that is not ours: compute_status reports it
    if not inputs_ready(resource, obs):
        return obs
    up = obs.upstream
    uri = up.outputs.get(up.output) if up is not None else None
    children = build_stage_children(resource, uri, ctx.settings)
    for child, problem in create_together(ctx, resource, children.before_job()):
        if child is None:
            return replace(obs, **problem)
    created, problem = create_child(ctx, resource, children.job)
    if created is None:
        return replace(obs, **problem)
    ctx.cache.put(created)
    if up is not None and up.completion_time:
        # upstream finished -> downstream Job created (1 s timestamp resolution)
        metrics.HANDOFF_SECONDS.observe(max(0.0, ctx.now().timestamp() - seconds(up.completion_time)))
    return replace(obs, job=observe_job(ctx, resource, created, names.job_name(resource)), started=True)


def restart_gang(ctx: Context, resource: StageResource, obs: StageObservation,
                 preempted: bool = False) -> StageObservation:
    """One worker of a multi-node group failed, or was preempted or evicted, so the group did: deletes
    its Job (the next reconcile creates it again, and the trainers resume from their last checkpoint)
    and says so. A preemption is counted in ``status.preemptions``, a failure in ``status.restarts``."""
    assert obs.job is not None
    jobs = _stage_jobs(ctx, resource)
    said = ""
    if preempted:
        main = next((j for j in jobs if j["metadata"]["name"] == obs.job.name), None)
        said = _disruption(ctx, resource, main) if main is not None else ""
    for job in jobs:
        _delete_job(ctx, job)
    nodes = resource.spec.resources.nodes
    if preempted:
        count = (resource.status.preemptions or 0) + 1
        return replace(obs, gang_preempted=True, gang_restart=(
            f"a worker of Job {obs.job.name} was preempted or evicted{said}: restarting all {nodes} workers from"
            f" the last checkpoint (preemption {count}, not counted against runtime.backoffLimit)"))
    count, limit = (resource.status.restarts or 0) + 1, resource.spec.runtime.backoff_limit
    said = f" ({obs.job.pod_failure[1]})" if obs.job.pod_failure else ""
    return replace(obs, gang_restart=f"a worker of Job {obs.job.name} failed{said}: restarting all {nodes} workers"
                   f" from the last checkpoint (group restart {count} of runtime.backoffLimit {limit})")


def _disruption(ctx: Context, resource: StageResource, job: dict[str, Any]) -> str:
    """" (pod P: REASON, MESSAGE)" of the Job's pod whose DisruptionTarget condition is True (the
    scheduler's preemption, an eviction, a taint), or "" when that pod is gone already."""
    for pod in job_pods(ctx, resource.metadata.namespace, job):
        cond = next((c for c in (pod.get("status") or {}).get("conditions", [])
                     if c.get("type") == "DisruptionTarget" and c.get("status") == "True"), None)
        if cond is not None:
            detail = ": ".join(x for x in (cond.get("reason"), cond.get("message")) if x)
            return f" (pod {pod['metadata']['name']}" + (f": {detail})" if detail else ")")
    return ""


def _delete_job(ctx: Context, job: dict[str, Any]) -> None:
    """Deletes a Job of ours for good: releases it, deletes it (this uid only), forgets it."""
    meta = job["metadata"]
    if names.RESULT_FINALIZER in (meta.get("finalizers") or []):
        _release(ctx, job)
    ctx.kube.delete("batch/v1", "Job", meta.get("namespace"), meta["name"], uid=meta.get("uid"))
    ctx.cache.mark_gone(("Job", meta.get("namespace"), meta["name"]), meta["uid"])


# --- the result finalizer ----------------------------------------------------------------------------


def _release(ctx: Context, job: dict[str, Any]) -> None:
    try:
        patched = ctx.kube.remove_finalizer(job, names.RESULT_FINALIZER)
    except KubeError as err:
        if err.status not in (409, 422):
            raise
        # The finalizer list changed under us: the Job's next event brings its new body, and a new try.
        log.info("finalizer of Job %s/%s changed meanwhile: %s", job["metadata"].get("namespace"),
                 job["metadata"]["name"], err)
        return
    if patched is not None:
        ctx.cache.put(patched)


def _stage_jobs(ctx: Context, resource: StageResource, ask: bool = False) -> list[dict[str, Any]]:
    ns = resource.metadata.namespace
    found = []
    for name in (names.job_name(resource), names.merge_job_name(resource)):
        body = job_body(ctx, ns, name, ask=ask)
        if body is not None and owned_by(body, resource.metadata.uid):
            found.append(body)
    return found


def release_jobs(ctx: Context, resource: StageResource) -> None:
    """Takes the result finalizer off the stage's Jobs: their result is recorded (or never will be)."""
    for job in _stage_jobs(ctx, resource):
        if names.RESULT_FINALIZER in (job["metadata"].get("finalizers") or []):
            _release(ctx, job)


def release_orphan(ctx: Context, job: dict[str, Any]) -> None:
    """Releases a Job being deleted whose owner is gone (deleted with its namespace, say): no status
    is left to write its result into."""
    ref = next((r for r in job["metadata"].get("ownerReferences", []) if r.get("controller")), None)
    if ref is not None:
        owner = ctx.kube.get(API_VERSION, ref["kind"], job["metadata"].get("namespace"), ref["name"])
        if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
            return  # the owner exists: its reconcile records the result, then releases the Job
    _release(ctx, job)


# --- restart on request ----------------------------------------------------------------------------


def restart_request(resource: StageResource) -> str | None:
    """The rlaif.dev/restart annotation's value, if the operator has not acted on it yet."""
    value = resource.metadata.annotations.get(RESTART_ANNOTATION)
    return value if value and value != resource.status.restart_handled else None


def restart_stage(ctx: Context, resource: StageResource, value: str) -> tuple[Status, list[tuple[str, str, str]]]:
    """Acts on a restart request. Returns the status to write and the Events (type, reason, message).

    A Failed stage starts over: its Jobs are deleted (the finalizer released first) and its status
    is emptied (``restartHandled`` records the request). Any other phase is left alone, and the Event says why.
    """
    status = resource.status
    if status.phase != "Failed":
        return (status.model_copy(update={"restart_handled": value}),
                [("Warning", Reason.RESTART_IGNORED, f"{RESTART_ANNOTATION}={value} ignored: the stage is"
                  f" {status.phase or 'not started'}; only a Failed stage is run again")])
    deleted = []
    for job in _stage_jobs(ctx, resource, ask=True):
        _delete_job(ctx, job)
        deleted.append(job["metadata"]["name"])
    fresh = Status(restart_handled=value)  # a new run: its group restarts start from 0 again
    what = f"deleted Job {', '.join(deleted)}; " if deleted else ""
    return fresh, [("Normal", Reason.RESTARTED, f"{RESTART_ANNOTATION}={value}: {what}running the stage again")]
