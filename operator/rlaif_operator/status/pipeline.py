"""A pipeline's status: one phase and each stage's, all stages' metrics, outputs by stage. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rlaif_operator.api.common import Progress, StageStatus, Status
from rlaif_operator.api.conditions import ConditionType, Reason
from rlaif_operator.api.kinds import STAGE_NAMES, RLAIFPipeline
from rlaif_operator.status.observations import ChildObservation
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


def compute_pipeline_status(pipeline: RLAIFPipeline, children: Iterable[ChildObservation],
                            now: datetime) -> Status:
    """One phase for the pipeline plus each stage's; metrics of all stages; outputs by stage.

    Inputs: the pipeline, its stage resources in run order as observed, the current time.
    """
    children = list(children)
    previous = pipeline.status
    mine = [c for c in children if c.exists and c.owned and c.status]
    stages = [_stage(c, c in mine) for c in children]
    metrics: dict[str, float] = {}
    outputs: dict[str, str] = {}
    for c in mine:
        assert c.status is not None
        metrics.update(c.status.metrics)
        outputs.update({f"{STAGE_NAMES[c.kind]}.{k}": v for k, v in c.status.outputs.items()})
    starts = [c.status.start_time for c in mine if c.status and c.status.start_time]
    ends = [c.status.completion_time for c in mine if c.status and c.status.completion_time]

    failed = next((c for c in mine if c.status and c.status.phase == "Failed"), None)
    current = next((c for c in children if not (c.status and c.status.phase == "Succeeded")), None)
    verdict = _verdict(children, [s.phase for s in stages], failed, current, metrics)
    terminal = verdict.phase in TERMINAL
    return Status(
        phase=verdict.phase, message=verdict.message,  # type: ignore[arg-type]
        conditions=conditions(previous, now, pipeline.metadata.generation, verdict),
        observed_generation=pipeline.metadata.generation,
        start_time=min(starts) if starts else previous.start_time,
        completion_time=(previous.completion_time or (max(ends) if ends and not failed else rfc3339(now)))
        if terminal else None,
        outputs=outputs, metrics=metrics,
        current_stage=None if terminal or current is None else current.name,
        stages=stages,
        progress=_progress(current) if verdict.phase == "Running" else None,
    )


def _stage(child: ChildObservation, mine: bool) -> StageStatus:
    status = child.status if mine else None
    progress = status.progress if status is not None and status.phase == "Running" else None
    return StageStatus(name=child.name, kind=child.kind, phase=status.phase if status else None,
                       progress=progress.summary if progress else None, eta=progress.eta if progress else None)


def _progress(current: ChildObservation | None) -> Progress | None:
    """The running stage's progress, its summary prefixed with the stage's role (label, reward, policy)."""
    progress = current.status.progress if current is not None and current.status is not None else None
    if current is None or progress is None:
        return None
    return progress.model_copy(update={"summary": f"{STAGE_NAMES[current.kind]}: {progress.summary}"})


def _verdict(children: list[ChildObservation], phases: list[str | None], failed: ChildObservation | None,
             current: ChildObservation | None, metrics: dict[str, float]) -> Verdict:
    """The pipeline's verdict, in order of precedence: a refused or conflicting child, a failed stage,
    all succeeded, else the first unfinished stage's progress."""
    missing = [c.name for c in children if not c.exists]
    created = (True, Reason.STAGES_CREATED, f"{len(children)} stages created") if not missing else \
        (False, Reason.CREATING_STAGES, f"creating {', '.join(missing)}")
    verdict = Verdict("Pending", created)
    refusal = next((c for c in children if c.create_error is not None), None)
    conflict = next((c for c in children if c.exists and not c.owned), None)
    if refusal is not None and refusal.create_error is not None:
        code, message = refusal.create_error
        return refused(verdict, code, f"{refusal.kind}/{refusal.name}", message, "pipeline")
    if conflict is not None:
        return name_conflict(verdict, f"{conflict.kind}/{conflict.name}", "pipeline")
    if failed is not None and failed.status is not None:
        reason = next((c.reason for c in failed.status.conditions if c.type == ConditionType.FAILED), "")
        return fail(verdict, Reason.STAGE_FAILED, f"stage {failed.name} ({failed.kind}) failed: {reason}:"
                    f" {failed.status.message or ''}".rstrip(": "))
    if current is None and children:
        return verdict.succeed(Reason.ALL_STAGES_SUCCEEDED, f"all stages succeeded: {metrics_line(metrics)}")
    if "Running" in phases:
        verdict.phase = "Running"
    elif "Pending" in phases or "Waiting" in phases:
        verdict.phase = "Pending" if "Pending" in phases else "Waiting"
    if current is not None:
        # Not the stage's own message: it changes with every pod, the pipeline's status need not.
        phase = current.status.phase if current.status else None
        text = f"stage {current.name} ({current.kind}) is {phase or 'being created'}"
        running = verdict.phase == "Running"
        verdict.running = (running, Reason.STAGE_RUNNING if running else Reason.STAGE_PENDING, text)
    return verdict
