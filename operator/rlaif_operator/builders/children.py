"""Everything one resource owns, built at once: the stage's ConfigMap, Service and Jobs, or a pipeline's
stage resources. Pure; the reconcile creates whichever of these are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlaif_operator.api.kinds import PreferenceLabelJob, Resource, RLAIFPipeline
from rlaif_operator.builders import names
from rlaif_operator.builders.configmap import build_config_map
from rlaif_operator.builders.jobs import build_label_job, build_merge_job, build_trainer_job
from rlaif_operator.builders.pipeline import expand_pipeline
from rlaif_operator.builders.service import build_service
from rlaif_operator.builders.workload import workload_config
from rlaif_operator.settings import OperatorSettings


@dataclass(frozen=True)
class StageChildren:
    """A stage's objects. ``merge_job`` exists only for labeling with several shards, and is created
    only after every shard succeeded."""

    config_map: dict[str, Any]
    job: dict[str, Any]
    service: dict[str, Any] | None = None
    merge_job: dict[str, Any] | None = None

    def before_job(self) -> list[dict[str, Any]]:
        """What must exist before the Job's pods start (they mount the config, dial the Service)."""
        return [self.config_map] + ([self.service] if self.service else [])


def needs_merge(resource: Resource) -> bool:
    return isinstance(resource, PreferenceLabelJob) and resource.spec.num_shards > 1


def build_stage_children(resource: Resource, upstream_uri: str | None,
                         settings: OperatorSettings) -> StageChildren:
    """Input: a stage resource with its uid, the URI its upstream reported (if it has one), settings.
    Output: its ConfigMap, Job, and the trainers' Service or the labeling merge Job."""
    config = workload_config(resource, upstream_uri)
    config_map = build_config_map(resource, config)
    if isinstance(resource, PreferenceLabelJob):
        merge = build_merge_job(resource, settings) if needs_merge(resource) else None
        return StageChildren(config_map, build_label_job(resource, settings), merge_job=merge)
    return StageChildren(config_map, build_trainer_job(resource, settings),
                         service=build_service(resource, settings))


def spec_problems(resource: Resource, settings: OperatorSettings) -> list[str]:
    """What the schema cannot catch but makes the stage impossible to run; each line says the fix."""
    problems = []
    gpus = resource.spec.resources.gpus_per_node  # type: ignore[attr-defined]
    limit = settings.max_gpus_per_node
    if limit is not None and gpus > limit:
        problems.append(
            f"spec.resources.gpusPerNode is {gpus} but the largest node offers {limit} nvidia.com/gpu:"
            f" lower gpusPerNode to at most {limit} and raise resources.nodes instead")
    return problems


def build_pipeline_children(pipeline: RLAIFPipeline) -> list[dict[str, Any]]:
    """The pipeline's stage resources as manifests, each owned by the pipeline, in run order."""
    out = []
    for child in expand_pipeline(pipeline):
        manifest = child.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
        meta = manifest["metadata"]
        meta["labels"] = {**meta.get("labels", {}), **names.labels(pipeline, "pipeline"),
                          names.LABEL_PIPELINE: pipeline.metadata.name}
        meta["labels"][names.LABEL_COMPONENT] = names.STAGE[child.kind]
        meta["labels"][names.LABEL_INSTANCE] = pipeline.metadata.name
        meta["ownerReferences"] = [names.owner_reference(pipeline)]
        for empty in ("annotations",):
            if not meta.get(empty):
                meta.pop(empty, None)
        out.append(manifest)
    return out
