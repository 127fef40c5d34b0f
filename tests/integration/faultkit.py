"""Driving one pipeline to the end while something goes wrong, and auditing what it left behind.

``drive_pipeline`` plays the kubelet for each stage in turn (label -> reward -> policy) and calls
``between(stage)`` before finishing each stage's pods, where a test kills an operator or turns faults
on. ``audit`` counts what a faithful run leaves: one Job per stage, the three outputs, no duplicate
Events.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from clusterkit import Cluster, eventually
from test_operator_pipeline import LABEL_REPORT, POLICY_REPORT, REWARD_REPORT, pipeline

STAGES = (("label", "label", LABEL_REPORT), ("reward", "reward", REWARD_REPORT), ("policy", "policy", POLICY_REPORT))


def drive_pipeline(cluster: Cluster, ns: str, name: str, between: Callable[[str], None] = lambda _: None,
                   timeout: float = 90, after: Callable[[str], None] = lambda _: None) -> None:
    """Applies pipeline ``name`` and finishes each stage's pods as its Job appears; returns when the
    pipeline Succeeded (fails the test after ``timeout`` seconds per step). ``between(stage)`` runs
    when the stage's Job exists, ``after(stage)`` right after its pods finished (the operator is then
    reacting: recording the result, creating the next stage)."""
    cluster.apply(pipeline(name), ns)
    for stage, component, report in STAGES:
        job = f"{name}-{stage}-{component}"
        eventually(lambda j=job: cluster.get("job", j, ns), timeout=timeout, what=f"Job {job}")
        between(stage)
        # finish every pod the Job has (two for the two-node reward model); pods may still be coming
        expected = 2 if stage == "reward" else 1
        done = 0

        def finished(j: str = job, r: dict[str, Any] = report, want: int = expected) -> bool:
            nonlocal done
            done += cluster.finish_pods(j, ns, 0, r)
            return done >= want
        eventually(finished, timeout=timeout, interval=0.5, what=f"pods of {job} finished")
        after(stage)
    eventually(lambda: cluster.phase("rlp", name, ns) == "Succeeded", timeout=timeout,
               what=f"pipeline {name} Succeeded")


def audit(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    """What the pipeline left: Jobs per stage, outputs recorded, duplicate Events (same object, reason
    and message posted twice)."""
    jobs = collections.Counter(j["metadata"]["labels"].get("app.kubernetes.io/component", "?")
                               for j in cluster.items("jobs", ns))
    status = (cluster.get("rlp", name, ns) or {}).get("status") or {}
    outputs = status.get("outputs") or {}
    events = collections.Counter((e["involvedObject"]["name"], e["reason"], e["message"])
                                 for e in cluster.json("get", "events", "-n", ns)["items"])
    return {"phase": status.get("phase"), "jobs": dict(jobs),
            "duplicateJobs": sum(n - 1 for n in jobs.values() if n > 1),
            "lostOutputs": [k for k in ("label.labels", "reward.model", "policy.model") if k not in outputs],
            "duplicateEvents": [k for k, n in events.items() if n > 1]}
