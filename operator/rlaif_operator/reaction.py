"""The operator's own reaction time: a watch event received -> each write it caused sent.

Measured on the operator's clock only, so it leaves out what the API server and the network cost
(the watch's delivery, the write's round trip), which end-to-end figures cannot separate:

- ``received(event)`` is called by the controller when a kopf handler gets a watch event; it sets the
  cause in a context variable, which follows the event through the controller's awaits and, copied by
  ``in_context``, into the worker threads that reconcile (and into the stages it hands off to);
- the event's resource also keeps it as its pending cause until a reconcile of that resource acts on it:
  whichever reconcile writes first after the event arrived (its own, or a timed re-check that was
  already running and read the new data) is timed from it (``Reconciling``), and the stages it hands
  off to inherit it, so a hand-off is timed from the event whatever path carried it;
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

T = TypeVar("T")

try:
    from prometheus_client import Histogram
except ImportError:  # the core install (the `rlaif` CLI's cluster verbs use the client): no metrics there
    REACTION_SECONDS = None
else:
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


def earliest(a: Cause | None, b: Cause | None) -> Cause | None:
    return a if b is None or (a is not None and a.monotonic <= b.monotonic) else b


def adopt(cause: Cause | None) -> contextvars.Token[Cause | None]:
    """Makes the earlier of ``cause`` and the current one the cause of what follows in this context.
    Returns the token that ``done`` takes."""
    return _CAUSE.set(earliest(cause, _CAUSE.get()))


class Reconciling:
    """One reconcile's attribution: its context's cause, or the earlier event its resource has pending at
    the moment a write is sent (an event that arrived while it ran, whose data it read: it acts on it).
    ``used`` is the cause its writes were timed from (None: it wrote nothing, or nothing caused it)."""

    def __init__(self, pending: Callable[[], Cause | None]):
        self.pending = pending
        self.used: Cause | None = None


_RECONCILING: contextvars.ContextVar[Reconciling | None] = contextvars.ContextVar("rlaif_reconciling", default=None)


def in_context(fn: Callable[..., T], reconciling: Reconciling | None = None) -> Callable[..., T]:
    """``fn`` bound to a copy of the current context (the cause), for a worker thread; a reconcile's
    ``reconciling`` goes with it."""
    ctx = contextvars.copy_context()
    if reconciling is not None:
        ctx.run(_RECONCILING.set, reconciling)

    def run(*args: Any) -> T:
        return ctx.run(fn, *args)

    return run


def sent(write: str, kind: str, namespace: str | None, name: str) -> None:
    """A write caused by the current event is being sent now (no-op outside an event's context)."""
    cause = _CAUSE.get()
    reconciling = _RECONCILING.get()
    if reconciling is not None:
        cause = earliest(cause, reconciling.pending())
        reconciling.used = earliest(reconciling.used, cause)
    if cause is None:
        return
    now = time.monotonic()
    if REACTION_SECONDS is not None:
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
