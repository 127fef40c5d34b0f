"""The pod template every stage's Job uses: image, command, GPUs, placement, volumes, secrets.

Pure: a typed resource plus settings in, a ``PodTemplateSpec`` dict out. What differs between stages
(the command, the image, extra env) is passed in by ``builders.jobs``.
"""

from __future__ import annotations

from typing import Any

from rlaif_jobs.apikeys import api_key_env
from rlaif_jobs.config.common import SecretKeyRef
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.config.tracking import WANDB_API_KEY_ENV, TrackingSpec
from rlaif_jobs.summaries import DEFAULT_TERMINATION_LOG
from rlaif_operator.api.kinds import PolicyRLRun, PreferenceLabelJob, StageResource
from rlaif_operator.builders import names
from rlaif_operator.builders.configmap import CONFIG_DIR
from rlaif_operator.settings import OperatorSettings

GPU = "nvidia.com/gpu"
HUB_TOKEN_ENV = "HF_TOKEN"
CONFIG_VOLUME = "config"
SHM_VOLUME = "dshm"
DATA_VOLUME = "data"
TMP_VOLUME = "tmp"
CACHE_VOLUME = "cache"
# The root filesystem is read-only: HOME and every cache (Hugging Face hub, vLLM, triton, torch
# extensions, all under XDG_CACHE_HOME or HOME) live on an emptyDir, scratch files on another.
CACHE_DIR = "/var/cache/rlaif"
TMP_DIR = "/tmp"
RUN_AS_USER = 10001  # the images' user (images/*/Dockerfile); numeric, so runAsNonRoot can be verified


def stage_image(resource: StageResource, settings: OperatorSettings) -> str:
    """The resource's own image, else the stage's default: vLLM for labeling, DeepSpeed for training."""
    if resource.spec.runtime.image:
        return resource.spec.runtime.image
    return settings.trainer_image if resource.TRAINS else settings.labeler_image


def labeler_specs(resource: StageResource) -> list[LabelerSpec]:
    """Every labeler LLM a stage talks to (labeling, d-RLAIF scoring, win-rate judge)."""
    if isinstance(resource, PreferenceLabelJob):
        return [resource.spec.labeler]
    if isinstance(resource, PolicyRLRun):
        found = []
        if resource.spec.reward and resource.spec.reward.direct:
            found.append(resource.spec.reward.direct.labeler)
        if resource.spec.evaluation.judge:
            found.append(resource.spec.evaluation.judge)
        return found
    return []


def labeler_key_secrets(resource: StageResource) -> list[SecretKeyRef]:
    """The API-key Secrets of every endpoint the stage talks to (labeler, d-RLAIF scorer, judge), each
    once: each becomes its own variable (``rlaif_jobs.apikeys.api_key_env``)."""
    refs = [s.endpoint.api_key_secret for s in labeler_specs(resource) if s.endpoint and s.endpoint.api_key_secret]
    return list({api_key_env(ref): ref for ref in refs}.values())


def tracking_spec(resource: StageResource) -> TrackingSpec | None:
    """The experiment tracking of a trainer stage (reward model, policy), else None."""
    tracking = getattr(resource.spec, "tracking", None)
    return tracking if isinstance(tracking, TrackingSpec) else None


def tracking_key_secret(resource: StageResource) -> SecretKeyRef | None:
    """The W&B API key's Secret (``tracking.wandb.apiKeySecret``), given to the pods as WANDB_API_KEY."""
    tracking = tracking_spec(resource)
    return tracking.wandb.api_key_secret if tracking and tracking.wandb else None


def tracking_env_secret(resource: StageResource) -> str | None:
    """The Secret whose keys become the pods' MLflow variables (``tracking.mlflow.credentialsSecret``)."""
    tracking = tracking_spec(resource)
    return tracking.mlflow.credentials_secret if tracking and tracking.mlflow else None


