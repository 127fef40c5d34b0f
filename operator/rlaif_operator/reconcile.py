"""One idempotent, level-based reconcile per kind: observe, ensure, recompute status.

``reconcile_stage`` and ``reconcile_pipeline`` take the resource's latest body and do the same thing
whatever triggered them (creation, a restart, a Job event, an upstream's status, a timed re-check):

1. parse the body into the typed resource (input the schema let through becomes ``InvalidSpec``);
   a ``rlaif.dev/restart`` request is acted on first (``ensure.restart_stage``);
2. observe (``observe``, reads only): the upstream and the Secrets until the Job exists, then the Job
   and, when its counts do not explain enough, its pods;
3. ensure (``ensure``, writes): create the missing children under deterministic names with owner
   references (a 409 finds ours; a stranger's object is reported, never adopted);
4. compute the status (``status.compute_status``, pure) and patch it only if it changed, posting an
   Event per transition; once the result is recorded, release the Jobs' result finalizer.

Runs in a worker thread (the client is synchronous); ``controller`` decides when.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rlaif_jobs.config.base import describe_errors
from rlaif_operator import metrics
from rlaif_operator.api.common import API_VERSION, ObjectMeta, Status
from rlaif_operator.api.conditions import Reason
from rlaif_operator.api.kinds import KINDS, STAGE_KINDS, Resource, RLAIFPipeline, StageResource
from rlaif_operator.builders.children import build_pipeline_children, spec_problems
from rlaif_operator.context import Context, owned_by, seconds
from rlaif_operator.ensure import REFUSED, ensure_stage, release_jobs, restart_request, restart_stage
from rlaif_operator.guardrails import guardrail_problems
from rlaif_operator.kube import KubeError
from rlaif_operator.observe import observe_stage
from rlaif_operator.settings import OperatorSettings
from rlaif_operator.status import (
    ChildObservation,
    StageObservation,
    compute_pipeline_status,
    compute_status,
    is_final,
    status_for_patch,
    transition_events,
)

log = logging.getLogger(__name__)
# Waits no watch event ends: the operator looks again on a timer (with backoff).
RECHECK_REASONS = (Reason.SECRET_NOT_FOUND, Reason.SECRET_KEY_NOT_FOUND, Reason.NAME_CONFLICT,
                   Reason.CREATE_FORBIDDEN)


@dataclass
class Outcome:
    """What a reconcile did: the body as now stored, whether the status changed, when to look again."""

    body: dict[str, Any] | None = None
    changed: bool = False
    recheck_after: float | None = None  # a wait no event ends: looked at again with backoff
    refresh_after: float | None = None  # a running stage's progress: read again at this fixed interval
    # Only the live fields changed (progress): the stages waiting on this one need not look again.
    progress_only: bool = False
    # The stage just recorded its result: its Jobs' result finalizer is to be released (``release``),
    # which the controller does after the hand-off, off the path a waiting stage is on.
    release: bool = False


# --- parsing ---------------------------------------------------------------------------------------


def parse(body: dict[str, Any]) -> tuple[Resource, list[str]]:
    """The typed resource, or a shell of it (metadata and status only) plus the spec's problems."""
    cls = KINDS[body["kind"]]
    try:
        return cls.model_validate(body), []
    except ValidationError as err:
        problems = describe_errors(err)
    try:
        status = Status.model_validate(body.get("status") or {})
    except ValidationError:
        status = Status()
    shell = cls.model_construct(api_version=API_VERSION, kind=body["kind"],  # type: ignore[arg-type]
                                metadata=ObjectMeta.model_validate(body["metadata"]), status=status,
                                spec=None)  # type: ignore[arg-type]  # a shell: nothing reads a refused spec
    return shell, problems


def parse_stage(body: dict[str, Any]) -> tuple[StageResource, list[str]]:
    """``parse`` for the stage kinds (reconcile_stage is registered for those only)."""
    resource, problems = parse(body)
    assert isinstance(resource, StageResource), resource.kind
    return resource, problems


# --- stages ----------------------------------------------------------------------------------------


def _recheck(settings: OperatorSettings, status: Status, obs: StageObservation | None) -> float | None:
    """When to look again although no event will say so: a missing Secret, a name taken by a stranger,
    a refused create, pods not yet scheduled or not yet running."""
    if any(c.status == "False" and c.reason in RECHECK_REASONS for c in status.conditions):
        return settings.recheck_seconds
    job = obs.job if obs is not None else None
    if job is not None and job.exists and not job.suspended and status.phase not in ("Succeeded", "Failed") \
            and (status.phase == "Pending" or job.active > job.ready):
        return settings.recheck_seconds
    return None


def _refresh(settings: OperatorSettings, status: Status, obs: StageObservation) -> float | None:
    """When to read a running stage's progress again (None: it does not run, or live progress is off)."""
    job = obs.job
    running = status.phase == "Running" and job is not None and job.exists and job.ready > 0
    return settings.progress_interval_seconds if running and settings.progress_interval_seconds else None


def progress_only(old: Status, new: Status) -> bool:
    """Whether the two statuses differ in their live progress only."""
    return status_for_patch(old.model_copy(update={"progress": None})) == \
        status_for_patch(new.model_copy(update={"progress": None}))


