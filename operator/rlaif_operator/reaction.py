"""The operator's own reaction time: a watch event received -> each write it caused sent.

Measured on the operator's clock only, so it leaves out what the API server and the network cost
(the watch's delivery, the write's round trip), which end-to-end figures cannot separate:

- ``received(event)`` is called by the controller when a kopf handler gets a watch event; it sets the
  cause in a context variable, which follows the event through the controller's awaits and, copied by
  ``in_context``, into the worker threads that reconcile (and into the stages it hands off to);
- the event's resource also keeps it as its pending cause until a reconcile of that resource starts:
  whichever reconcile acts on the event first (its own, or a timed re-check that got there before it)
  takes it with ``adopt``, so a hand-off is timed from the event whatever path carried it;
- ``sent(write, obj)`` is called by the API client just before it sends a create or a status patch: it
  observes ``rlaif_operator_reaction_seconds{write}`` and, when ``RLAIF_TRACE_FILE`` names a file,
  appends one JSON line: ``{"event": "Job/ns/name", "write": "create", "object": "Job/ns/name",
  "receivedAt": unix, "sentAt": unix, "seconds": sent - received}`` (monotonic difference).

kopf holds each object's events for ``batch_window_seconds`` before calling the handler; that wait is
not in the figure (the handler is the first point the operator's code sees an event).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Histogram

T = TypeVar("T")

REACTION_SECONDS = Histogram(
    "rlaif_operator_reaction_seconds",
    "A watch event received by the operator -> a write it caused sent (create, status), on the operator's"
    " clock: the API server's and the network's time left out.", ["write"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


@dataclass(frozen=True)
class Cause:
    event: str  # "Kind/namespace/name" of the watched object
    monotonic: float
    wall: float


_CAUSE: contextvars.ContextVar[Cause | None] = contextvars.ContextVar("rlaif_cause", default=None)
_lock = threading.Lock()
_trace: list[Any] = []  # the open trace file, once opened (RLAIF_TRACE_FILE is read at the first write)


def received(kind: str, namespace: str | None, name: str) -> contextvars.Token[Cause | None]:
    """Marks the event being handled now as the cause of the writes that follow in this context.
    Returns the token that ``done`` takes."""
    return _CAUSE.set(Cause(f"{kind}/{namespace or ''}/{name}", time.monotonic(), time.time()))


def done(token: contextvars.Token[Cause | None]) -> None:
    _CAUSE.reset(token)


def current() -> Cause | None:
    return _CAUSE.get()


def adopt(pending: Cause | None) -> contextvars.Token[Cause | None]:
    """Makes the earlier of ``pending`` (an event not yet acted on) and the current cause the cause of
    what follows in this context. Returns the token that ``done`` takes."""
    now = _CAUSE.get()
    return _CAUSE.set(pending if pending is not None and (now is None or pending.monotonic < now.monotonic)
                      else now)


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to a copy of the current context (the cause), for a worker thread."""
    ctx = contextvars.copy_context()

    def run(*args: Any) -> T:
        return ctx.run(fn, *args)

    return run


def sent(write: str, kind: str, namespace: str | None, name: str) -> None:
    """A write caused by the current event is being sent now (no-op outside an event's context)."""
    cause = _CAUSE.get()
    if cause is None:
        return
    now = time.monotonic()
    REACTION_SECONDS.labels(write).observe(now - cause.monotonic)
    path = os.environ.get("RLAIF_TRACE_FILE")
    if not path:
        return
    line = json.dumps({"event": cause.event, "write": write, "object": f"{kind}/{namespace or ''}/{name}",
                       "receivedAt": cause.wall, "sentAt": cause.wall + (now - cause.monotonic),
                       "seconds": now - cause.monotonic})
    with _lock:
        if not _trace:
            _trace.append(open(path, "a", buffering=1))  # noqa: SIM115 - line-buffered, open for the process
        _trace[0].write(line + "\n")
