"""The reconcile pool takes the most urgent work first; the cache keeps objects without their bulk; the
operator's reaction time is taken from the event it acted on (rlaif_operator.workqueue, .cache, .reaction)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from rlaif_operator import reaction, workqueue
from rlaif_operator.cache import LAST_APPLIED, Cache, slim


def test_pool_runs_the_most_urgent_first_and_in_order_within_a_priority() -> None:
    pool = workqueue.PriorityPool(1)
    gate, ran = threading.Event(), []
    blocker = pool.submit(workqueue.EVENT, gate.wait, 5)  # holds the only thread while the rest queue
    time.sleep(0.05)
    futures = [pool.submit(priority, ran.append, name) for priority, name in [
        (workqueue.BACKGROUND, "pipeline"), (workqueue.EVENT, "event 1"), (workqueue.FINISHED, "finished"),
        (workqueue.HANDOFF, "hand-off"), (workqueue.EVENT, "event 2")]]
    assert pool.pending() == 5
    gate.set()
    for future in [blocker, *futures]:
        future.result(5)
    assert ran == ["hand-off", "finished", "event 1", "event 2", "pipeline"]
    deadline = time.monotonic() + 5
    while pool.busy():  # the thread's own bookkeeping ends just after the last result is handed over
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pool.shutdown()


def test_pool_is_busy_while_work_is_queued_or_running() -> None:
    pool = workqueue.PriorityPool(1)
    assert not pool.busy()
    gate = threading.Event()
    running = pool.submit(workqueue.EVENT, gate.wait, 5)
    time.sleep(0.05)
    assert pool.busy() and pool.pending() == 0  # running, nothing queued
    gate.set()
    running.result(5)
    deadline = time.monotonic() + 5
    while pool.busy():
        assert time.monotonic() < deadline, "still busy with nothing to do"
        time.sleep(0.01)
    pool.shutdown()


def test_pool_hands_errors_to_the_caller_and_cancels_queued_work_on_shutdown() -> None:
    pool = workqueue.PriorityPool(1)
    with pytest.raises(ZeroDivisionError):
        pool.submit(workqueue.EVENT, lambda: 1 / 0).result(5)
    gate = threading.Event()
    pool.submit(workqueue.EVENT, gate.wait, 5)
    time.sleep(0.05)
    queued = pool.submit(workqueue.BACKGROUND, print, "never")
    pool.shutdown()
    gate.set()
    assert queued.cancelled()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(workqueue.EVENT, print)


def test_slim_drops_what_the_operator_never_reads_and_leaves_the_input_alone() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "j", "namespace": "n", "uid": "u", "resourceVersion": "7",
                        "managedFields": [{"manager": "kube-controller-manager"}],
                        "annotations": {LAST_APPLIED: "{...}", "keep": "me"}, "finalizers": ["rlaif.dev/result"]},
           "spec": {"completions": 2, "suspend": False, "template": {"spec": {"containers": [{"name": "c"}]}}},
           "status": {"active": 1}}
    before = json.dumps(job, sort_keys=True)
    out = slim(job)
    assert json.dumps(job, sort_keys=True) == before  # kopf still holds the original
    assert out["metadata"] == {"name": "j", "namespace": "n", "uid": "u", "resourceVersion": "7",
                               "annotations": {"keep": "me"}, "finalizers": ["rlaif.dev/result"]}
    assert out["spec"] == {"completions": 2, "suspend": False} and out["status"] == {"active": 1}
    stage = {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun", "metadata": {"name": "r"},
             "spec": {"template": "a spec field of that name is kept: only a Job's pod template goes"}}
    assert slim(stage) is stage
    cache = Cache()
    cache.put(job)
    assert "template" not in cache.get(("Job", "n", "j"))["spec"]


def test_a_write_is_timed_from_the_earliest_event_its_reconcile_acted_on(tmp_path, monkeypatch) -> None:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("RLAIF_TRACE_FILE", str(trace))
    monkeypatch.setattr(reaction, "_trace", [])
    reaction.sent("create", "Job", "n", "no-cause")  # outside any event: not timed
    token = reaction.received("Job", "n", "up")  # the upstream Job's event ...
    first = reaction.current()
    time.sleep(0.02)
    later = reaction.received("PreferenceLabelJob", "n", "up")  # ... and a later one, in the same context
    pending = {"key": first}
    attribution = reaction.Reconciling(lambda: pending.get("key"))
    reaction.in_context(reaction.sent, attribution)("create", "Job", "n", "down")
    reaction.done(later)
    reaction.done(token)
    assert attribution.used is first  # the reconcile acted on the earlier, pending event
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["event"], r["write"], r["object"]) for r in records] == [("Job/n/up", "create", "Job/n/down")]
    assert records[0]["seconds"] >= 0.02 and records[0]["sentAt"] - records[0]["receivedAt"] == pytest.approx(
        records[0]["seconds"], abs=1e-3)
    assert reaction.current() is None
