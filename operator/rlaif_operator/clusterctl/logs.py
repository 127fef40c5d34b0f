"""``rlaif logs NAME``: a stage's pod logs (a pipeline's current or named stage), or, once the pods are
gone (the Job's TTL), the last lines the operator kept in ``status.logTail``.

Notes (which pod, the fallback) go to stderr so that stdout is the log alone.
"""

from __future__ import annotations

import sys
from typing import Any, cast

from rlaif_operator.api.common import API_VERSION, ObjectMeta
from rlaif_operator.api.kinds import KINDS, STAGE_KINDS, Resource
from rlaif_operator.builders import names
from rlaif_operator.clusterctl.connect import Target, read_pod_log
from rlaif_operator.clusterctl.resources import ClusterctlError, find, get, kind_of
from rlaif_operator.kube import KubeError

STARTED = ("Running", "Succeeded", "Failed")


def _typed(obj: dict[str, Any]) -> Resource:
    """The typed resource the builders' name functions take, with just its kind and name (unvalidated: a
    stored object's spec is the server's business, not this CLI's)."""
    kind: Any = KINDS[obj["kind"]]
    return cast(Resource, kind.model_construct(kind=obj["kind"], metadata=ObjectMeta.model_construct(
        name=obj["metadata"]["name"])))


def job_name(obj: dict[str, Any]) -> str:
    """The stage's main Job, as the operator names it (``names.job_name``)."""
    return names.job_name(_typed(obj))


def pick_stage(pipeline: dict[str, Any], stage: str | None) -> tuple[str, str]:
    """(kind, name) of the pipeline's stage to show: ``stage`` (a child's name, its stage short name such
    as ``reward``, or ``kind/name``), else the current stage, else the failed one, else the last started."""
    pname = pipeline["metadata"]["name"]
    entries = [s for s in (pipeline.get("status") or {}).get("stages") or []
               if isinstance(s, dict) and s.get("kind") in KINDS and s.get("name")]
    if stage:
        if "/" in stage:
            alias, name = stage.split("/", 1)
            return kind_of(alias), name
        for entry in entries:
            if stage in (entry["name"], KINDS[entry["kind"]].STAGE, entry["kind"]):
                return entry["kind"], entry["name"]
        for kind in STAGE_KINDS:  # not reported yet: the names the pipeline gives its children
            if stage in (KINDS[kind].STAGE, kind, f"{pname}-{KINDS[kind].STAGE}"):
                return kind, f"{pname}-{KINDS[kind].STAGE}"
        raise ClusterctlError(f"RLAIFPipeline/{pname} has no stage {stage!r}; its stages: "
                              + (", ".join(e["name"] for e in entries) or "none reported yet"))
    current = (pipeline.get("status") or {}).get("currentStage")
    for entry in entries:
        if entry["name"] == current:
            return entry["kind"], entry["name"]
    for entry in entries:
        if entry.get("phase") == "Failed":
            return entry["kind"], entry["name"]
    started = [e for e in entries if e.get("phase") in STARTED]
    if started:
        return started[-1]["kind"], started[-1]["name"]
    phases = ", ".join(f"{e['name']}: {e.get('phase') or '-'}" for e in entries)
    raise ClusterctlError(f"RLAIFPipeline/{pname}: no stage has started yet" + (f" ({phases})" if phases else ""))


def _index(pod: dict[str, Any]) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(names.COMPLETION_INDEX_ANNOTATION)
    try:
        return int(str(value))
    except ValueError:
        return 0


