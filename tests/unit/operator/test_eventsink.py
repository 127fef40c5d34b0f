"""The Event sink: Events posted off the reconcile path, in order, a failure logged and survived."""

from __future__ import annotations

import threading
import time
from typing import Any

from rlaif_operator.eventsink import EventSink

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "ns", "uid": "u1",
                                                           "labels": {"big": "x" * 1000}}}


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_events_are_posted_in_order_with_the_objects_identity_only() -> None:
    posted: list[tuple[dict[str, Any], str, str, str]] = []
    sink = EventSink(lambda *event: posted.append(event), workers=1)
    sink(JOB, "Normal", "JobRunning", "started")
    sink({**JOB, "metadata": {"name": "cluster-wide"}, "kind": "Node", "apiVersion": "v1"}, "Warning", "X", "y")
    wait_for(lambda: len(posted) == 2)
    assert posted[0] == ({"apiVersion": "batch/v1", "kind": "Job",
                          "metadata": {"name": "j", "namespace": "ns", "uid": "u1"}}, "Normal", "JobRunning", "started")
    assert posted[1][0]["metadata"] == {"name": "cluster-wide", "namespace": None, "uid": None}
    sink.close()


def test_a_failed_post_is_survived() -> None:
    posted: list[str] = []

    def post(obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        if reason == "Boom":
            raise RuntimeError("the API went away")
        posted.append(reason)

    sink = EventSink(post, workers=1)
    sink(JOB, "Normal", "Boom", "")
    sink(JOB, "Normal", "After", "")
    wait_for(lambda: posted == ["After"])
    sink.close()


def test_close_drops_what_is_queued_and_stops_the_threads() -> None:
    release, posted = threading.Event(), []

    def slow(obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        release.wait(5)
        posted.append(reason)

    sink = EventSink(slow, workers=1, name="closing")
    for i in range(5):
        sink(JOB, "Normal", f"E{i}", "")
    wait_for(lambda: sink.pending() == 4)  # the thread took the first one and waits in it
    sink.close()
    release.set()
    wait_for(lambda: not any(t.name.startswith("closing") for t in threading.enumerate()))
    assert posted == ["E0"]


def test_an_event_waits_while_reconciles_are_busy_but_not_longer_than_its_bound() -> None:
    posted: list[tuple[str, float]] = []
    busy_until = time.monotonic() + 0.3
    sink = EventSink(lambda obj, t, reason, m: posted.append((reason, time.monotonic())), workers=1,
                     busy=lambda: time.monotonic() < busy_until, defer_seconds=5.0)
    sink(JOB, "Normal", "AfterTheBurst", "")
    wait_for(lambda: len(posted) == 1)
    assert posted[0][1] >= busy_until  # held while busy
    always = EventSink(lambda obj, t, reason, m: posted.append((reason, time.monotonic())), workers=1,
                       busy=lambda: True, defer_seconds=0.2)
    queued = time.monotonic()
    always(JOB, "Normal", "Bounded", "")
    wait_for(lambda: len(posted) == 2)
    assert 0.2 <= posted[1][1] - queued < 2.0  # never held past its bound
    sink.close()
    always.close()
