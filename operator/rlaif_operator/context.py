"""What a reconcile works with: the API client, settings, the watch cache, a clock, the Event sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rlaif_operator.cache import Cache
from rlaif_operator.kube import Kube
from rlaif_operator.settings import OperatorSettings


@dataclass
class Context:
    """What a reconcile needs: the API, settings, the watch cache, a clock."""

    kube: Kube
    settings: OperatorSettings
    cache: Cache = field(default_factory=Cache)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # How Events get posted: inline by default; the controller hands them to a background thread so
    # that a reconcile (and the hand-off behind it) never waits for them.
    post_event: Callable[[dict[str, Any], str, str, str], None] | None = None
    # Live progress: by Job uid, when the operator last read its rank-0 pod's log (monotonic seconds) and
    # which pod that was, so that a running stage costs one log read per interval, not a pod list too.
    progress_reads: dict[str, tuple[float, str]] = field(default_factory=dict)

    def event(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        (self.post_event or self.kube.post_event)(obj, event_type, reason, message)


def owned_by(obj: dict[str, Any], uid: str | None) -> bool:
    """Whether ``uid`` is the object's controller (its controller ownerReference)."""
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences", []))


def seconds(timestamp: str) -> float:
    """An RFC 3339 timestamp (second resolution) as a Unix time."""
    return datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
