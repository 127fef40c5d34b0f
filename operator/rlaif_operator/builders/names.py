"""Deterministic names, labels and owner references of the objects the operator creates.

Names are a pure function of the owning resource, so a restarted operator finds the children it made
before instead of making new ones. Labels follow ``app.kubernetes.io/*`` and let a user (or the
operator) select every object of one run: ``-l app.kubernetes.io/instance=NAME``.
"""

from __future__ import annotations

from typing import Any

from rlaif_operator.api.common import API_VERSION
from rlaif_operator.api.kinds import Resource

MANAGED_BY = "rlaif-operator"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_OWNER_KIND = "rlaif.dev/owner-kind"  # lets the operator map a Job back to its resource cheaply
LABEL_PIPELINE = "rlaif.dev/pipeline"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# On every Job the operator makes: the Job (and so its pods' termination messages) stays until the stage's
# status records its result; TTL, a hand delete or garbage collection then completes once it is released.
RESULT_FINALIZER = "rlaif.dev/result"

# Each stage kind's short name: the Job's suffix and the component label.
MERGE = "label-merge"


def job_name(resource: Resource) -> str:
    """The stage's main Job: ``<name>-label`` / ``-reward`` / ``-policy`` (the kind suffix keeps two
    resources of different kinds with one name from colliding)."""
    return f"{resource.metadata.name}-{resource.STAGE}"


def merge_job_name(resource: Resource) -> str:
    """The labeling stage's merge Job (only when it has several shards)."""
    return f"{resource.metadata.name}-{MERGE}"


def config_map_name(resource: Resource) -> str:
    return f"{job_name(resource)}-config"


def service_name(resource: Resource) -> str:
    """The trainers' headless Service; a Service name must start with a letter (DNS-1035)."""
    name = job_name(resource)
    return name if name[0].isalpha() else f"r{name}"


def labels(resource: Resource, component: str | None = None) -> dict[str, str]:
    """The labels of every object made for ``resource``; ``component`` defaults to the stage."""
    out = {
        LABEL_NAME: "rlaif",
        LABEL_INSTANCE: resource.metadata.name,
        LABEL_COMPONENT: component or resource.STAGE or "pipeline",
        LABEL_PART_OF: "rlaif",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_OWNER_KIND: resource.kind,
    }
    pipeline = resource.metadata.labels.get(LABEL_PIPELINE)
    if pipeline:
        out[LABEL_PIPELINE] = pipeline
    return out


def owner_reference(resource: Resource) -> dict[str, Any]:
    """A controller owner reference to ``resource``: its children are garbage-collected with it."""
    if not resource.metadata.uid:
        raise ValueError(f"{resource.kind}/{resource.metadata.name} has no uid: read it from the API first")
    return {
        "apiVersion": API_VERSION,
        "kind": resource.kind,
        "name": resource.metadata.name,
        "uid": resource.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(resource: Resource, name: str, component: str | None = None) -> dict[str, Any]:
    """Metadata of a child object: name, namespace, labels, owner reference."""
    meta: dict[str, Any] = {"name": name, "labels": labels(resource, component),
                            "ownerReferences": [owner_reference(resource)]}
    if resource.metadata.namespace:
        meta["namespace"] = resource.metadata.namespace
    return meta