def referenced_secrets(resource: StageResource) -> list[tuple[str, str | None]]:
    """Secrets the pods need, as (name, key or None for a whole Secret), in a stable order.

    The operator checks they exist before creating the Job: a missing Secret would otherwise leave pods
    stuck in CreateContainerConfigError with no word on the resource.
    """
    runtime = resource.spec.runtime
    found: list[tuple[str, str | None]] = []
    if runtime.hub_token_secret:
        found.append((runtime.hub_token_secret.name, runtime.hub_token_secret.key))
    for spec in labeler_specs(resource):
        if spec.endpoint and spec.endpoint.api_key_secret:
            ref = spec.endpoint.api_key_secret
            found.append((ref.name, ref.key))
    if runtime.storage.credentials_secret:
        found.append((runtime.storage.credentials_secret, None))
    if (wandb_key := tracking_key_secret(resource)) is not None:
        found.append((wandb_key.name, wandb_key.key))
    if (mlflow_env := tracking_env_secret(resource)) is not None:
        found.append((mlflow_env, None))
    return list(dict.fromkeys(found))


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def container_env(resource: StageResource, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Env of the workload container: identity, completion index, secrets, then the user's env."""
    runtime = resource.spec.runtime
    env: list[dict[str, Any]] = [
        {"name": "RLAIF_STAGE", "value": str(resource.STAGE)},
        {"name": "RLAIF_RESOURCE", "value": f"{resource.kind}/{resource.metadata.name}"},
        # progress events as log lines: the operator reads them into status.progress (rlaif_jobs.progress)
        {"name": "RLAIF_PROGRESS_LOG", "value": "1"},
        # Set explicitly (the Job controller would add it too) so that $(JOB_COMPLETION_INDEX) expands.
        {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{names.COMPLETION_INDEX_ANNOTATION}']"}}},
        *extra,
    ]
    if runtime.hub_token_secret:
        env.append(_secret_env(HUB_TOKEN_ENV, runtime.hub_token_secret))
    env += [_secret_env(api_key_env(ref), ref) for ref in labeler_key_secrets(resource)]
    if (wandb_key := tracking_key_secret(resource)) is not None:
        env.append(_secret_env(WANDB_API_KEY_ENV, wandb_key))
    env += [{"name": e.name, "value": e.value} for e in runtime.env]
    return env


def container_resources(resource: StageResource) -> dict[str, Any]:
    """Requests = limits (Guaranteed QoS for the GPU pods); nvidia.com/gpu only when GPUs are asked."""
    res = resource.spec.resources
    amounts: dict[str, str] = {}
    if res.cpu:
        amounts["cpu"] = res.cpu
    if res.memory:
        amounts["memory"] = res.memory
    if res.gpus_per_node:
        amounts[GPU] = str(res.gpus_per_node)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def writable_dirs_env() -> list[dict[str, Any]]:
    """Points HOME, caches and TMPDIR at the emptyDirs (the image's own HOME is read-only)."""
    return [{"name": "HOME", "value": CACHE_DIR}, {"name": "XDG_CACHE_HOME", "value": f"{CACHE_DIR}/.cache"},
            {"name": "HF_HOME", "value": f"{CACHE_DIR}/.cache/huggingface"}, {"name": "TMPDIR", "value": TMP_DIR}]


def pod_security_context() -> dict[str, Any]:
    """The pod-level half of the Pod Security "restricted" profile: non-root, RuntimeDefault seccomp.
    ``fsGroup`` makes a PVC writable by the user; OnRootMismatch avoids a recursive chown of big volumes."""
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    """The container-level half: no privilege escalation, no capabilities, a read-only root filesystem."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def pod_template(
    resource: StageResource,
    settings: OperatorSettings,
    *,
    container_name: str,
    command: list[str],
    component: str,
    extra_env: list[dict[str, Any]] | None = None,
    subdomain: str | None = None,
) -> dict[str, Any]:
    """The Job's pod template.

    Inputs: the stage resource, settings, the container's name and command, the component label, extra
    env, and the headless Service name for trainers (``subdomain``: gives pod 0 a DNS name).
    Output: a ``PodTemplateSpec`` dict.
    """
    spec_res = resource.spec.resources
    runtime = resource.spec.runtime
    storage = runtime.storage

    volumes: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "configMap": {"name": names.config_map_name(resource)}},
        # vLLM and NCCL exchange tensors through /dev/shm; a container's default 64 MiB is too small.
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": spec_res.shm_size}},
        {"name": TMP_VOLUME, "emptyDir": {}},
        {"name": CACHE_VOLUME, "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
        {"name": TMP_VOLUME, "mountPath": TMP_DIR},
        {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
    ]
    if storage.pvc_name:
        volumes.append({"name": DATA_VOLUME, "persistentVolumeClaim": {"claimName": storage.pvc_name}})
        mounts.append({"name": DATA_VOLUME, "mountPath": storage.mount_path})

    container: dict[str, Any] = {
        "name": container_name,
        "image": stage_image(resource, settings),
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": container_env(resource, [*writable_dirs_env(), *(extra_env or [])]),
        "volumeMounts": mounts,
        # The workload writes {"outputs", "metrics"} here; the operator reads it from the pod status.
        "terminationMessagePath": DEFAULT_TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
    }
    env_from = [name for name in (storage.credentials_secret, tracking_env_secret(resource)) if name]
    if env_from:  # every key of these Secrets becomes a variable (object-store and MLflow credentials)
        container["envFrom"] = [{"secretRef": {"name": name}} for name in dict.fromkeys(env_from)]
    resources = container_resources(resource)
    if resources:
        container["resources"] = resources

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",  # retries are the Job's (backoffLimit, podFailurePolicy), not kubelet's
        "containers": [container],
        "volumes": volumes,
        "securityContext": pod_security_context(),
        # The workloads never call the Kubernetes API: no token unless the run names an identity.
        "automountServiceAccountToken": bool(runtime.service_account_name),
    }
    service_account = runtime.service_account_name or settings.default_service_account
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if spec_res.node_selector:
        pod_spec["nodeSelector"] = dict(spec_res.node_selector)
    if spec_res.tolerations:
        pod_spec["tolerations"] = [t.to_wire() for t in spec_res.tolerations]
    if spec_res.affinity:
        pod_spec["affinity"] = spec_res.affinity
    if spec_res.priority_class_name:
        pod_spec["priorityClassName"] = spec_res.priority_class_name
    if subdomain:
        pod_spec["subdomain"] = subdomain

    return {"metadata": {"labels": names.labels(resource, component)}, "spec": pod_spec}