def write_status(ctx: Context, body: dict[str, Any], old: Status, new: Status) -> tuple[dict[str, Any], bool]:
    """Patches the status if it changed and posts an Event per transition; returns (body, changed)."""
    before, after = status_for_patch(old), status_for_patch(new)
    if before == after:
        return body, False
    patch: dict[str, Any] = dict(after)
    for key in before:
        if key not in after:
            patch[key] = None  # a merge patch removes only what it names as null
    meta = body["metadata"]
    stored = ctx.kube.patch_status(API_VERSION, body["kind"], meta.get("namespace"), meta["name"], patch)
    metrics.record_status(body["kind"], meta.get("namespace"), meta["name"], new)  # the per-run series
    for event in transition_events(old, new):
        ctx.event(stored, event.type, event.reason, event.message)
    if new.phase != old.phase and new.phase in ("Succeeded", "Failed"):
        if new.phase == "Failed":
            reason = next((c.reason for c in new.conditions if c.type == "Failed"), "")
            metrics.STAGE_FAILURES.labels(body["kind"], reason).inc()
        if new.start_time and new.completion_time:
            metrics.STAGE_SECONDS.labels(body["kind"], new.phase).observe(
                max(0.0, seconds(new.completion_time) - seconds(new.start_time)))
    return stored, True


def reconcile_stage(ctx: Context, body: dict[str, Any]) -> Outcome:
    """Reconciles a PreferenceLabelJob, RewardModelRun or PolicyRLRun body."""
    resource, problems = parse_stage(body)
    if body["metadata"].get("deletionTimestamp"):
        release_jobs(ctx, resource)  # nothing to record any more; the garbage collector takes the Jobs
        return Outcome()
    changed = False
    restart = restart_request(resource)
    if restart is not None:
        fresh, events = restart_stage(ctx, resource, restart)
        body, changed = write_status(ctx, body, resource.status, fresh)
        for event_type, reason, message in events:
            ctx.event(body, event_type, reason, message)
        resource, problems = parse_stage(body)
    if is_final(resource.status):
        release_jobs(ctx, resource)  # the result is recorded: the Jobs may go (TTL, a delete)
        return Outcome(body=body, changed=changed)  # finished for good: nothing to observe or create
    if not problems:
        problems = spec_problems(resource, ctx.settings)
    obs = observe_stage(ctx, resource, problems)
    obs = ensure_stage(ctx, resource, obs)
    new = compute_status(resource, obs, ctx.now())
    stored, wrote = write_status(ctx, body, resource.status, new)
    return Outcome(body=stored, changed=changed or wrote, recheck_after=_recheck(ctx.settings, new, obs),
                   refresh_after=_refresh(ctx.settings, new, obs),
                   progress_only=wrote and not changed and progress_only(resource.status, new),
                   release=is_final(new))


def release(ctx: Context, body: dict[str, Any]) -> None:
    """Releases the Jobs of a stage whose result ``body`` records (after ``Outcome.release``)."""
    resource, _ = parse_stage(body)
    release_jobs(ctx, resource)


# --- pipelines ---------------------------------------------------------------------------------------


def reconcile_pipeline(ctx: Context, body: dict[str, Any]) -> Outcome:
    """Reconciles an RLAIFPipeline: its three stage resources exist, its status sums theirs up."""
    if body["metadata"].get("deletionTimestamp"):
        return Outcome()
    pipeline, problems = parse(body)
    problems = problems or guardrail_problems(pipeline, ctx.settings)  # fail before the first stage starts
    if problems:
        obs = StageObservation(spec_errors=tuple(problems))
        new = compute_status(pipeline, obs, ctx.now())
        stored, changed = write_status(ctx, body, pipeline.status, new)
        return Outcome(body=stored, changed=changed)
    assert isinstance(pipeline, RLAIFPipeline)
    if pipeline.status.phase == "Succeeded":
        return Outcome(body=body)  # finished for good: its stages are not re-run, its status is final
    ns = pipeline.metadata.namespace
    children = []
    for manifest in build_pipeline_children(pipeline):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        child = ctx.cache.get((kind, ns, name))  # not in the watch cache yet: the create's 409 finds it
        if child is None:
            # Missing: never made, or deleted by a user to re-run a failed stage.
            try:
                child, created = ctx.kube.create(manifest)
            except KubeError as err:
                if err.status not in REFUSED:
                    raise
                children.append(ChildObservation(kind, name, create_error=(err.status, err.body.get("message")
                                                                           or str(err))))
                continue
            if created:
                metrics.CHILDREN_CREATED.labels(kind).inc()
            ctx.cache.put(child)
        try:
            status = Status.model_validate(child.get("status") or {})
        except ValidationError:
            status = Status()
        children.append(ChildObservation(kind, name, exists=True, owned=owned_by(child, pipeline.metadata.uid),
                                         status=status))
    new = compute_pipeline_status(pipeline, children, ctx.now())
    stored, changed = write_status(ctx, body, pipeline.status, new)
    return Outcome(body=stored, changed=changed, recheck_after=_recheck(ctx.settings, new, None))


def reconcile(ctx: Context, body: dict[str, Any]) -> Outcome:
    """Dispatches on kind; records the reconcile's metrics."""
    kind = body["kind"]
    started = time.perf_counter()
    try:
        outcome = reconcile_pipeline(ctx, body) if kind == "RLAIFPipeline" else reconcile_stage(ctx, body)
    except (KubeError, OSError):
        metrics.RECONCILES.labels(kind, "error").inc()
        raise
    finally:
        metrics.RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
    metrics.RECONCILES.labels(kind, "ok").inc()
    return outcome


__all__ = ["STAGE_KINDS", "Context", "KubeError", "Outcome", "reconcile", "reconcile_pipeline", "reconcile_stage",
           "release"]
