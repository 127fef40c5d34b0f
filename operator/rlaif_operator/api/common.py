"""Cluster-side types every resource shares: resources to request, pod runtime, and status.

The workload configs (what a stage computes) live in ``rlaif_jobs.config``; this module adds only
what a Kubernetes resource needs on top: where pods run, and what the operator reports back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic.json_schema import JsonDict

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import SecretKeyRef

GROUP = "rlaif.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

PRESERVE: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Toleration(CamelModel):
    """A pod toleration, as in the core API."""

    key: str | None = Field(None, description="Taint key; empty with Exists matches every taint.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: str | None = Field(None, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(None, description="Effect.")
    toleration_seconds: int | None = Field(None, ge=0, description="For NoExecute: how long to stay.")


class Resources(CamelModel):
    """What each pod of a stage asks the scheduler for."""

    gpus_per_node: int = Field(0, ge=0, le=16, description="nvidia.com/gpu per pod; 0 runs on CPU.")
    nodes: int = Field(1, ge=1, le=1024, description="Pods of a training stage (one torchrun node each).")
    cpu: str | None = Field(None, pattern=QUANTITY, description="CPU request and limit, e.g. '8'.")
    memory: str | None = Field(None, pattern=QUANTITY, description="Memory request and limit, e.g. 64Gi.")
    shm_size: str = Field("8Gi", pattern=QUANTITY, description="Size of the memory-backed /dev/shm.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod node selector.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Pod tolerations.")
    affinity: dict[str, Any] = Field(
        default_factory=dict, description="Pod affinity, as in the core API.", json_schema_extra=PRESERVE
    )
    priority_class_name: str | None = Field(None, description="PriorityClass of the pods.")
    queue_name: str | None = Field(
        None, pattern=DNS_LABEL, description="Kueue LocalQueue; the Job is created suspended for Kueue."
    )


class EnvVar(CamelModel):
    """A plain environment variable for the workload's container."""

    name: str = Field(min_length=1, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Variable name.")
    value: str = Field("", description="Its value.")


class Storage(CamelModel):
    """Where artifacts live for the pods: a shared volume and/or object-store credentials."""

    pvc_name: str | None = Field(
        None, description="PersistentVolumeClaim mounted into every pod. On a cluster every path (not s3://, gs://,"
        " ...) in the spec must lie under mountPath on this claim: a pod's own disk does not outlive it.")
    mount_path: str = Field("/data", pattern=r"^/", description="Where the claim is mounted.")
    credentials_secret: str | None = Field(
        None, description="Secret whose keys become env vars (e.g. AWS_ACCESS_KEY_ID) for s3:// or gs://."
    )


class Runtime(CamelModel):
    """How the stage's pods run: image, identity, secrets, and the Job's retry policy."""

    image: str | None = Field(None, description="Override the stage's default image.")
    service_account_name: str | None = Field(None, description="Pods' service account.")
    hub_token_secret: SecretKeyRef | None = Field(None, description="Secret with a Hugging Face token (HF_TOKEN).")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables.")
    storage: Storage = Field(default_factory=Storage, description="Artifact volume and credentials.")
    backoff_limit: int = Field(3, ge=0, le=100, description="Pod failures (not preemptions) before Failed.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Wall-clock cap on the Job.")
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the finished Job after this many seconds. The operator holds the Job"
        " (a finalizer) until the stage's status records its result, so even 0 loses nothing.")


Phase = Literal["Pending", "Waiting", "Running", "Succeeded", "Failed"]


