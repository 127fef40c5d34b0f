"""The stages' Jobs: Indexed Jobs for labeling shards and for multi-node training, plus the label merge.

- Labeling: one completion per shard; ``JOB_COMPLETION_INDEX`` picks the shard. With several shards a
  second Job (``--merge``) joins their labels once every shard succeeded.
- Training: one pod per node under ``torchrun``; node rank = completion index, master = pod 0 reached
  through the headless Service (``<job>-0.<service>``), so rendezvous works across nodes.
- Multi-node training is a gang (``is_gang``): backoffLimit 0, the operator restarts the whole group.
- Every Job: ``backoffLimit``; a ``podFailurePolicy`` that fails at once on a config error (exit code 3,
  retrying cannot fix it) and does not count disruptions (preemption, eviction) against the limit: a
  single pod is replaced, a gang's Job fails (``FailJob``) so that the operator restarts the whole group
  (``status.preemptions``, not counted against ``runtime.backoffLimit``);
  ``activeDeadlineSeconds``; with a Kueue queue, the queue label and ``suspend: true`` so Kueue admits
  the whole gang at once.
"""

from __future__ import annotations

from typing import Any

from rlaif_jobs.summaries import EXIT_CONFIG_ERROR
from rlaif_operator.api.kinds import PreferenceLabelJob, StageResource
from rlaif_operator.builders import names
from rlaif_operator.builders.configmap import CONFIG_PATH
from rlaif_operator.builders.pod import pod_template
from rlaif_operator.settings import OperatorSettings

EXIT_SIGKILL = 137  # what the kernel's OOM killer leaves (as does a preemption, which the disruption rule takes first)


def pod_failure_policy(gang: bool = False) -> dict[str, Any]:
    """Fail fast on a config error; a disruption (preemption, eviction: not the workload's fault) is not
    counted: a single pod is replaced (Ignore), a gang's Job fails (FailJob), as a lone replacement
    worker could not rejoin the group, and the operator restarts the whole group without counting it
    (``JobObservation.preempted``); fail fast on a kill for memory: the same pod with the same limit would be
    killed again (the operator names the limit and the fix). Rules apply in order, so a preempted pod
    (SIGKILLed too) meets the disruption rule first."""
    return {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [EXIT_CONFIG_ERROR]}},
        {"action": "FailJob" if gang else "Ignore",
         "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [EXIT_SIGKILL]}},
    ]}


def is_gang(resource: StageResource) -> bool:
    """Multi-node training: torchrun's workers only make progress together, so one failed worker fails
    the group, and the operator restarts the whole group (``runtime.backoffLimit`` times) from the last
    checkpoint, as JobSet and Kubeflow's training operator do. The Job itself then never retries a pod:
    a lone replacement worker could not rejoin the running group's static rendezvous. A preempted or
    evicted worker fails the group too (``pod_failure_policy``); that restart is not counted against
    ``runtime.backoffLimit``."""
    return resource.TRAINS and resource.spec.resources.nodes > 1


def _job(resource: StageResource, name: str, component: str, completions: int, template: dict[str, Any],
         gang: bool = False) -> dict[str, Any]:
    runtime = resource.spec.runtime
    queue = resource.spec.resources.queue_name
    meta = names.object_meta(resource, name, component)
    meta["finalizers"] = [names.RESULT_FINALIZER]
    spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": completions,
        "backoffLimit": 0 if gang else runtime.backoff_limit,
        "podFailurePolicy": pod_failure_policy(gang),
        "template": template,
    }
    if runtime.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = runtime.active_deadline_seconds
    if runtime.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = runtime.ttl_seconds_after_finished
    if queue:
        # Kueue admits a suspended Job as a whole (all completions at once) and then unsuspends it.
        meta["labels"][names.KUEUE_QUEUE_LABEL] = queue
        spec["suspend"] = True
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def entrypoint(resource: StageResource) -> list[str]:
    return ["python", "-m", str(resource.MODULE), "--config", CONFIG_PATH]


def build_label_job(resource: PreferenceLabelJob, settings: OperatorSettings) -> dict[str, Any]:
    """The labeling Job: ``numShards`` completions, one shard each."""
    component = str(resource.STAGE)
    template = pod_template(resource, settings, container_name="labeler", command=entrypoint(resource),
                            component=component)
    return _job(resource, names.job_name(resource), component, resource.spec.num_shards, template)


def build_merge_job(resource: PreferenceLabelJob, settings: OperatorSettings) -> dict[str, Any]:
    """The merge Job: one pod that joins the shards' labels and reports the stage's summary."""
    template = pod_template(resource, settings, container_name="merge",
                            command=[*entrypoint(resource), "--merge"], component=names.MERGE)
    return _job(resource, names.merge_job_name(resource), names.MERGE, 1, template)


LAUNCHER = "rlaif_jobs.launch"


def torchrun_command(resource: StageResource, settings: OperatorSettings) -> list[str]:
    """torchrun across ``nodes`` pods: rank from the completion index, master = pod 0 (its DNS name behind
    the headless Service; on one node, the loopback). Through
    ``rlaif_jobs.launch`` (torchrun's arguments), which exits 3 when a worker did: torchrun itself exits
    1, so the podFailurePolicy would never see a trainer's config error. After the workers exit, the
    launcher runs the stage's follow-up in the same pod on node 0 (the policy's evaluation: the judge
    loads in a fresh process, never beside the training engines)."""
    res = resource.spec.resources
    # One node: torchrun's workers meet on the pod's own loopback (no Service, no DNS to wait for).
    master = f"{names.job_name(resource)}-0.{names.service_name(resource)}" if res.nodes > 1 else "127.0.0.1"
    return [
        "python", "-m", LAUNCHER,
        f"--nnodes={res.nodes}",
        f"--nproc-per-node={max(res.gpus_per_node, 1)}",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={master}",
        f"--master-port={settings.master_port}",
        "-m", str(resource.MODULE),
        "--config", CONFIG_PATH,
    ]


def build_trainer_job(resource: StageResource, settings: OperatorSettings) -> dict[str, Any]:
    """The reward-model or policy Job: one pod per node, each running torchrun."""
    component = str(resource.STAGE)
    nodes = resource.spec.resources.nodes
    template = pod_template(resource, settings, container_name="trainer",
                            command=torchrun_command(resource, settings), component=component,
                            subdomain=names.service_name(resource) if nodes > 1 else None)
    return _job(resource, names.job_name(resource), component, nodes, template, gang=is_gang(resource))
