"""Seeded faults the test API server injects into the requests of its clients other than kubectl.

kubectl is the test's own hand (it plays the user and the kubelet), so its requests are never harmed;
the operator's (the kubernetes client's and kopf's) are. Each fault is a probability drawn from one
seeded ``random.Random``, so a failing seed replays:

- ``error_rate``: a request is answered ``500 InternalError`` before it is applied;
- ``conflict_rate``: a write (POST, PUT, PATCH, DELETE) is answered ``409 Conflict``, not applied;
- ``timeout_rate``: a request is applied, then its reply is held for ``timeout_seconds`` (longer than
  the client waits): the client cannot tell whether it happened;
- ``hold_replies_to``: a regular expression; every request whose ``METHOD path`` matches it is applied
  and its reply held like a timeout (a deterministic lost reply, e.g. of one kind's status writes);
- ``latency_seconds``: every request waits this long first;
- ``watch_drop_seconds``: every watch stream ends after a uniform time in this range;
- ``watch_gone_rate``: a watch is answered ``410 Gone`` (an ERROR event), as after etcd compaction;
- ``watch_lag_seconds``: each watch event reaches the client this much later (a lagging watch cache:
  the client acts on state older than what a GET returns).

``counts`` says how many of each were injected.
"""

from __future__ import annotations

import asyncio
import collections
import random
import re
from dataclasses import dataclass, field
from typing import Any

from testapi.store import ApiError

WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class Faults:
    seed: int = 0
    error_rate: float = 0.0
    conflict_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 3.0
    hold_replies_to: str | None = None
    latency_seconds: float = 0.0
    watch_drop_seconds: tuple[float, float] | None = None
    watch_gone_rate: float = 0.0
    watch_lag_seconds: float = 0.0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @staticmethod
    def applies(request: Any) -> bool:
        """Faults hit every client but kubectl (the test's own hand)."""
        return not request.headers.get("User-Agent", "").startswith("kubectl")

    def _draw(self, rate: float, name: str) -> bool:
        if rate > 0 and self.rng.random() < rate:
            self.counts[name] += 1
            return True
        return False

    async def before(self, method: str, watch: bool) -> None:
        """Before a request is served: latency, then maybe an injected error (raised as ApiError)."""
        self.counts["requests"] += 1
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        if watch:
            return  # watches: watch_gone and watch_lifetime
        if self._draw(self.error_rate, "error500"):
            raise ApiError(500, "InternalError", "an error on the server (injected fault) has prevented the request"
                           " from succeeding")
        if method in WRITES and self._draw(self.conflict_rate, "conflict409"):
            raise ApiError(409, "Conflict", "the object has been modified (injected fault); please apply your"
                           " changes to the latest version and try again")

    async def after(self, method: str, path: str, watch: bool) -> None:
        """After a request was applied: maybe hold the reply past the client's timeout."""
        if watch:
            return
        held = self.hold_replies_to is not None and re.search(self.hold_replies_to, f"{method} {path}")
        if held:
            self.counts["heldReply"] += 1
        if held or self._draw(self.timeout_rate, "timeout"):
            await asyncio.sleep(self.timeout_seconds)

    def watch_gone(self) -> None:
        """Maybe answer this watch 410 Gone (raised as ApiError; the server sends it as an ERROR event)."""
        if self._draw(self.watch_gone_rate, "watch410"):
            raise ApiError(410, "Expired", "too old resource version (injected fault)")

    def watch_lifetime(self) -> float | None:
        """How long this watch stream may live (None: as long as the client asks)."""
        if self.watch_drop_seconds is None:
            return None
        self.counts["watchDrop"] += 1
        return self.rng.uniform(*self.watch_drop_seconds)
