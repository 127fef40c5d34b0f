"""Prometheus metrics of the operator (served on ``settings.metrics_port`` at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("rlaif_operator_reconciles_total", "Reconciles run, by kind and result (ok, error).",
                     ["kind", "result"])
RECONCILE_SECONDS = Histogram("rlaif_operator_reconcile_seconds", "Time one reconcile took.", ["kind"],
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
STAGE_FAILURES = Counter("rlaif_operator_stage_failures_total", "Resources that became Failed, by reason.",
                         ["kind", "reason"])
STAGE_SECONDS = Histogram("rlaif_operator_stage_duration_seconds",
                          "Start to finish of a stage or pipeline, by kind and final phase.", ["kind", "phase"],
                          buckets=(10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400))
CHILDREN_CREATED = Counter("rlaif_operator_children_created_total", "Objects created, by kind.", ["kind"])
HANDOFF_SECONDS = Histogram("rlaif_operator_handoff_seconds",
                            "Upstream stage finished -> downstream Job created (1 s timestamp resolution).",
                            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300))
WATCH_EVENTS = Counter("rlaif_operator_watch_events_total",
                       "Watch events handled, by kind and what came of them (reconciled, echo: the operator's own"
                       " write coming back, deleted).", ["kind", "outcome"])
QUEUED_RECHECKS = Gauge("rlaif_operator_rechecks_pending", "Resources waiting for a timed re-check.")


def serve(port: int) -> None:
    """Starts the /metrics HTTP server in a daemon thread (0: do nothing)."""
    if port:
        start_http_server(port)
