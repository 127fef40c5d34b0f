"""Playing the kubelet: pod statuses a test writes to make a workload run, succeed or fail.

A real kubelet reports a finished container's exit code and its termination message (the file at
``terminationMessagePath``) in ``status.containerStatuses[].state.terminated``; these helpers build that
status so a test can write it through the API (``kubectl patch pod NAME --subresource=status``).
"""

from __future__ import annotations

import json
from typing import Any

from testapi.store import now_rfc3339


def running(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of a pod whose containers all run and are ready."""
    now = now_rfc3339()
    conditions = [c for c in (pod.get("status") or {}).get("conditions", [])
                  if c.get("type") not in ("Ready", "ContainersReady", "Initialized")]
    conditions += [{"type": t, "status": "True", "lastTransitionTime": now}
                   for t in ("Initialized", "ContainersReady", "Ready")]
    return {
        "phase": "Running", "startTime": now, "podIP": "10.1.0.1", "conditions": conditions,
        "containerStatuses": [
            {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
             "started": True, "state": {"running": {"startedAt": now}}}
            for c in pod["spec"]["containers"]],
    }


def waiting(pod: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The status of a scheduled pod whose containers cannot start: ``reason`` ImagePullBackOff,
    ErrImagePull, CreateContainerConfigError (a missing Secret or key), ... as the kubelet reports it."""
    now = now_rfc3339()
    conditions = [c for c in (pod.get("status") or {}).get("conditions", [])
                  if c.get("type") not in ("Ready", "ContainersReady")]
    conditions += [{"type": t, "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now,
                    "message": f"containers with unready status: [{pod['spec']['containers'][0]['name']}]"}
                   for t in ("ContainersReady", "Ready")]
    return {
        "phase": "Pending", "startTime": now, "conditions": conditions,
        "containerStatuses": [
            {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
             "started": False, "state": {"waiting": {"reason": reason, "message": message}}}
            for c in pod["spec"]["containers"]],
    }


def creating(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of a scheduled pod whose containers are still being created (volumes mounting)."""
    return waiting(pod, "ContainerCreating", "")


def mount_failed_event(pod: dict[str, Any], message: str) -> dict[str, Any]:
    """The Event the kubelet posts when it cannot mount one of a pod's volumes."""
    now = now_rfc3339()
    meta = pod["metadata"]
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.failedmount", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "namespace": meta["namespace"],
                           "uid": meta["uid"]},
        "reason": "FailedMount", "message": message, "type": "Warning", "count": 1,
        "source": {"component": "kubelet", "host": "testnode-1"}, "firstTimestamp": now, "lastTimestamp": now,
    }


def finished(pod: dict[str, Any], exit_code: int = 0, message: str | dict[str, Any] = "",
             disruption: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """The status of a pod whose first container exited with ``exit_code`` and wrote ``message``
    (a dict is written as the JSON the workloads write). ``disruption``: a DisruptionTarget reason,
    such as PreemptionByScheduler, as when the scheduler preempts the pod. ``reason``: the terminated
    state's reason (default Completed or Error; OOMKilled with exit code 137 when the kernel killed it)."""
    now = now_rfc3339()
    text = json.dumps(message, separators=(",", ":"), sort_keys=True) if isinstance(message, dict) else message
    statuses = []
    for i, c in enumerate(pod["spec"]["containers"]):
        code = exit_code if i == 0 else 0
        statuses.append({
            "name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
            "started": False,
            "state": {"terminated": {"exitCode": code,
                                     "reason": (reason if i == 0 and reason else
                                                "Completed" if code == 0 else "Error"),
                                     "message": text if i == 0 else "", "startedAt": now, "finishedAt": now,
                                     "containerID": f"testapi://{pod['metadata']['name']}/{c['name']}"}}})
    conditions = [c for c in (pod.get("status") or {}).get("conditions", [])
                  if c.get("type") not in ("Ready", "ContainersReady", "DisruptionTarget")]
    conditions += [{"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
                   for t in ("ContainersReady", "Ready")]
    if disruption:
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": disruption,
                           "message": "Kubernetes scheduler preempted this pod", "lastTransitionTime": now})
    return {"phase": "Succeeded" if exit_code == 0 and not disruption else "Failed", "conditions": conditions,
            "containerStatuses": statuses, "startTime": (pod.get("status") or {}).get("startTime", now)}
