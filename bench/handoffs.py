"""Hand-off latency from the operator's own trace (``RLAIF_TRACE_FILE``), apart from the API server's view.

Inputs: the trace's JSON lines (operator/rlaif_operator/reaction.py writes one per create or status patch
it sends: ``event``, ``write``, ``object``, ``receivedAt``, ``sentAt``, ``seconds``) and the hand-offs to
find, each ``Edge(upstream_job, upstream_stage, downstream_job)`` as "Kind/namespace/name".

Output per edge: the operator-side latency from the event the operator received to the downstream Job's
create it sent, and to the upstream stage's status patch sent for that same event; both are differences
of the operator's own clock readings (``seconds``), never of the API server's timestamps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Edge:
    upstream_job: str
    upstream_stage: str
    downstream_job: str


@dataclass(frozen=True)
class OperatorHandoff:
    edge: Edge
    create_seconds: float  # event received -> downstream Job create sent
    status_seconds: float | None  # same event -> upstream stage's status patch sent (None: not in the trace)
    cause: str  # the watched object whose event led to the create
    by_upstream_job: bool  # the cause was the upstream Job's event (a hand-off, not some later re-check)


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """The trace's records, in the order written; a torn last line (the operator was stopped) is left out."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def operator_handoffs(records: list[dict[str, Any]], edges: list[Edge]) -> list[OperatorHandoff]:
    """The operator-side hand-off of each edge whose downstream Job the trace shows created.

    The first create of the downstream Job is the hand-off; the upstream stage's status patch is the one
    caused by the same event (same object, same ``receivedAt``), i.e. the report of Succeeded."""
    creates: dict[str, dict[str, Any]] = {}
    statuses: dict[tuple[str, str, float], dict[str, Any]] = {}
    for record in records:
        if record["write"] == "create":
            creates.setdefault(record["object"], record)
        elif record["write"] == "status":
            statuses.setdefault((record["object"], record["event"], record["receivedAt"]), record)
    found = []
    for edge in edges:
        create = creates.get(edge.downstream_job)
        if create is None:
            continue
        status = statuses.get((edge.upstream_stage, create["event"], create["receivedAt"]))
        found.append(OperatorHandoff(edge, create["seconds"], status["seconds"] if status else None,
                                     create["event"], create["event"] == edge.upstream_job))
    return found
