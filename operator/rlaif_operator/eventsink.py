"""Posting Events off the reconcile path: a queue of plain tuples and a few daemon threads.

A reconcile (and the hand-off behind it) never waits for an Event. In a burst (a thousand Jobs finishing
at once) thousands of Events queue; each waits here as one small tuple (the involved object's identity,
type, reason, message), not as an executor's work item with its Future, its lock and condition, nor
with the object's whole body: at a thousand pipelines those were a large share of the operator's peak
memory (bench/bench_operator.py). Events go after the reconciles (``busy``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

THREADS = 4  # posting threads (each holds one API connection)
DEFER_POLL_SECONDS = 0.02  # how often a deferred Event looks whether the reconciles are done
Post = Callable[[dict[str, Any], str, str, str], None]  # (involved object, type, reason, message)


class EventSink:
    """``workers`` daemon threads calling ``post`` for each queued Event, in the order queued.

    With ``busy`` (the reconcile pool has work), an Event waits while it says so, up to ``defer_seconds``:
    in a burst the API server and the operator's CPU go to the hand-offs a user waits for first, and
    the Events follow (client-go's recorder is asynchronous too). An Event is never held longer than
    that, so a cluster that keeps the operator busy still sees each thread post one per interval.
    """

    def __init__(self, post: Post, workers: int = THREADS, name: str = "events", busy: Callable[[], bool] | None = None,
                 defer_seconds: float = 1.0):
        self._post = post
        self._busy = busy
        self._defer = defer_seconds
        # (apiVersion, kind, name, namespace, uid, type, reason, message); None stops a thread
        self._queue: queue.SimpleQueue[tuple[str, ...] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def __call__(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queues an Event on ``obj`` (read now: the caller may change the body afterwards)."""
        meta = obj["metadata"]
        self._queue.put((obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace") or "",
                         meta.get("uid") or "", event_type, reason, message))

    def pending(self) -> int:
        """Events queued and not yet taken by a thread."""
        return self._queue.qsize()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._busy is not None:
                deadline = time.monotonic() + self._defer
                while self._busy() and time.monotonic() < deadline:
                    time.sleep(DEFER_POLL_SECONDS)
            api_version, kind, name, namespace, uid, event_type, reason, message = item
            involved = {"apiVersion": api_version, "kind": kind,
                        "metadata": {"name": name, "namespace": namespace or None, "uid": uid or None}}
            try:
                self._post(involved, event_type, reason, message)
            except Exception:  # noqa: BLE001 - an Event is best effort; the thread must live on
                log.exception("posting Event %s on %s/%s failed", reason, kind, name)

    def close(self) -> None:
        """Drops what is queued; the threads end after the Event they are posting."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)
