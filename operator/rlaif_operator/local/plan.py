"""Orders a manifest's stages so that every stage runs after the one it consumes (pure, no I/O).

Input: the resources of a manifest file (pipelines are expanded into their stages) and the names of
stages that already succeeded in earlier runs. Output: the stages in run order. A reference to a
stage that is neither in the file nor done, or to a resource of the wrong kind, is a PlanError.
"""

from __future__ import annotations

from rlaif_operator.api.kinds import Resource, RLAIFPipeline, StageResource
from rlaif_operator.builders.pipeline import expand_pipeline
from rlaif_operator.builders.workload import upstream_ref


class PlanError(ValueError):
    """The manifests do not form a runnable chain; the message names the resource and the fix."""


def expand(resources: list[Resource]) -> list[StageResource]:
    """Replaces every pipeline by its stages; rejects two resources with the same name."""
    stages: list[StageResource] = []
    for resource in resources:
        if isinstance(resource, RLAIFPipeline):
            stages += expand_pipeline(resource)
        else:
            assert isinstance(resource, StageResource), resource.kind  # every other kind is a stage
            stages.append(resource)
    seen: dict[str, str] = {}
    for stage in stages:
        name = stage.metadata.name
        if name in seen:
            raise PlanError(f"two resources are named {name!r} ({seen[name]} and {stage.kind}): names must be"
                            " unique within a run")
        seen[name] = stage.kind
    return stages


def order(stages: list[StageResource], done: dict[str, str]) -> list[StageResource]:
    """Run order of ``stages``; ``done`` maps already-succeeded stage names to their kinds."""
    by_name = {s.metadata.name: s for s in stages}
    for stage in stages:
        ref = upstream_ref(stage)
        if ref is None:
            continue
        upstream_kind = by_name[ref.name].kind if ref.name in by_name else done.get(ref.name)
        field = "preferences.fromLabelJob" if ref.kind == "PreferenceLabelJob" else "reward.fromRewardModelRun"
        if upstream_kind is None:
            raise PlanError(f"{stage.kind}/{stage.metadata.name}: spec.{field} names {ref.name!r}, which is"
                            " neither in this file nor a finished earlier run; add it to the file or give a"
                            " uri instead")
        if upstream_kind != ref.kind:
            raise PlanError(f"{stage.kind}/{stage.metadata.name}: spec.{field} names {ref.name!r}, which is a"
                            f" {upstream_kind}, not a {ref.kind}")
    ordered: list[StageResource] = []
    placed: set[str] = set(done)
    pending = list(stages)
    while pending:
        ready = [s for s in pending if (ref := upstream_ref(s)) is None or ref.name in placed]
        if not ready:
            names = ", ".join(s.metadata.name for s in pending)
            raise PlanError(f"the references among {names} form a cycle")
        for stage in ready:
            ordered.append(stage)
            placed.add(stage.metadata.name)
            pending.remove(stage)
    return ordered
