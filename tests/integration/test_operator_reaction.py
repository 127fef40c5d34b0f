"""The operator-side hand-off latency (bench/bench_operator.py's "operator's own figures") is timed on the
operator's clock: with every watch event delivered a second late by the API server, the end-to-end
hand-off grows by that second and more, while the operator's own figure does not.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from clusterkit import REPO, Cluster, Operator, eventually
from test_operator_pipeline import LABEL_REPORT, LABELING, REWARD
from testapi.faults import Faults

sys.path.insert(0, str(REPO / "bench"))
from handoffs import Edge, operator_handoffs, read_trace  # noqa: E402

pytestmark = pytest.mark.usefixtures("testapi_only")
LAG = 1.0
LATENCY = 0.5


def stage(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def label_stage_running(cluster: Cluster, ns: str) -> None:
    """Applies a label stage "up" and a reward stage "down" that waits on it; returns once up's Job runs."""
    cluster.apply([stage("PreferenceLabelJob", "up", LABELING),
                   stage("RewardModelRun", "down", {**REWARD, "preferences": {"fromLabelJob": "up"}})], ns)
    eventually(lambda: cluster.get("job", "up-label", ns), what="the label Job")
    cluster.testapi.run_job(ns, "up-label")
    eventually(lambda: cluster.phase("plj", "up", ns) == "Running", what="the label stage running")


def test_operator_side_handoff_leaves_out_the_servers_time(cluster: Cluster, operator: Operator, ns: str) -> None:
    api = cluster.testapi
    stored: dict[str, float] = {}  # the API server's clock: when the writes were stored

    def hook(rt: Any, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.kind != "Job" or obj["metadata"].get("namespace") != ns:
            return
        name = obj["metadata"]["name"]
        if etype == "ADDED":
            stored.setdefault(f"created {name}", time.time())
        if any(c.get("type") == "Complete" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions", [])):
            stored.setdefault(f"complete {name}", time.time())

    api.call(lambda store: store.hooks.append(hook))
    try:
        label_stage_running(cluster, ns)
        api.call(lambda _: api.handler.set_faults(Faults(watch_lag_seconds=LAG)))
        try:
            time.sleep(0.5)  # the watches restart, lagging
            api.finish_job(ns, "up-label", 0, LABEL_REPORT)
            eventually(lambda: "created down-reward" in stored, timeout=60, what="the reward Job")
        finally:
            api.call(lambda _: api.handler.set_faults(None))
    finally:
        api.call(lambda store: store.hooks.remove(hook))

    end_to_end = stored["created down-reward"] - stored["complete up-label"]
    edge = Edge(f"Job/{ns}/up-label", f"PreferenceLabelJob/{ns}/up", f"Job/{ns}/down-reward")
    handoffs = eventually(lambda: operator_handoffs(read_trace(operator.settings["trace_file"]), [edge]),
                          what="the hand-off in the operator's trace")
    ours = handoffs[0]
    assert ours.by_upstream_job, ours  # timed from the upstream Job's completion event
    assert end_to_end >= LAG  # the server's lag is in the end-to-end figure ...
    assert ours.create_seconds < end_to_end - 0.9 * LAG  # ... and not in the operator's own
    assert ours.status_seconds is not None and ours.status_seconds <= ours.create_seconds
    trace = [r for r in read_trace(operator.settings["trace_file"]) if r["object"] == edge.downstream_job]
    # The operator's clock started when the lagging event reached it, after the server stored it.
    assert trace[0]["receivedAt"] >= stored["complete up-label"] + 0.9 * LAG
    assert trace[0]["sentAt"] <= stored["created down-reward"] + 0.05


def test_a_trainers_config_and_network_policy_go_out_in_one_round_trip(cluster: Cluster, operator: Operator,
                                                                         ns: str) -> None:
    """A trainer's ConfigMap and NetworkPolicy go out together, the Job once both exist: with every reply
    held LATENCY seconds, the two creates are sent well within it of each other, the Job after both."""
    api = cluster.testapi
    label_stage_running(cluster, ns)
    api.call(lambda _: api.handler.set_faults(Faults(latency_seconds=LATENCY)))
    try:
        api.finish_job(ns, "up-label", 0, LABEL_REPORT)
        eventually(lambda: cluster.get("job", "down-reward", ns), timeout=60, what="the reward Job")
    finally:
        api.call(lambda _: api.handler.set_faults(None))

    def sent(kind: str) -> list[float]:
        return [r["sentAt"] for r in read_trace(operator.settings["trace_file"])
                if r["write"] == "create" and r["object"].startswith(f"{kind}/{ns}/down-")]

    times = {k: eventually(lambda k=k: sent(k), what=f"the {k} create in the trace")
             for k in ("ConfigMap", "NetworkPolicy", "Job")}
    assert all(len(t) == 1 for t in times.values()), times
    config, policy, job = (times[k][0] for k in ("ConfigMap", "NetworkPolicy", "Job"))
    assert abs(config - policy) < LATENCY / 2  # neither waited for the other's reply
    assert job >= max(config, policy) + 0.9 * LATENCY  # the Job waited for both