class Condition(CamelModel):
    """A Kubernetes condition: one observed aspect of the resource, with why and since when."""

    type: str = Field(description="InputsReady, Running, Succeeded or Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason, e.g. WaitingForUpstream.")
    message: str = Field("", description="What a user should know or do.")
    last_transition_time: str | None = Field(None, description="When status last changed (RFC 3339).",
                                             json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(None, ge=0, description="Spec generation this was computed from.")


class Progress(CamelModel):
    """A running stage's latest progress, as its rank-0 pod last reported it (the structured progress
    lines the workloads print; the operator reads the pod's log tail at most every
    ``progress_interval_seconds``). Absent before the workload reports and once the stage finished."""

    phase: str = Field(description="What the workload is doing: labeling, training, rollout, evaluating, ...")
    done: int = Field(ge=0, description="Units done in this phase.")
    total: int | None = Field(None, ge=0, description="Units in this phase, when known.")
    unit: str = Field("", description="What is counted: pairs, steps, prompts, ...")
    percent: int | None = Field(None, ge=0, le=100, description="done / total, in percent.")
    rate: float | None = Field(None, ge=0, description="Units per second over the phase so far.")
    eta: str | None = Field(None, description="Estimated time left in this phase, e.g. 12m30s.")
    summary: str = Field(description="One line for kubectl get, e.g. 'training 120/400 steps (30%)'.")
    metrics: dict[str, float] = Field(default_factory=dict, description="The latest step's metrics"
                                      " (loss, reward, kl, ...), as the workload reported them.")
    reported_time: str | None = Field(None, description="When the workload wrote the line.",
                                      json_schema_extra={"format": "date-time"})
    observed_time: str = Field(description="When the operator read it.", json_schema_extra={"format": "date-time"})


class StageStatus(CamelModel):
    """One stage of a pipeline, as the pipeline reports it."""

    name: str = Field(description="The child resource's name.")
    kind: str = Field(description="The child resource's kind.")
    phase: Phase | None = Field(None, description="The child's phase.")
    progress: str | None = Field(None, description="The child's progress summary while it runs.")
    eta: str | None = Field(None, description="The child's estimated time left in its phase while it runs.")


class Status(CamelModel):
    """What the operator observed. Written by the operator only (the status subresource)."""

    phase: Phase | None = Field(None, description="Summary for kubectl get; conditions are authoritative.")
    message: str | None = Field(None, description="The latest human-readable summary.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Conditions, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(None, ge=0, description="Spec generation last reconciled.")
    start_time: str | None = Field(None, description="When the workload started.",
                                   json_schema_extra={"format": "date-time"})
    completion_time: str | None = Field(None, description="When it finished.",
                                        json_schema_extra={"format": "date-time"})
    outputs: dict[str, str] = Field(default_factory=dict, description="Artifact URIs by name, for downstream.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Summary metrics from the workload.")
    current_stage: str | None = Field(None, description="Pipeline only: the stage now running.")
    stages: list[StageStatus] = Field(default_factory=list, description="Pipeline only: each stage's phase.")
    job_uid: str | None = Field(
        None, description="Stage only: uid of the Job this stage runs. A started stage whose Job is gone is"
        " recognised by it (and is not re-run: see the rlaif.dev/restart annotation).")
    restarts: int | None = Field(None, ge=0, description="Stage only: times a multi-node training group was"
                                 " started again after a worker failed (at most runtime.backoffLimit).")
    restart_handled: str | None = Field(
        None, description="The value of the rlaif.dev/restart annotation the operator last acted on.")
    progress: Progress | None = Field(None, description="While running: the latest progress (a pipeline: its"
                                      " running stage's, with the stage named in the summary).")
    preemptions: int | None = Field(None, ge=0, description="Stage only: times a multi-node training group"
                                    " was started again because a worker was preempted or evicted (not"
                                    " counted against runtime.backoffLimit).")
    log_tail: list[str] | None = Field(None, description="Stage only: the last lines its rank-0 (or"
                                " failed) pod logged, kept when it finished so they outlive the Job's TTL.")


class ObjectMeta(CamelModel):
    """The parts of metadata the platform reads; everything else passes through untouched."""

    model_config = {**CamelModel.model_config, "extra": "allow"}

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Resource name.")
    namespace: str | None = Field(None, description="Namespace; local mode ignores it.")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
