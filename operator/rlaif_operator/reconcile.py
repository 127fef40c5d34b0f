"""One idempotent, level-based reconcile per kind: observe, create what is missing, recompute status.

``reconcile_stage`` and ``reconcile_pipeline`` take the resource's latest body and do the same thing
whatever triggered them (creation, a restart, a Job event, an upstream's status, a timed re-check):

1. parse the body into the typed resource (input the schema let through becomes ``InvalidSpec``);
2. observe: the upstream and the Secrets (until the Job exists), the Jobs, the finished pods' summaries;
3. create the missing children under deterministic names with owner references (a 409 means "already
   there": nothing is ever duplicated, after a restart included);
4. compute the status (``status.compute_status``, pure) and patch it only if it changed, posting an
   Event per transition.

Runs in a worker thread (the client is synchronous); ``controller`` decides when.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rlaif_jobs.config.base import describe_errors
from rlaif_operator import metrics
from rlaif_operator.api.common import API_VERSION, ObjectMeta, Status
from rlaif_operator.api.kinds import KINDS, Resource, RLAIFPipeline
from rlaif_operator.builders import names
from rlaif_operator.builders.children import build_pipeline_children, build_stage_children, needs_merge, spec_problems
from rlaif_operator.builders.networkpolicy import build_network_policy
from rlaif_operator.builders.pod import referenced_secrets
from rlaif_operator.builders.workload import upstream_ref
from rlaif_operator.cache import Cache
from rlaif_operator.guardrails import guardrail_problems
from rlaif_operator.kube import Kube, KubeError
from rlaif_operator.settings import OperatorSettings
from rlaif_operator.status import (
    ChildObservation,
    JobObservation,
    StageObservation,
    UpstreamObservation,
    compute_pipeline_status,
    compute_status,
    is_final,
    parse_report,
    status_for_patch,
    transition_events,
)

log = logging.getLogger(__name__)
STAGE_KINDS = ("PreferenceLabelJob", "RewardModelRun", "PolicyRLRun")


@dataclass
class Context:
    """What a reconcile needs: the API, settings, the watch cache, a clock."""

    kube: Kube
    settings: OperatorSettings
    cache: Cache = field(default_factory=Cache)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # How Events get posted: inline by default; the controller hands them to a background thread so
    # that a reconcile (and the hand-off behind it) never waits for them.
    post_event: Callable[[dict[str, Any], str, str, str], None] | None = None

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        (self.post_event or self.kube.post_event)(obj, event_type, reason, message)


@dataclass
class Outcome:
    """What a reconcile did: the body as now stored, whether the status changed, when to look again."""

    body: dict[str, Any] | None = None
    changed: bool = False
    recheck_after: float | None = None


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
    shell = cls.model_construct(api_version=API_VERSION, kind=body["kind"],
                                metadata=ObjectMeta.model_validate(body["metadata"]), status=status, spec=None)
    return shell, problems


def _owned_by(obj: dict[str, Any], uid: str | None) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences", []))


# --- observing Jobs ------------------------------------------------------------------------------


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", [])
                 if c.get("type") == ctype and c.get("status") == "True"), None)


def _reports(ctx: Context, namespace: str | None, job_name: str) -> tuple[dict[str, Any], ...]:
    """The summaries the Job's succeeded pods left in their termination messages, by completion index."""
    pods = ctx.kube.list("v1", "Pod", namespace, f"{names.JOB_NAME_LABEL}={job_name}")
    by_index: dict[int, dict[str, Any]] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        index = int((pod["metadata"].get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION, 0))
        for cs in pod["status"].get("containerStatuses", []):
            report = parse_report(((cs.get("state") or {}).get("terminated") or {}).get("message"))
            if report is not None:
                by_index[index] = report
                break
    return tuple(by_index[i] for i in sorted(by_index))


def _unschedulable(ctx: Context, namespace: str | None, job_name: str) -> str | None:
    pods = ctx.kube.list("v1", "Pod", namespace, f"{names.JOB_NAME_LABEL}={job_name}")
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                    and cond.get("reason") == "Unschedulable":
                return cond.get("message") or "Unschedulable"
    return None


