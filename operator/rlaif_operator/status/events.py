"""Which Kubernetes Events a status change deserves, and the status as the API stores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlaif_operator.api.common import Status
from rlaif_operator.api.conditions import POD_WAITING_PROBLEMS, ConditionType, KstatusConditionType, Reason


@dataclass(frozen=True)
class EventSpec:
    """A Kubernetes Event to post on the resource."""

    type: str  # Normal or Warning
    reason: str
    message: str


_WARNING_WAITS = (Reason.UPSTREAM_NOT_FOUND, Reason.UPSTREAM_DELETED, Reason.SECRET_NOT_FOUND,
                  Reason.SECRET_KEY_NOT_FOUND)
# InputsReady=False reasons whose Event the Failed condition already posts.
_FAILED_INPUTS = (Reason.INVALID_SPEC, Reason.INVALID_REFERENCE, Reason.UPSTREAM_FAILED, Reason.UPSTREAM_OUTPUT_MISSING)
# Running=False reasons that deserve an Event: the stage waits on something a user must see.
_RUNNING_EVENTS = (Reason.QUEUED, Reason.GANG_RESTART, Reason.GANG_PREEMPTED, Reason.UNSCHEDULABLE,
                   Reason.NAME_CONFLICT, Reason.CREATE_FORBIDDEN, Reason.FAILED_MOUNT, Reason.FAILED_CREATE,
                   *POD_WAITING_PROBLEMS)


def transition_events(old: Status, new: Status) -> list[EventSpec]:
    """Events for what changed between two statuses: a condition becoming True, a new waiting reason,
    a stage that cannot be scheduled. Nothing when nothing changed (so restarts post no duplicates)."""
    before = {c.type: (c.status, c.reason) for c in old.conditions}
    events = []
    for c in new.conditions:
        if before.get(c.type) == (c.status, c.reason) or c.type in tuple(KstatusConditionType):
            continue  # unchanged, or a kstatus summary of the four (their Events already say it)
        if c.status == "True":
            kind = "Warning" if c.type == ConditionType.FAILED else "Normal"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
        elif c.type == ConditionType.INPUTS_READY and c.reason not in _FAILED_INPUTS:
            kind = "Warning" if c.reason in _WARNING_WAITS else "Normal"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
        elif c.type == ConditionType.RUNNING and c.reason in _RUNNING_EVENTS:  # JobCreated: InputsReady says it
            kind = "Normal" if c.reason == Reason.QUEUED else "Warning"
            events.append(EventSpec(kind, c.reason, c.message or c.reason))
    return events


def status_for_patch(status: Status) -> dict[str, Any]:
    """The status as the API stores it (camelCase, unset fields left out, empty maps kept out)."""
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")
