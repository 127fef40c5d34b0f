"""High availability: two real operator processes (``python -m rlaif_operator``, as the chart runs them)
with leader election on a Lease. Only the leader acts; SIGKILL it mid-pipeline and the standby takes
over; the pipeline ends Succeeded with one Job per stage and no duplicate Events. Prints the handover.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from clusterkit import Cluster, Operator, eventually
from faultkit import audit, drive_pipeline

pytestmark = pytest.mark.usefixtures("testapi_only")

LEASE = {"leader_election": "true", "lease_duration_seconds": "4", "renew_deadline_seconds": "3",
         "retry_period_seconds": "0.5", "recheck_seconds": "1", "log_level": "INFO",
         "unschedulable_after_seconds": "0", "max_gpus_per_node": "8"}


def holder(cluster: Cluster, lease_ns: str, lease: str) -> str:
    obj = cluster.get("lease", lease, lease_ns) or {}
    return (obj.get("spec") or {}).get("holderIdentity") or ""


def is_holder(op: Operator, who: str) -> bool:
    return op.proc is not None and who.endswith(f"_{op.proc.pid}")


def test_standby_takes_over_when_the_leader_is_killed(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.new_namespace("ha")  # watched by these two operators only (the session's watches op-*)
    lease = f"rlaif-ha-{uuid.uuid4().hex[:6]}"
    settings = {**LEASE, "leader_election_namespace": ns, "lease_name": lease}
    first = Operator(cluster, tmp_path / "first.log", ns, **settings)
    second = Operator(cluster, tmp_path / "second.log", ns, **settings)
    try:
        first.start(entry="module")
        eventually(lambda: is_holder(first, holder(cluster, ns, lease)), what="the first replica leads")
        second.start(entry="module")  # healthy as a standby: its liveness probe answers while it waits
        handover: dict[str, float] = {}

        def kill_leader_mid_pipeline(stage: str) -> None:
            if stage != "reward":
                return
            assert is_holder(first, holder(cluster, ns, lease)), "the second replica took the lease while the" \
                " first was alive"
            assert "leads (lease" not in second.log_path.read_text()
            first.proc.kill()  # SIGKILL: no release, the standby must wait for the lease to expire
            first.proc.wait(10)
            killed = time.monotonic()
            first.proc = None
            eventually(lambda: is_holder(second, holder(cluster, ns, lease)), timeout=60, interval=0.1,
                       what="the standby takes the lease")
            handover["lease"] = time.monotonic() - killed
            handover["killed"] = killed

        drive_pipeline(cluster, ns, "ha", between=kill_leader_mid_pipeline)
        acted = cluster.get("job", "ha-policy-policy", ns)["metadata"]["creationTimestamp"]
        print(f"\nHA handover: standby held the lease {handover['lease']:.1f}s after SIGKILL of the leader"
              f" (lease 4s, retry 0.5s); policy Job created by it at {acted}")
        assert handover["lease"] < 60  # generous: the expected value is lease duration + one retry
        result = audit(cluster, ns, "ha")
        print(f"HA audit: {result}")
        assert result["phase"] == "Succeeded"
        assert result["jobs"] == {"label": 1, "reward": 1, "policy": 1}
        assert result["lostOutputs"] == [] and result["duplicateEvents"] == []
        # one line per log record (python -m rlaif_operator printed each line twice)
        log = second.log_path.read_text()
        assert log.count("leads (lease") == 1, log[-3000:]
    finally:
        first.stop()
        second.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_clean_shutdown_hands_over_at_once(cluster: Cluster, tmp_path: Path) -> None:
    """SIGTERM: the leader releases the Lease and the standby takes it on its next retry."""
    ns = cluster.new_namespace("ha")
    lease = f"rlaif-ha-{uuid.uuid4().hex[:6]}"
    settings = {**LEASE, "leader_election_namespace": ns, "lease_name": lease, "lease_duration_seconds": "30",
                "renew_deadline_seconds": "20"}
    first = Operator(cluster, tmp_path / "first.log", ns, **settings)
    second = Operator(cluster, tmp_path / "second.log", ns, **settings)
    try:
        first.start(entry="module")
        eventually(lambda: is_holder(first, holder(cluster, ns, lease)), what="the first replica leads")
        second.start(entry="module")
        stopped = time.monotonic()
        first.stop()
        eventually(lambda: is_holder(second, holder(cluster, ns, lease)), timeout=25, interval=0.1,
                   what="the standby takes the released lease (before the 30s lease would expire)")
        print(f"\nHA clean handover: {time.monotonic() - stopped:.1f}s after SIGTERM (lease 30s)")
        assert "released lease" in first.log_path.read_text()
    finally:
        first.stop()
        second.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
