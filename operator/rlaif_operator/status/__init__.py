"""Pure status logic: what the operator observed in, the resource's ``Status`` out. No I/O, no kopf, no
client: table-driven tests cover every path (tests/unit/operator/test_operator_status.py).

- ``observations``: what a reconcile observed (the input), and ``parse_report`` for a termination message;
- ``verdict``: the phase and four conditions being assembled, and the words stages and pipelines share;
- ``stage``: ``compute_status(resource, observed, now)`` for the three stages;
- ``pipeline``: ``compute_pipeline_status(pipeline, children, now)``;
- ``evaluation``: the ``JudgeIndependent`` condition of a finished PolicyRLRun (also used by ``rlaif run``);
- ``events``: ``transition_events(old, new)``, the Kubernetes Events a change deserves.

Conditions (one per type, always all four): ``InputsReady``, ``Running``, ``Succeeded``, ``Failed``;
reasons are CamelCase and messages say what to do. ``phase`` summarises them for ``kubectl get``.
"""

from rlaif_operator.status.evaluation import evaluation_conditions
from rlaif_operator.status.events import EventSpec, status_for_patch, transition_events
from rlaif_operator.status.observations import (
    ChildObservation,
    JobObservation,
    StageObservation,
    UpstreamObservation,
    parse_report,
)
from rlaif_operator.status.pipeline import compute_pipeline_status
from rlaif_operator.status.stage import compute_status, inputs_ready, is_final, names_job
from rlaif_operator.status.verdict import TERMINAL, kstatus_conditions

__all__ = [
    "TERMINAL", "ChildObservation", "EventSpec", "JobObservation", "StageObservation", "UpstreamObservation",
    "compute_pipeline_status", "compute_status", "evaluation_conditions", "inputs_ready", "is_final", "names_job",
    "kstatus_conditions", "parse_report", "status_for_patch", "transition_events",
]
