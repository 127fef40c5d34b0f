"""Fault injection: a whole pipeline while the API server misbehaves, and while the operator is SIGKILLed
at random points. Seeded (a failing seed replays) and bounded in time.

Each scenario runs one pipeline to the end and checks what a faithful run leaves: Succeeded, exactly one
Job per stage, every output recorded; and that the operator stayed bounded (memory, failed reconciles).
Each prints a row of the fault table (run with ``-s`` to see it).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import Cluster, Operator
from faultkit import audit, drive_pipeline
from testapi.faults import Faults

pytestmark = pytest.mark.usefixtures("testapi_only")

OPERATOR = {"recheck_seconds": "1", "recheck_max_seconds": "4", "api_timeout_seconds": "1.5",
            "max_gpus_per_node": "8", "unschedulable_after_seconds": "0", "log_level": "INFO"}
MAX_RSS_MIB = 1024  # generous: the operator idles at ~150 MiB
MAX_FAILED_RECONCILES = 300  # each is retried with backoff; a retry storm would be thousands

SCENARIOS = {
    "api-500": dict(error_rate=0.2),
    "conflict-409": dict(conflict_rate=0.3),
    "timeouts": dict(timeout_rate=0.1, timeout_seconds=3.0),
    "watch-drop-410": dict(watch_drop_seconds=(0.5, 3.0), watch_gone_rate=0.3),
    "latency-1s": dict(latency_seconds=1.0),
    "lagging-watch": dict(watch_lag_seconds=0.3),  # per event: a burst of events falls further behind
    "all-at-once": dict(error_rate=0.05, conflict_rate=0.05, timeout_rate=0.03, watch_drop_seconds=(1.0, 5.0),
                        watch_gone_rate=0.1, latency_seconds=0.2),
}


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def row(scenario: str, seed: int, result: dict, extra: str) -> str:
    return (f"FAULT-TABLE | {scenario:<15} | seed {seed} | pipelines 1 | completed"
            f" {int(result['phase'] == 'Succeeded')} | duplicate Jobs {result['duplicateJobs']} | lost outputs"
            f" {len(result['lostOutputs'])} | duplicate Events {len(result['duplicateEvents'])} | {extra}")


@pytest.fixture(scope="module")
def fault_operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster, tmp_path_factory.mktemp("faults") / "operator.log", "fi-*", **OPERATOR)
    op.start()
    yield op
    op.stop()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_pipeline_survives_api_faults(scenario: str, cluster: Cluster, fault_operator: Operator) -> None:
    ns = cluster.new_namespace("fi")
    seed = 7
    before = fault_operator.metrics()
    faults = Faults(seed=seed, **SCENARIOS[scenario])
    api = cluster.testapi
    api.call(lambda _: api.handler.set_faults(faults))  # also ends the open watches: they restart faulty
    started = time.monotonic()
    try:
        drive_pipeline(cluster, ns, "faulty", timeout=120)
    finally:
        api.call(lambda _: api.handler.set_faults(None))
    elapsed = time.monotonic() - started
    result = audit(cluster, ns, "faulty")
    after = fault_operator.metrics()
    failed = (metric(after, "rlaif_operator_reconciles_total", result="error")
              - metric(before, "rlaif_operator_reconciles_total", result="error"))
    rss = rss_mib(fault_operator.proc.pid)
    injected = {k: v for k, v in faults.counts.items() if k != "requests"}
    print("\n" + row(scenario, seed, result, f"{elapsed:.0f}s, failed reconciles {failed:.0f}, RSS {rss:.0f} MiB,"
                     f" operator requests {faults.counts['requests']}, injected {injected}"))
    assert result["phase"] == "Succeeded"
    assert result["jobs"] == {"label": 1, "reward": 1, "policy": 1}
    assert result["lostOutputs"] == []
    assert failed <= MAX_FAILED_RECONCILES and rss < MAX_RSS_MIB
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_lost_reply_to_a_status_write_still_hands_off(cluster: Cluster, fault_operator: Operator) -> None:
    """Every status write of the labeling stage is applied but its reply is lost (the client times out):
    the operator learns the stage Succeeded only from the watch, and must still start the next stage
    (found by the timeouts scenario: the hand-off followed only the operator's own successful writes)."""
    ns = cluster.new_namespace("fi")
    faults = Faults(hold_replies_to=r"^PATCH .*/preferencelabeljobs/[^/]+/status$", timeout_seconds=3.0)
    api = cluster.testapi
    api.call(lambda _: api.handler.set_faults(faults))
    try:
        drive_pipeline(cluster, ns, "lost", timeout=60)
    finally:
        api.call(lambda _: api.handler.set_faults(None))
    result = audit(cluster, ns, "lost")
    print("\n" + row("lost-status-reply", 0, result, f"held replies {faults.counts['heldReply']}"))
    assert faults.counts["heldReply"] >= 1
    assert result["phase"] == "Succeeded" and result["jobs"] == {"label": 1, "reward": 1, "policy": 1}
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pipeline_survives_sigkill_at_random_points(seed: int, cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL of the operator at random points: at each of six moments (each stage's Job just created;
    each stage's pods just finished, while the operator records the result and creates the next stage)
    the seed decides whether to kill, after a random delay, and the operator restarts at once. The
    pipeline still ends with one Job per stage and every output."""
    ns = cluster.new_namespace(f"fk{seed}")
    op = Operator(cluster, tmp_path / "operator.log", ns, **OPERATOR)
    op.start()
    rng = random.Random(seed)
    kills: list[str] = []

    def maybe_kill(moment: str) -> None:
        last_chance = moment == "policy finished" and not kills  # every seed kills at least once
        if rng.random() < 0.5 and not last_chance:
            return
        time.sleep(rng.uniform(0.0, 0.6))
        assert op.proc is not None
        op.proc.kill()
        op.proc.wait(10)
        op.proc = None
        kills.append(moment)
        op.start()

    started = time.monotonic()
    try:
        drive_pipeline(cluster, ns, "killed", timeout=120, between=lambda s: maybe_kill(f"{s} Job created"),
                       after=lambda s: maybe_kill(f"{s} finished"))
        result = audit(cluster, ns, "killed")
        rss = rss_mib(op.proc.pid) if op.proc else 0.0
    finally:
        op.stop()
    print("\n" + row("sigkill", seed, result, f"{time.monotonic() - started:.0f}s, SIGKILLs {len(kills)}"
                     f" ({'; '.join(kills)}), RSS after {rss:.0f} MiB"))
    assert kills  # the last moment kills when no earlier one did
    assert result["phase"] == "Succeeded"
    assert result["jobs"] == {"label": 1, "reward": 1, "policy": 1}
    assert result["lostOutputs"] == []
    assert rss < MAX_RSS_MIB
    cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