def order_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By completion index (rank / shard), then oldest first (a retried index's new pod comes last)."""
    return sorted(pods, key=lambda p: (_index(p), (p.get("metadata") or {}).get("creationTimestamp") or "",
                                       p["metadata"]["name"]))


def rank0(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The pod of index 0 (rank 0 / shard 0); of several (retries), the newest."""
    ordered = order_pods(pods)
    zero = [p for p in ordered if _index(p) == 0]
    return zero[-1] if zero else (ordered[0] if ordered else None)


def _container(pod: dict[str, Any]) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    return containers[0].get("name") if containers else None


def _tail(lines: list[str], tail: int | None) -> list[str]:
    return lines[-tail:] if tail is not None and tail > 0 else ([] if tail == 0 else lines)


def print_log_tail(stage: dict[str, Any], tail: int | None, why: str) -> int:
    kept = [str(line) for line in (stage.get("status") or {}).get("logTail") or []]
    ref = f"{stage['kind']}/{stage['metadata']['name']}"
    phase = (stage.get("status") or {}).get("phase") or "-"
    if not kept:
        print(f"{ref} ({phase}): {why}, and its status keeps no log lines (status.logTail)", file=sys.stderr)
        return 1
    print(f"{ref} ({phase}): {why}; the last {len(kept)} lines the operator kept when it finished"
          " (status.logTail):", file=sys.stderr)
    for line in _tail(kept, tail):
        print(line)
    return 0


def stage_pods(target: Target, stage: dict[str, Any], all_pods: bool) -> list[dict[str, Any]]:
    jobs = [job_name(stage)]
    if all_pods and stage["kind"] == "PreferenceLabelJob":
        jobs.append(names.merge_job_name(_typed(stage)))
    pods: list[dict[str, Any]] = []
    for job in jobs:
        pods += order_pods(target.kube.list("v1", "Pod", target.namespace,
                                            label_selector=f"{names.JOB_NAME_LABEL}={job}"))
    return pods


def show(target: Target, stage: dict[str, Any], tail: int | None, all_pods: bool) -> int:
    """Prints the stage's logs; 0, or 1 when there was nothing to show."""
    pods = stage_pods(target, stage, all_pods)
    if not pods:
        phase = (stage.get("status") or {}).get("phase")
        if phase in STARTED or (stage.get("status") or {}).get("logTail"):
            return print_log_tail(stage, tail, f"the pods of Job {job_name(stage)} are gone")
        message = (stage.get("status") or {}).get("message") or ""
        print(f"{stage['kind']}/{stage['metadata']['name']} has no pods yet (phase {phase or '-'})"
              + (f": {message}" if message else ""), file=sys.stderr)
        return 1
    chosen = pods if all_pods else [p for p in [rank0(pods)] if p is not None]
    shown = 0
    for pod in chosen:
        pod_name = pod["metadata"]["name"]
        pod_phase = (pod.get("status") or {}).get("phase") or "-"
        header = f"==> pod {pod_name} (index {_index(pod)}, {pod_phase}) <=="
        try:
            text = read_pod_log(target.kube, target.namespace, pod_name, _container(pod), tail)
        except KubeError as err:
            if err.status == 404 and not all_pods:
                return print_log_tail(stage, tail, f"pod {pod_name} is gone")
            print(f"{header}\n{pod_name}: no log ({err.status}: {err.body.get('message') or err.reason})",
                  file=sys.stderr)
            continue
        shown += 1
        if all_pods:
            print(header)
        else:
            print(f"{header}  [{len(pods)} pod(s); --all-pods shows each]", file=sys.stderr)
        sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return 0 if shown else 1


def logs(target: Target, ref: str, stage: str | None = None, tail: int | None = None, all_pods: bool = False) -> int:
    obj = find(target.kube, target.namespace, ref)
    if obj["kind"] == "RLAIFPipeline":
        kind, name = pick_stage(obj, stage)
        child = get(target.kube, target.namespace, kind, name)
        if child is None:
            raise ClusterctlError(f"{kind}/{name} (a stage of RLAIFPipeline/{obj['metadata']['name']}) not found")
        obj = child
    elif stage:
        raise ClusterctlError(f"--stage is for a pipeline; {obj['kind']}/{obj['metadata']['name']} is a stage")
    obj.setdefault("apiVersion", API_VERSION)
    return show(target, obj, tail, all_pods)
