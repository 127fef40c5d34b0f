"""The verdict being assembled (phase and the four conditions), and the words shared by stages and
pipelines: a refused child, a name conflict, the metrics line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rlaif_operator.api.common import Condition, Status
from rlaif_operator.api.conditions import ConditionType, KstatusConditionType, Reason

CONDITION_TYPES = tuple(ConditionType)  # the four every resource carries, always all four
TERMINAL = ("Succeeded", "Failed")

Part = tuple[bool, str, str]  # one condition's (value, reason, message)


@dataclass
class Verdict:
    """The outcome being assembled: phase and the four conditions' (value, reason, message)."""

    phase: str
    inputs: Part
    running: Part = (False, Reason.NOT_STARTED, "")
    succeeded: Part = (False, Reason.NOT_FINISHED, "")
    failed: Part = (False, Reason.NO_FAILURE, "")

    @property
    def message(self) -> str:
        for value, _, message in (self.failed, self.succeeded, self.running):
            if value and message:
                return message
        if not self.inputs[0]:
            return self.inputs[2]
        return self.running[2] or self.inputs[2]

    @property
    def open(self) -> bool:
        """Inputs are ready and nothing has failed: the children decide what happens next."""
        return self.phase != "Failed" and self.inputs[0]

    def wait(self, phase: str, reason: str, message: str) -> Verdict:
        """Not running, for ``reason`` (Waiting: on someone; Pending: on the cluster)."""
        self.phase = phase
        self.running = (False, reason, message)
        return self

    def succeed(self, reason: str, message: str) -> Verdict:
        self.phase = "Succeeded"
        self.running = (False, Reason.COMPLETED, "")
        self.succeeded = (True, reason, message)
        return self


def fail(verdict: Verdict, reason: str, message: str) -> Verdict:
    """Failed for ``reason``: Running and Succeeded False with the same reason."""
    verdict.phase = "Failed"
    verdict.failed = (True, reason, message)
    verdict.running = (False, reason, "")
    verdict.succeeded = (False, reason, "")
    return verdict


def refused(verdict: Verdict, code: int, child: str, message: str, owner: str) -> Verdict:
    """The API would not create ``child`` ("Kind/name"). 400/422: the owner's spec is at fault, so it
    fails; anything else (403: RBAC, quota, admission) waits while the operator retries with backoff."""
    if code in (400, 422):
        return fail(verdict, Reason.CHILD_REJECTED, f"the API rejected {child} ({code}): {message}. Fix the field it"
                    f" names and create a new {owner}")
    return verdict.wait("Waiting", Reason.CREATE_FORBIDDEN, f"the API refused to create {child} ({code}): {message}."
                        " Fix what it names (RBAC, quota, admission policy); the operator tries again with backoff")


def name_conflict(verdict: Verdict, child: str, owner: str) -> Verdict:
    """``child`` ("Kind/name") is taken by an object this ``owner`` (a kind) does not control."""
    return verdict.wait("Waiting", Reason.NAME_CONFLICT, f"{child} already exists and is not owned by this {owner}:"
                        " delete it or rename this resource; it goes on once the name is free")


def rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def kstatus_parts(phase: str, reason: str, message: str) -> dict[str, Part]:
    """Ready, Reconciling and Stalled (KstatusConditionType) for a resource in ``phase``, each with the
    reason and message that explain the phase."""
    return {KstatusConditionType.READY: (phase == "Succeeded", reason, message),
            KstatusConditionType.RECONCILING: (phase not in TERMINAL, reason, message),
            KstatusConditionType.STALLED: (phase == "Failed", reason, message)}


def kstatus_conditions(phase: str, reason: str, message: str, now: str) -> list[Condition]:
    """Ready, Reconciling and Stalled as Condition objects (``rlaif run``'s statuses, which have no
    previous transition times to keep)."""
    return [Condition(type=ctype, status="True" if value else "False", reason=why, message=text,
                      last_transition_time=now) for ctype, (value, why, text) in kstatus_parts(phase, reason,
                                                                                                 message).items()]


def _why(verdict: Verdict) -> str:
    """The reason that explains the verdict's phase."""
    for value, reason, _ in (verdict.failed, verdict.succeeded):
        if value:
            return reason
    return verdict.running[1] if verdict.inputs[0] else verdict.inputs[1]


def conditions(previous: Status, now: datetime, generation: int | None, verdict: Verdict) -> list[Condition]:
    """The four conditions of ``verdict`` and the kstatus three, keeping lastTransitionTime where a
    condition did not change."""
    wanted = {ConditionType.INPUTS_READY: verdict.inputs, ConditionType.RUNNING: verdict.running,
              ConditionType.SUCCEEDED: verdict.succeeded, ConditionType.FAILED: verdict.failed,
              **kstatus_parts(verdict.phase, _why(verdict), verdict.message)}
    before = {c.type: c for c in previous.conditions}
    out = []
    for ctype, (value, reason, message) in wanted.items():
        status = "True" if value else "False"
        old = before.get(ctype)
        since = old.last_transition_time if old is not None and old.status == status else rfc3339(now)
        out.append(Condition(type=ctype, status=status, reason=reason, message=message,
                             last_transition_time=since, observed_generation=generation))
    return out


def metrics_line(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())) or "no metrics reported"
