"""Everything one resource owns, built at once: the stage's ConfigMap, Service and Jobs, or a pipeline's
stage resources. Pure; the reconcile creates whichever of these are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlaif_operator.api.kinds import PreferenceLabelJob, RLAIFPipeline, StageResource
from rlaif_operator.builders import names
from rlaif_operator.builders.configmap import build_config_map
from rlaif_operator.builders.jobs import build_label_job, build_merge_job, build_trainer_job
from rlaif_operator.builders.networkpolicy import build_network_policy
from rlaif_operator.builders.pipeline import expand_pipeline
from rlaif_operator.builders.service import build_service
from rlaif_operator.builders.workload import workload_config
from rlaif_operator.guardrails import guardrail_problems
from rlaif_operator.settings import OperatorSettings


@dataclass(frozen=True)
class StageChildren:
    """A stage's objects. ``merge_job`` exists only for labeling with several shards, and is created
    only after every shard succeeded."""

    config_map: dict[str, Any]
    job: dict[str, Any]
    service: dict[str, Any] | None = None
    network_policy: dict[str, Any] | None = None
    merge_job: dict[str, Any] | None = None

    def before_job(self) -> list[dict[str, Any]]:
        """What must exist before the Job's pods start (they mount the config, dial the Service behind
        the NetworkPolicy that admits only them)."""
        return [self.config_map] + [m for m in (self.service, self.network_policy) if m is not None]


def needs_merge(resource: StageResource) -> bool:
    return isinstance(resource, PreferenceLabelJob) and resource.spec.num_shards > 1


def build_stage_children(resource: StageResource, upstream_uri: str | None,
                         settings: OperatorSettings) -> StageChildren:
    """Input: a stage resource with its uid, the URI its upstream reported (if it has one), settings.
    Output: its ConfigMap, Job, and the trainers' NetworkPolicy (and Service, across several nodes) or the
    labeling merge Job."""
    config = workload_config(resource, upstream_uri)
    config_map = build_config_map(resource, config)
    if isinstance(resource, PreferenceLabelJob):
        merge = build_merge_job(resource, settings) if needs_merge(resource) else None
        return StageChildren(config_map, build_label_job(resource, settings), merge_job=merge)
    # The Service names pod 0 for the other nodes' workers: one node needs none. The NetworkPolicy stays:
    # the rendezvous store listens on every interface of the pod, one node or several.
    several = resource.spec.resources.nodes > 1
    return StageChildren(config_map, build_trainer_job(resource, settings),
                         service=build_service(resource, settings) if several else None,
                         network_policy=build_network_policy(resource, settings))


FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".txt", ".gz")
LOCATION_KEYS = ("uri", "modelUri", "preferencesUri", "rewardModelUri")  # where specs name a location


def _locations(value: Any, path: str) -> list[tuple[str, str]]:
    """(field path, value) of every location field in a spec (as the API writes it: camelCase)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key in LOCATION_KEYS and isinstance(item, str):
                found.append((where, item))
            else:
                found += _locations(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _locations(item, f"{path}[{i}]")
    return found


def _plain_path(field: str, uri: str) -> str | None:
    """The filesystem path a location names, or None when it is not one (a scheme, or a hub id)."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    if "://" in uri:
        return None
    if uri.startswith("/") or field.endswith("output.uri"):
        return uri
    parts = uri.split("/")
    if len(parts) == 2 and not parts[1].endswith(FILE_SUFFIXES):
        return None  # ORG/NAME: a Hugging Face Hub id
    return uri


def storage_problems(resource: StageResource) -> list[str]:
    """Paths that would live on the pod's own disk: gone with the pod, never seen by the next stage.

    On a cluster a plain path must be under ``runtime.storage.mountPath`` with ``runtime.storage.pvcName``
    set (a volume that outlives the pod), or be an object-store URI instead. Local mode has no such
    rule: there a path is on the one machine."""
    storage = resource.spec.runtime.storage
    spec = resource.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    mount = storage.mount_path.rstrip("/") or "/"
    problems = []
    for field, uri in _locations(spec, "spec"):
        path = _plain_path(field, uri)
        if path is None:
            continue
        if not storage.pvc_name:
            problems.append(f"{field} is the path {uri}, but no volume is mounted: it would be on the pod's own disk"
                            f" and lost with it. Set spec.runtime.storage.pvcName (mounted at {mount}) and put the"
                            " path under it, or use an object-store URI (s3://, gs://, az://)")
        elif not (path == mount or path.startswith(mount + "/") or mount == "/"):
            problems.append(f"{field} is the path {uri}, outside spec.runtime.storage.mountPath ({mount}) where the"
                            f" claim {storage.pvc_name} is mounted: put it under {mount}/, or use an object-store"
                            " URI (s3://, gs://, az://)")
    return problems


def spec_problems(resource: StageResource, settings: OperatorSettings) -> list[str]:
    """What the schema cannot catch but makes the stage impossible to run on a cluster; each line says
    the fix."""
    problems = storage_problems(resource) + guardrail_problems(resource, settings)
    gpus = resource.spec.resources.gpus_per_node
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
        meta["labels"][names.LABEL_COMPONENT] = str(child.STAGE)
        meta["labels"][names.LABEL_INSTANCE] = pipeline.metadata.name
        meta["ownerReferences"] = [names.owner_reference(pipeline)]
        for empty in ("annotations",):
            if not meta.get(empty):
                meta.pop(empty, None)
        out.append(manifest)
    return out