def observe_job(ctx: Context, resource: Resource, job: dict[str, Any] | None, name: str) -> JobObservation:
    """A JobObservation from the Job's body (None: it does not exist)."""
    if job is None:
        return JobObservation(name=name)
    spec, status = job.get("spec") or {}, job.get("status") or {}
    failed = _condition(job, "Failed")
    complete = _condition(job, "Complete") is not None
    obs = JobObservation(
        name=name, exists=True, owned=_owned_by(job, resource.metadata.uid),
        suspended=bool(spec.get("suspend")), active=status.get("active", 0), ready=status.get("ready", 0) or 0,
        succeeded=status.get("succeeded", 0), failed=status.get("failed", 0),
        completions=spec.get("completions") or 1, start_time=status.get("startTime"),
        completion_time=status.get("completionTime"), complete=complete,
        failed_reason=failed.get("reason") if failed else None,
        failed_message=failed.get("message") if failed else None,
    )
    namespace = resource.metadata.namespace
    if obs.owned and complete:
        obs = replace(obs, reports=_reports(ctx, namespace, name))
    elif obs.owned and not failed and not obs.suspended and obs.active and not obs.ready and (
            obs.start_time is None or ctx.now().timestamp() - _seconds(obs.start_time)
            >= ctx.settings.unschedulable_after_seconds):
        obs = replace(obs, unschedulable=_unschedulable(ctx, namespace, name))
    return obs


