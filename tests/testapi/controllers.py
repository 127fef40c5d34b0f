"""The controllers a real control plane runs that the operator relies on, in miniature:

- garbage collector: ownerReference cascades (Background, Foreground, Orphan), dangling owners;
- namespace controller: a deleted namespace empties itself, then goes;
- Job controller: creates a Job's pods (Indexed: one per completion index, with the index annotation,
  ``JOB_COMPLETION_INDEX`` and hostname), counts successes and failures against ``backoffLimit``,
  applies ``podFailurePolicy`` (FailJob / Ignore / Count), honours ``suspend``,
  ``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished``, and writes the Job's status and conditions;
- admission of the Job controller's pods: a pod whose service account does not exist is refused, and the
  Job controller posts a FailedCreate Event on the Job and tries again later, as the real ones do;
- scheduler: binds pods to a node, or marks them Unschedulable when they ask for more
  ``nvidia.com/gpu`` than a node has.

There is no kubelet: a test plays it by writing a pod's status (``kubectl patch pod --subresource=status``
or ``kubelet.finish``), which is how a test makes a workload succeed or fail with a termination message.
All work is scheduled on the event loop after the triggering write, as real controllers react after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import string
from typing import Any

from testapi.schemas import ResourceType
from testapi.store import ApiError, Store, now_rfc3339

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
NODE_NAME = "testnode-1"
GPU = "nvidia.com/gpu"


def _controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")), None)


def _condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c.get("type") == ctype), None)


def _is_true(obj: dict[str, Any], ctype: str) -> bool:
    cond = _condition(obj, ctype)
    return bool(cond and cond.get("status") == "True")


class Controllers:
    """All the in-process controllers, wired to a store's hooks."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop, node_gpus: int | None = 8):
        self.store = store
        self.loop = loop
        self.node_gpus = node_gpus
        self._pending_jobs: set[str] = set()
        self._pods_by_job: dict[str, set[tuple[str, str]]] = {}  # Job uid -> its pods' (namespace, name)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # A real garbage collector acts on its own schedule, seconds after an owner goes on a busy cluster:
        # a test sets this to expose races between a delete and a re-create under the same name.
        self.gc_delay_seconds = 0.0
        store.hooks.append(self._on_change)
        self._ensure_node()
        for ns in ("default", "kube-system", "kube-public"):
            if store.find(self.t("namespaces"), None, ns) is None:
                store.create(self.t("namespaces"), None, {"metadata": {"name": ns}})

    def t(self, plural: str, group: str = "") -> ResourceType:
        return self.store.types[(group, plural)]

    def _ensure_node(self) -> None:
        nodes = self.t("nodes")
        if self.store.find(nodes, None, NODE_NAME) is None:
            obj, _ = self.store.create(nodes, None, {"metadata": {"name": NODE_NAME}})
            capacity = {"cpu": "64", "memory": "512Gi", "pods": "110"}
            if self.node_gpus:
                capacity[GPU] = str(self.node_gpus)
            self.store.write_status(nodes, obj, {"capacity": capacity, "allocatable": capacity,
                                                 "conditions": [{"type": "Ready", "status": "True"}]})

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # --- dispatch -----------------------------------------------------------------------------------

    def _on_change(self, rt: ResourceType, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        uid = obj["metadata"]["uid"]
        if etype == "DELETED":
            policy = self.store.deletion_policy.pop(uid, "Background")
            self.loop.call_later(self.gc_delay_seconds, self._collect, uid, policy)
            for ref in obj["metadata"].get("ownerReferences", []):
                self.loop.call_soon(self._finish_foreground, ref["uid"])
            ns = obj["metadata"].get("namespace")
            if ns:
                self.loop.call_soon(self._finish_namespace, ns)
        elif obj["metadata"].get("deletionTimestamp"):
            if rt.kind == "Namespace":
                self.loop.call_soon(self._empty_namespace, obj["metadata"]["name"])
            elif "foregroundDeletion" in obj["metadata"].get("finalizers", []):
                self.loop.call_soon(self._collect, uid, "Foreground")
                self.loop.call_soon(self._finish_foreground, uid)
        if etype == "ADDED" and obj["metadata"].get("ownerReferences"):
            self.loop.call_later(self.gc_delay_seconds, self._check_dangling, rt, obj)
        if rt.kind == "Job" and etype != "DELETED":
            self._queue_job(uid)
        elif rt.kind == "Job":
            handle = self._timers.pop(uid, None)
            if handle:
                handle.cancel()
            self._pods_by_job.pop(uid, None)
        elif rt.kind == "Pod":
            if etype == "ADDED":
                self.loop.call_soon(self._schedule, obj)
            owner = _controller_of(obj)
            if owner and owner.get("kind") == "Job":
                where = (obj["metadata"]["namespace"], obj["metadata"]["name"])
                pods = self._pods_by_job.setdefault(owner["uid"], set())
                if etype == "DELETED":
                    pods.discard(where)
                else:
                    pods.add(where)
                self._queue_job(owner["uid"])

    # --- garbage collector ----------------------------------------------------------------------------

    def _dependents(self, uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        found = []
        for key, objects in self.store.objects.items():
            rt = self.store.types.get(key)
            if rt is None:
                continue
            for obj in objects.values():
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences", [])):
                    found.append((rt, obj))
        return found

    def _collect(self, owner_uid: str, policy: str) -> None:
        for rt, dep in self._dependents(owner_uid):
            meta = dep["metadata"]
            others = [r for r in meta.get("ownerReferences", []) if r.get("uid") != owner_uid]
            alive = [r for r in others if self.store.by_uid(r["uid"]) is not None]
            if policy == "Orphan" or alive:
                if policy == "Foreground" and self.store.by_uid(owner_uid) is not None:
                    pass  # the owner still exists (foreground): keep the reference until the dependent goes
                else:
                    new = copy.deepcopy(dep)
                    new["metadata"]["ownerReferences"] = others
                    if not others:
                        new["metadata"].pop("ownerReferences")
                    self.store._commit(rt, "MODIFIED", new, dep)
                    continue
            if policy != "Orphan" and not alive and not meta.get("deletionTimestamp"):
                with contextlib.suppress(ApiError):
                    self.store.delete(rt, meta.get("namespace"), meta["name"],
                                      propagation="Foreground" if policy == "Foreground" else "Background")

    def _finish_foreground(self, owner_uid: str) -> None:
        found = self.store.by_uid(owner_uid)
        if found is None:
            return
        rt, owner = found
        if "foregroundDeletion" not in owner["metadata"].get("finalizers", []):
            return
        blocking = [d for _, d in self._dependents(owner_uid)
                    if any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion")
                           for r in d["metadata"].get("ownerReferences", []))]
        if not blocking:
            self.store.remove_finalizer(rt, owner, "foregroundDeletion")

    def _check_dangling(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        current = self.store.find(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != obj["metadata"]["uid"]:
            return
        refs = current["metadata"].get("ownerReferences", [])
        if refs and all(self.store.by_uid(r["uid"]) is None for r in refs):
            with contextlib.suppress(ApiError):
                self.store.delete(rt, current["metadata"].get("namespace"), current["metadata"]["name"])

    # --- namespaces -----------------------------------------------------------------------------------

    def _empty_namespace(self, ns: str) -> None:
        for key, objects in list(self.store.objects.items()):
            rt = self.store.types.get(key)
            if rt is None or not rt.namespaced:
                continue
            for (ons, name), obj in list(objects.items()):
                if ons == ns and not obj["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self.store.delete(rt, ns, name, propagation="Background")
        self._finish_namespace(ns)

    def _finish_namespace(self, ns: str) -> None:
        nss = self.t("namespaces")
        obj = self.store.find(nss, None, ns)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        for key, objects in self.store.objects.items():
            rt = self.store.types.get(key)
            if rt is not None and rt.namespaced and any(o == ns for o, _ in objects):
                return
        self.store._commit(nss, "DELETED", copy.deepcopy(obj), obj)

    # --- scheduler ------------------------------------------------------------------------------------

    def _schedule(self, pod: dict[str, Any]) -> None:
        pods = self.t("pods")
        current = self.store.find(pods, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != pod["metadata"]["uid"]:
            return
        status = copy.deepcopy(current.get("status") or {})
        if status.get("phase") != "Pending" or _condition(current, "PodScheduled"):
            return
        want = 0
        for c in current["spec"].get("containers", []):
            limits = (c.get("resources") or {}).get("limits") or {}
            want = max(want, int(limits.get(GPU, 0)))
        now = now_rfc3339()
        if want and (self.node_gpus or 0) < want:
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "lastTransitionTime": now,
                                     "message": f"0/1 nodes are available: 1 Insufficient {GPU}."
                                                " preemption: 0/1 nodes are available: 1 No preemption victims"
                                                " found for incoming pod."}]
            self.store.write_status(pods, current, status)
            return
        new = {**current, "metadata": dict(current["metadata"]), "spec": {**current["spec"], "nodeName": NODE_NAME}}
        new["status"] = {**status, "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}], "hostIP": "10.0.0.1"}
        self.store._commit(pods, "MODIFIED", new, current)

    # --- Job controller -------------------------------------------------------------------------------

    def _queue_job(self, uid: str) -> None:
        if uid not in self._pending_jobs:
            self._pending_jobs.add(uid)
            self.loop.call_soon(self._sync_job, uid)

    def _sync_job(self, uid: str) -> None:
        self._pending_jobs.discard(uid)
        found = self.store.by_uid(uid)
        if found is None or found[0].kind != "Job":
            return
        rt, job = found
        if job["metadata"].get("deletionTimestamp"):
            return
        JobSync(self, rt, job).run()

    def pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        pods = self.store.objects[("", "pods")]
        found = (pods.get(key) for key in sorted(self._pods_by_job.get(job["metadata"]["uid"], ())))
        return [p for p in found if p is not None]

    def timer(self, key: str, delay: float, callback: Any, *args: Any) -> None:
        old = self._timers.pop(key, None)
        if old:
            old.cancel()
        self._timers[key] = self.loop.call_later(max(delay, 0.0), callback, *args)


def _exit_codes(pod: dict[str, Any], container: str | None = None) -> list[tuple[str, int]]:
    out = []
    for cs in (pod.get("status") or {}).get("containerStatuses", []):
        term = (cs.get("state") or {}).get("terminated")
        if term is not None and (container is None or cs.get("name") == container):
            out.append((cs.get("name", ""), int(term.get("exitCode", 0))))
    return out


def _index_ranges(indexes: set[int]) -> str:
    parts, ordered = [], sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


class JobSync:
    """One pass of the Job controller over one Job."""

    def __init__(self, ctl: Controllers, rt: ResourceType, job: dict[str, Any]):
        self.ctl, self.rt, self.job = ctl, rt, job
        self.spec = job.get("spec") or {}
        self.status = copy.deepcopy(job.get("status") or {})
        self.now = now_rfc3339()

    def _set_condition(self, ctype: str, status: str, reason: str = "", message: str = "") -> None:
        conds = self.status.setdefault("conditions", [])
        for c in conds:
            if c["type"] == ctype:
                if (c["status"], c.get("reason", ""), c.get("message", "")) != (status, reason, message):
                    if c["status"] != status:
                        c["lastTransitionTime"] = self.now
                    c.update(status=status, reason=reason, message=message, lastProbeTime=self.now)
                return
        conds.append({"type": ctype, "status": status, "reason": reason, "message": message,
                      "lastProbeTime": self.now, "lastTransitionTime": self.now})

    def _finished(self) -> bool:
        return _is_true(self.job, "Complete") or _is_true(self.job, "Failed")

    def run(self) -> None:
        if self._finished():
            self._arm_ttl()
            return
        pods = self.ctl.pods_of(self.job)
        active = [p for p in pods if p["status"].get("phase") in ("Pending", "Running")
                  and not p["metadata"].get("deletionTimestamp")]
        if self.spec.get("suspend"):
            for p in active:
                self._delete_pod(p)
            if not _is_true(self.job, "Suspended"):
                self._set_condition("Suspended", "True", "JobSuspended", "Job suspended")
            self.status["active"] = 0
            self._write()
            return
        if _is_true(self.job, "Suspended"):
            self._set_condition("Suspended", "False", "JobResumed", "Job resumed")
        self.status.setdefault("startTime", self.now)
        deadline = self.spec.get("activeDeadlineSeconds")
        if deadline and self._elapsed() >= deadline:
            self._fail(active, "DeadlineExceeded", "Job was active longer than specified deadline")
            return
        if deadline:
            self.ctl.timer(self.job["metadata"]["uid"], deadline - self._elapsed() + 0.05,
                           self.ctl._queue_job, self.job["metadata"]["uid"])

        indexed = self.spec.get("completionMode") == "Indexed"
        completions = self.spec.get("completions") or 1
        succeeded = [p for p in pods if p["status"].get("phase") == "Succeeded"]
        counted_failures = 0
        for pod in pods:
            if pod["status"].get("phase") != "Failed":
                continue
            action, rule_index, detail = self._policy_action(pod)
            if action == "FailJob":
                self._fail(active, "PodFailurePolicy", f"{detail} matching FailJob rule at index {rule_index}")
                return
            if action != "Ignore":
                counted_failures += 1
        self.status["failed"] = counted_failures
        if counted_failures > self.spec.get("backoffLimit", 6):
            self._fail(active, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
            return

        if indexed:
            done = {int(p["metadata"]["annotations"][INDEX_KEY]) for p in succeeded}
            self.status["completedIndexes"] = _index_ranges(done)
            self.status["succeeded"] = len(done)
            complete = len(done) >= completions
        else:
            self.status["succeeded"] = len(succeeded)
            complete = len(succeeded) >= completions
        if complete:
            for p in active:
                self._delete_pod(p)
            self.status["active"] = 0
            self.status["ready"] = 0
            self.status["completionTime"] = self.now
            self._set_condition("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of"
                                " succeeded pods")
            self._set_condition("Complete", "True", "CompletionsReached", "Reached expected number of succeeded"
                                " pods")
            self._write()
            self._arm_ttl()
            return

        parallelism = self.spec.get("parallelism", 1)
        if indexed:
            running_idx = {int(p["metadata"]["annotations"][INDEX_KEY]) for p in active}
            for idx in range(completions):
                if len(active) >= parallelism:
                    break
                if idx not in done and idx not in running_idx:
                    pod = self._create_pod(idx)
                    if pod is None:
                        break
                    active.append(pod)
        else:
            missing = min(parallelism, completions - len(succeeded)) - len(active)
            for _ in range(max(missing, 0)):
                pod = self._create_pod(None)
                if pod is None:
                    break
                active.append(pod)
        self.status["active"] = len(active)
        self.status["ready"] = sum(1 for p in active if _is_true(p, "Ready"))
        self.status["terminating"] = 0
        self._write()

    def _elapsed(self) -> float:
        import datetime

        start = datetime.datetime.strptime(self.status["startTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC)
        return (datetime.datetime.now(datetime.UTC) - start).total_seconds()

    def _policy_action(self, pod: dict[str, Any]) -> tuple[str, int, str]:
        """The podFailurePolicy's verdict on a failed pod: (action, rule index, what matched)."""
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        for i, rule in enumerate((self.spec.get("podFailurePolicy") or {}).get("rules", [])):
            on_codes = rule.get("onExitCodes")
            if on_codes:
                values = set(on_codes.get("values", []))
                for container, code in _exit_codes(pod, on_codes.get("containerName")):
                    hit = code in values if on_codes.get("operator") == "In" else (code != 0 and code not in values)
                    if hit:
                        return rule["action"], i, f"Container {container} for pod {name} failed with exit code {code}"
            for pattern in rule.get("onPodConditions", []):
                cond = _condition(pod, pattern.get("type", ""))
                if cond and cond.get("status") == pattern.get("status", "True"):
                    return rule["action"], i, f"Pod {name} has condition {pattern['type']}"
        return "Count", -1, ""

    def _fail(self, active: list[dict[str, Any]], reason: str, message: str) -> None:
        for p in active:
            self._delete_pod(p)
        self.status["active"] = 0
        self.status["ready"] = 0
        self._set_condition("FailureTarget", "True", reason, message)
        self._set_condition("Failed", "True", reason, message)
        self._write()
        self._arm_ttl()

    def _arm_ttl(self) -> None:
        ttl = self.spec.get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        meta = self.job["metadata"]
        key = f"ttl/{meta['uid']}"
        if key in self.ctl._timers:
            return

        def expire() -> None:
            current = self.ctl.store.find(self.rt, meta["namespace"], meta["name"])
            if current is not None and current["metadata"]["uid"] == meta["uid"]:
                self.ctl.store.delete(self.rt, meta["namespace"], meta["name"], propagation="Background")

        self.ctl.timer(key, float(ttl), expire)

    def _write(self) -> None:
        self.ctl.store.write_status(self.rt, self.job, self.status)

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        pods = self.ctl.t("pods")
        current = self.ctl.store.find(pods, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None:
            return
        # The kubelet would kill it: record it as failed by deletion, then remove it.
        with contextlib.suppress(ApiError):
            self.ctl.store.delete(pods, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _refused(self, pod_name: str, pod_spec: dict[str, Any]) -> str | None:
        """Why the API would refuse this pod (the admission a pod create goes through), or None.
        Modelled: the ServiceAccount admission plugin, which refuses a pod whose service account is
        missing."""
        ns = self.job["metadata"]["namespace"]
        sa = pod_spec.get("serviceAccountName")
        if sa and sa != "default" and self.ctl.store.find(self.ctl.t("serviceaccounts"), ns, sa) is None:
            return (f'pods "{pod_name}" is forbidden: error looking up service account {ns}/{sa}:'
                    f' serviceaccount "{sa}" not found')
        return None

    def _failed_create(self, message: str) -> None:
        """As the Job controller does: a FailedCreate Warning Event on the Job, and a retry later."""
        meta = self.job["metadata"]
        events = self.ctl.t("events")
        name = f"{meta['name']}.{meta['uid'][:8]}.failedcreate"
        if self.ctl.store.find(events, meta["namespace"], name) is None:
            now = now_rfc3339()
            self.ctl.store.create(events, meta["namespace"], {
                "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"]},
                "reason": "FailedCreate", "message": f"Error creating: {message}", "type": "Warning", "count": 1,
                "source": {"component": "job-controller"}, "firstTimestamp": now, "lastTimestamp": now,
            }, trusted=True)
        self.ctl.timer(f"create/{meta['uid']}", 1.0, self.ctl._queue_job, meta["uid"])

    def _create_pod(self, index: int | None) -> dict[str, Any] | None:
        meta = self.job["metadata"]
        template = copy.deepcopy(self.spec.get("template") or {})
        tmeta = template.get("metadata") or {}
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        pod_spec = template.get("spec") or {}
        if index is not None:
            name = f"{meta['name']}-{index}-{suffix}"
            labels[INDEX_KEY] = str(index)
            annotations[INDEX_KEY] = str(index)
            pod_spec.setdefault("hostname", f"{meta['name']}-{index}")
            for c in pod_spec.get("containers", []):
                env = c.setdefault("env", [])
                if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                    env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                        "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}})
        else:
            name = f"{meta['name']}-{suffix}"
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                         "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True,
                                              "blockOwnerDeletion": True}]},
            "spec": pod_spec,
        }
        refused = self._refused(name, pod_spec)
        if refused is not None:
            self._failed_create(refused)
            return None
        # The template was validated with the Job; the pod is the controller's own (trusted) write, but
        # admission (Pod Security) still applies: a refused pod is a FailedCreate Event on the Job.
        try:
            created, _ = self.ctl.store.create(self.ctl.t("pods"), meta["namespace"], pod, trusted=True)
        except ApiError as err:
            self._failed_create(err.message)
            return None
        return created