def _job_body(ctx: Context, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The Job as the watch last reported it. No GET on a miss: a Job the watch has not delivered yet
    is found by the create's 409 (and its event reconciles the owner again anyway)."""
    return ctx.cache.get(("Job", namespace, name))


def _create(ctx: Context, manifest: dict[str, Any]) -> dict[str, Any]:
    obj, created = ctx.kube.create(manifest)
    if created:
        metrics.CHILDREN_CREATED.labels(manifest["kind"]).inc()
        log.info("created %s %s/%s", manifest["kind"], manifest["metadata"].get("namespace"),
                 manifest["metadata"]["name"])
    return obj


# --- stages ----------------------------------------------------------------------------------------


def _observe_upstream(ctx: Context, resource: Resource) -> UpstreamObservation | None:
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


def _missing_secrets(ctx: Context, resource: Resource) -> tuple[str, ...]:
    missing = []
    for name, key in referenced_secrets(resource):
        secret = ctx.kube.get("v1", "Secret", resource.metadata.namespace, name)
        if secret is None:
            missing.append(name)
        elif key is not None and key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
            missing.append(f"{name}/{key}")
    return tuple(missing)


def observe_stage(ctx: Context, resource: Resource, spec_errors: list[str]) -> StageObservation:
    """Observes a stage and creates its missing children when its inputs are ready."""
    if spec_errors:
        return StageObservation(spec_errors=tuple(spec_errors))
    ns = resource.metadata.namespace
    merge = needs_merge(resource)
    job_name = names.job_name(resource)
    job_body = _job_body(ctx, ns, job_name)
    if job_body is None and any(c.type == "InputsReady" and c.status == "True" for c in resource.status.conditions):
        # Started before, but the watch has not delivered its Job yet (an operator restart): ask.
        job_body = ctx.kube.get("batch/v1", "Job", ns, job_name)
    if job_body is not None and _owned_by(job_body, resource.metadata.uid):
        obs = StageObservation(job=observe_job(ctx, resource, job_body, job_name), needs_merge=merge, started=True)
    else:
        obs = StageObservation(upstream=_observe_upstream(ctx, resource), needs_merge=merge,
                               missing_secrets=_missing_secrets(ctx, resource),
                               job=observe_job(ctx, resource, job_body, job_name))
        if job_body is None:
            provisional = compute_status(resource, obs, ctx.now())
            inputs = next(c for c in provisional.conditions if c.type == "InputsReady")
            if inputs.status == "True" and provisional.phase != "Failed":
                up = obs.upstream
                uri = up.outputs.get(up.output) if up is not None else None
                children = build_stage_children(resource, uri, ctx.settings)
                for manifest in children.before_job():
                    _create(ctx, manifest)
                if (policy := build_network_policy(resource, ctx.settings)) is not None:  # i11: rendezvous port
                    _create(ctx, policy)
                job_body = _create(ctx, children.job)
                ctx.cache.put(job_body)
                if up is not None:
                    _observe_handoff(up)
                obs = replace(obs, job=observe_job(ctx, resource, job_body, job_name),
                              started=_owned_by(job_body, resource.metadata.uid))
    if merge and obs.job is not None and obs.job.exists and obs.job.owned and obs.job.complete:
        merge_name = names.merge_job_name(resource)
        merge_body = _job_body(ctx, ns, merge_name)
        if merge_body is None:
            children = build_stage_children(resource, None, ctx.settings)
            assert children.merge_job is not None
            merge_body = _create(ctx, children.merge_job)
            ctx.cache.put(merge_body)
        obs = replace(obs, merge_job=observe_job(ctx, resource, merge_body, merge_name))
    return obs


def _observe_handoff(up: UpstreamObservation) -> None:
    """Records the upstream-finished -> downstream-Job-created latency (metric, 1 s resolution)."""
    if up.completion_time:
        metrics.HANDOFF_SECONDS.observe(max(0.0, time.time() - _seconds(up.completion_time)))


def _recheck(settings: OperatorSettings, status: Status, obs: StageObservation | None) -> float | None:
    """When to look again although no event will say so: a missing Secret, pods not yet scheduled."""
    inputs = next((c for c in status.conditions if c.type == "InputsReady"), None)
    if inputs is not None and inputs.reason in ("SecretNotFound", "SecretKeyNotFound"):
        return settings.recheck_seconds
    if obs is not None and status.phase == "Pending" and obs.job is not None and obs.job.exists \
            and not obs.job.suspended:
        return settings.recheck_seconds
    return None


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
    for event in transition_events(old, new):
        ctx.event(stored, event.type, event.reason, event.message)
    if new.phase != old.phase and new.phase in ("Succeeded", "Failed"):
        if new.phase == "Failed":
            reason = next((c.reason for c in new.conditions if c.type == "Failed"), "")
            metrics.STAGE_FAILURES.labels(body["kind"], reason).inc()
        if new.start_time and new.completion_time:
            metrics.STAGE_SECONDS.labels(body["kind"], new.phase).observe(
                max(0.0, _seconds(new.completion_time) - _seconds(new.start_time)))
    return stored, True


def _seconds(timestamp: str) -> float:
    return datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


def reconcile_stage(ctx: Context, body: dict[str, Any]) -> Outcome:
    """Reconciles a PreferenceLabelJob, RewardModelRun or PolicyRLRun body."""
    if body["metadata"].get("deletionTimestamp"):
        return Outcome()
    resource, problems = parse(body)
    if is_final(resource.status):
        return Outcome(body=body)  # finished for good: nothing to observe, nothing to create
    if not problems:
        problems = spec_problems(resource, ctx.settings)
        problems += guardrail_problems(resource, ctx.settings)  # i11: admin guardrails
    obs = observe_stage(ctx, resource, problems)
    new = compute_status(resource, obs, ctx.now())
    stored, changed = write_status(ctx, body, resource.status, new)
    return Outcome(body=stored, changed=changed, recheck_after=_recheck(ctx.settings, new, obs))


# --- pipelines ---------------------------------------------------------------------------------------


def reconcile_pipeline(ctx: Context, body: dict[str, Any]) -> Outcome:
    """Reconciles an RLAIFPipeline: its three stage resources exist, its status sums theirs up."""
    if body["metadata"].get("deletionTimestamp"):
        return Outcome()
    pipeline, problems = parse(body)
    problems = problems or guardrail_problems(pipeline, ctx.settings)  # i11: admin guardrails
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
            child = _create(ctx, manifest)
            ctx.cache.put(child)
        if child is None:
            children.append(ChildObservation(kind, name))
            continue
        try:
            status = Status.model_validate(child.get("status") or {})
        except ValidationError:
            status = Status()
        children.append(ChildObservation(kind, name, exists=True, owned=_owned_by(child, pipeline.metadata.uid),
                                         status=status))
    new = compute_pipeline_status(pipeline, children, ctx.now())
    stored, changed = write_status(ctx, body, pipeline.status, new)
    return Outcome(body=stored, changed=changed)


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


__all__ = ["STAGE_KINDS", "Context", "KubeError", "Outcome", "reconcile", "reconcile_pipeline", "reconcile_stage"]
